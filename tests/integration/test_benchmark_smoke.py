"""scripts/benchmark.py (devtools/bench/) runs end to end on a small data set, with its own
emulators.

Times are never asserted: only that every figure is there and the counts add up.
"""

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest

from devtools import REPO_ROOT

DOCS = 2000


def _benchmark(tmp_path: Path, name: str, *args: str) -> tuple[list[str], dict, str]:
    """Run ``scripts/benchmark.py`` with ``args`` on its own emulators: the command,
    its JSON report and its printed report (the run must exit 0)."""
    out = tmp_path / f"{name}.json"
    cmd = [sys.executable, "scripts/benchmark.py", *args, "--json", str(out),
           "--state-dir", str(tmp_path / "emu")]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    return cmd, json.loads(out.read_text()), result.stdout


@pytest.mark.integration
def test_benchmark_reports_rows_reads_rss_machine_and_command(tmp_path):
    cmd, report, text = _benchmark(
        tmp_path, "bench", "--docs", str(DOCS), "--repeat", "1", "--naive-single-cap", "50"
    )

    rows = {r["name"]: r for r in report["rows"]}
    assert list(rows) == ["floor", "pipeline", "naive"]
    per_doc = report["naive_per_document"]
    assert per_doc["extrapolated"] and per_doc["extrapolated_from_docs"] == 50
    for r in [*rows.values(), per_doc]:
        assert r["docs"] == DOCS
        for key in ("wall_seconds", "docs_per_second", "ratio_to_floor"):
            assert isinstance(r[key], (int, float)), (r["name"], key)
    assert rows["floor"]["ratio_to_floor"] == 1.0
    assert rows["pipeline"]["config"] == report["recommended_config"]
    configs = {c["config"]: c for c in report["pipeline_configs"]}
    assert set(configs) == {"in_memory", "multi_threading:2", "multi_processing:2"}
    assert report["failed_configs"] == [], [c["errors"] for c in configs.values()]

    # The pipeline's own count of documents its queries returned: each one exactly once.
    reads = report["firestore_reads"]
    assert reads == {**reads, "documents_returned": DOCS, "documents_in_window": DOCS}
    assert report["reads_per_document"] == 1.0
    for runs in report["runs"]["pipeline"].values():
        assert [r["documents_returned"] for r in runs] == [DOCS]

    # A one-day full run (not the nightly, which is incremental) reads every document.
    assert "nightly" not in report
    one_day = report["one_day_full"]
    assert one_day["ok"] and one_day["documents_returned"] == DOCS
    assert 0 < one_day["documents_in_window"] < DOCS
    assert one_day["reads_per_document"] == pytest.approx(
        DOCS / one_day["documents_in_window"], abs=0.01
    )

    assert report["peak_rss_bytes"] > 0
    assert sum(report["seed"]["per_collection"].values()) == DOCS
    machine = report["machine"]
    assert machine["nproc"] >= 1 and machine["ram_gib"] > 0 and machine["cpu_model"]
    assert machine["python"] == ".".join(map(str, sys.version_info[:3]))
    assert report["command"].split()[1:] == cmd[1:]

    for needle in ("floor", "EXTRAPOLATED", "reads per document", "one-day full run",
                   "peak RSS", "machine:", "command"):  # fmt: skip
        assert needle in text, needle
    assert not (tmp_path / "emu" / "state.json").exists()  # emulators stopped


@pytest.mark.integration
def test_benchmark_nightly_scenario_reports_reads_per_needed_document(tmp_path):
    _, report, text = _benchmark(
        tmp_path, "nightly", "--scenario", "nightly", "--nightly-histories", "3,6",
        "--nightly-per-day", "20", "--nightly-deletes", "2", "--no-nightly-warmup",
    )  # fmt: skip
    assert report["valid"] and report["scenario"] == "nightly"

    nightly = report["nightly"]
    assert nightly["ok"] and [h["history_days"] for h in nightly["histories"]] == [3, 6]
    for h in nightly["histories"]:
        assert h["ok"] and h["modes"] == ["incremental"] and h["tables_equal_firestore"]
        # One new day of 20 documents and one edited older document (moved to another day).
        assert h["documents_new"] == 20 and h["documents_edited"] == h["documents_moved"] == 1
        assert h["documents_needed"] == 21 == h["documents_read_audit"]
        assert h["documents_returned"] == h["documents_returned_audit"]
        assert h["reads_per_needed"] == round(h["documents_returned"] / 21, 4)
        assert h["count_queries"] == h["count_replay"]["queries"] > 0
        assert h["count_reads"] >= h["count_queries"]
        assert h["rows_staged"] >= 21 and h["wall_seconds"] > 0
        # The edited document's old row: found by the drift check's lookup in BigQuery
        # (every day of these histories is verified), so no previous version is read.
        assert h["previous_reads"] == 0
        scan = h["scan"]
        assert 0 < scan["bytes"] < scan["unlocated"]
        assert 0 < scan["drift"] < scan["bytes"] and scan["commit"] + scan["drift"] == scan["bytes"]
        assert all(t["partitions_scanned"] <= t["partitions"] for t in scan["tables"].values())
        deletes = h["deletes"]
        assert deletes["ok"] and deletes["deleted"] == 2 and len(deletes["drift_days"]) == 2
        assert deletes["drift_rebuild_read"] == deletes["drift_rebuild_expected"]
    assert nightly["reads_per_document"] == max(h["reads_per_needed"] for h in nightly["histories"])
    assert isinstance(nightly["wall_ratio_longest_to_shortest"], float)
    assert isinstance(nightly["scan_ratio_longest_to_shortest"], float)

    for needle in ("nightly (incremental)", "reads/needed", "count queries", "hard deletes",
                   "targets:", "statement bytes", "scan KB", "machine:", "command"):  # fmt: skip
        assert needle in text, needle
    assert not (tmp_path / "emu" / "state.json").exists()  # emulators stopped


@pytest.mark.integration
def test_benchmark_intraday_scenario_reports_reads_per_changed_document(tmp_path):
    _, report, text = _benchmark(
        tmp_path, "intraday", "--scenario", "intraday", "--intraday-histories", "3",
        "--intraday-hours", "2", "--docs", "150", "--intraday-new", "10",
        "--intraday-edits", "2", "--intraday-hour-seconds", "8",
    )  # fmt: skip
    assert report["valid"] and report["scenario"] == "intraday"

    intraday = report["intraday"]
    [history] = intraday["histories"]
    assert intraday["ok"] and history["ok"] and history["history_days"] == 3
    assert history["rebuild"]["equal"], history["rebuild"]
    runs = history["runs"]
    assert [r["hour"] for r in runs] == [1, 2]
    for r in runs:
        # Each run returned exactly what the writes say: the changes since the last
        # snapshot, and those within the (scaled) clock allowance before it.
        assert r["ok"] and r["documents_returned"] == r["documents_expected"]
        assert r["documents_returned"] == r["documents_changed"] + r["re_read"]
        assert r["re_read"] >= 0 and not r["drift_days"]
        # At most one previous-version read per edit (an edit of a document that
        # existed at the last snapshot); new documents need none.
        assert 0 <= r["previous_reads"] <= r["documents_edited"]
        assert r["all_reads_per_changed"] == round(
            (r["documents_returned"] + r["previous_reads"]) / r["documents_changed"], 4
        )
        # Five tables: the change query's count and today + 35 verified days, and the
        # snapshot estimate's count, each.
        assert r["count_queries"] == 5 * (1 + 36) + 5 <= r["count_reads"]
        assert 0 < r["startup_seconds"] < r["pre_pipeline_seconds"] < r["wall_seconds"]
        share = r["startup_seconds"] / r["wall_seconds"]  # both rounded apart
        assert r["startup_share"] == pytest.approx(share, abs=2e-4)
    totals = history["totals"]
    assert totals["documents_changed"] == sum(r["documents_changed"] for r in runs) > 0
    assert history["reads_per_changed"] == round(
        totals["documents_returned"] / totals["documents_changed"], 4
    )
    assert intraday["reads_per_changed"] == history["reads_per_changed"]

    for needle in ("intraday runs", "reads/changed", "count() reads/run", "start-up share",
                   "target:", "machine:", "command"):  # fmt: skip
        assert needle in text, needle
    assert not (tmp_path / "emu" / "state.json").exists()  # emulators stopped


@pytest.mark.integration
def test_benchmark_onboarding_scenario_reports_reads_per_chunk_and_the_nightly(tmp_path):
    _, report, text = _benchmark(
        tmp_path, "onboarding", "--scenario", "onboarding", "--onboarding_days", "4",
        "--onboarding_per_day", "3", "--chunk_days", "2",
    )  # fmt: skip
    assert report["valid"] and report["scenario"] == "onboarding"

    onboarding = report["onboarding"]
    assert onboarding["ok"] and onboarding["documents_seeded"] == 4 * 3
    # Days -4..-2 in chunks of 2 days; yesterday is the nightly's.
    today = datetime.date.fromisoformat(onboarding["today"])
    day = [(today - datetime.timedelta(days=n)).isoformat() for n in range(5)]
    chunks = onboarding["chunks"]
    assert [(c["first"], c["last"]) for c in chunks] == [(day[4], day[3]), (day[2], day[2])]
    for c in chunks:
        assert c["documents_returned"] <= 1.10 * c["documents_in_range"] + 3, c
    backfill = onboarding["backfill"]
    assert backfill["documents_in_range"] == sum(c["documents_in_range"] for c in chunks) >= 8
    assert backfill["documents_returned"] <= 1.10 * backfill["documents_in_range"] + 3 * 2
    nightly = onboarding["nightly"]
    assert nightly["documents_yesterday"] == 3 and nightly["modes"] == ["incremental"]
    assert nightly["documents_changed"] == onboarding["edits_between_chunks"] == 1
    assert nightly["documents_returned"] <= 1.10 * nightly["documents_needed"] + 3, nightly
    assert onboarding["equal_to_rebuild"] is True
    # A full-mode chunk reads every document held, whatever its dates.
    full = onboarding["full_first_chunk"]
    assert full["documents_returned"] == 12 > full["documents_in_range"]

    for needle in ("onboarding:", "reads/doc", "nightly after it", "--mode full",
                   "full rebuild", "targets:", "machine:", "command"):  # fmt: skip
        assert needle in text, needle
    assert not (tmp_path / "emu" / "state.json").exists()  # emulators stopped
