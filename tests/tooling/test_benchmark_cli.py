"""scripts/benchmark.py's command line and its bytes model, without emulators: ``--help``
works, bad values are refused with one usage line."""

from __future__ import annotations

import datetime
import subprocess
import sys

import pytest

from devtools import REPO_ROOT
from devtools.bench.cli import parse_args


def test_help_exits_0_and_names_every_scenario():
    done = subprocess.run(
        [sys.executable, "scripts/benchmark.py", "--help"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Prove the speed" in done.stdout
    assert "backfill" in done.stdout and "nightly" in done.stdout
    assert "{backfill,nightly,intraday,onboarding,all}" in done.stdout
    assert "--intraday-hours" in done.stdout and "--intraday-hour-seconds" in done.stdout
    assert "30% of them also move" in done.stdout  # a percent sign in a help string


def test_defaults_parse_into_runner_configurations():
    args = parse_args([])
    assert [c.label for c in args.workers] == [
        "in_memory", "multi_threading:2", "multi_processing:2"
    ]  # fmt: skip
    assert args.scenario == "backfill" and args.nightly_histories == [14, 90, 365]
    assert args.intraday_histories == [14, 365] and args.intraday_hours == 24
    assert (args.intraday_new, args.intraday_edits) == (50, 5)


def test_intraday_options_parse():
    args = parse_args(["--scenario", "intraday", "--intraday-histories", "365,14,14",
                       "--intraday-hours", "2", "--intraday-hour-seconds", "10"])  # fmt: skip
    assert args.scenario == "intraday" and args.intraday_histories == [14, 365]
    assert args.intraday_hours == 2 and args.intraday_hour_seconds == 10.0


@pytest.mark.parametrize(
    "argv",
    [["--workers", "in_memory:2"], ["--nightly-histories", "1"], ["--docs", "0"],
     ["--nightly-edit-share", "2"], ["--scenario", "hourly"], ["--intraday-histories", "1"],
     ["--intraday-hours", "0"], ["--intraday-new", "0"], ["--intraday-hour-seconds", "1"]],
)  # fmt: skip
def test_bad_values_are_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_the_bytes_model_counts_the_drift_check_and_the_commit() -> None:
    from devtools.bench.scan_bytes import statement_bytes
    from pipelines.state.verdict import Counts, TableStatus, TableVerdict

    d1, d2, d3, d4, d5 = (datetime.date(2026, 11, d) for d in range(1, 6))
    sizes = {d.isoformat(): (8, 20) for d in (d1, d2, d3, d4, d5)}  # (partition, path) bytes
    entry = TableVerdict("tasks", TableStatus.SUCCEEDED, mode="incremental", replaced_days=(d1,),
                         counts=Counts(delete_days=(d2,), verified_days=(d3, d4),
                                       lookup_days=(d2, d3, d4)))  # fmt: skip
    got = statement_bytes(entry, sizes)
    # counts around the commit 2 x 8; delete over d1, d2 (both columns) 56; the upsert count
    # over d2 28; drift: the verified days' partition column 16 + the lookup days' both 84.
    assert (got["commit"], got["drift"], got["bytes"]) == (100, 100, 200)
    assert got["unlocated"] == 16 + 140 + 140 + 100  # the delete and count over all 5 days
