"""scripts/backfill.py: chunking, stopping and resuming from ``_sync_runs``.

The unit tests run a stand-in sync command and stand in for the one BigQuery
read (``finished_windows``); the integration tests run the real sync against
the emulators and read the real ``_sync_runs``.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import sys
from pathlib import Path

import pytest

from devtools import REPO_ROOT
from pipelines.cli import backfill
from pipelines.services import bigquery as bq
from pipelines.state import run_log
from tests.support.documents import task
from tests.support.sync_helpers import PROJECT, seed, table_rows, unique_dataset

D = datetime.date
UTC = datetime.UTC

#: Logs each run's arguments; fails (exit 3) on the chunk starting at $FAIL_ON;
#: a run that succeeds appends its window to $SYNC_RUNS, as the sync's audit row would.
FAKE_SYNC = """
import json, os, sys
args = sys.argv[1:]
start = args[args.index("--start_date") + 1]
end = args[args.index("--end_date") + 1]
with open(os.environ["SYNC_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if start == os.environ.get("FAIL_ON"):
    sys.exit(3)
with open(os.environ["SYNC_RUNS"], "a") as runs:
    runs.write(json.dumps([start, end]) + "\\n")
"""


@pytest.fixture
def fake_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A stand-in sync, and its windows as what ``_sync_runs`` says is done."""
    script = tmp_path / "fake_sync.py"
    script.write_text(FAKE_SYNC)
    log, sync_runs = tmp_path / "runs.jsonl", tmp_path / "sync_runs.jsonl"
    monkeypatch.setenv("SYNC_LOG", str(log))
    monkeypatch.setenv("SYNC_RUNS", str(sync_runs))
    monkeypatch.delenv("FAIL_ON", raising=False)
    targets: list[backfill.Target] = []

    def finished_windows(target: backfill.Target, now: datetime.datetime) -> list:
        targets.append(target)
        lines = sync_runs.read_text().splitlines() if sync_runs.exists() else []
        return [tuple(D.fromisoformat(d) for d in json.loads(line)) for line in lines]

    monkeypatch.setattr(backfill, "finished_windows", finished_windows)
    return {"command": shlex.join([sys.executable, str(script)]), "log": log, "targets": targets}


def runs(log: Path) -> list[tuple[str, str]]:
    """(start, end) of every run the fake sync saw."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        args = json.loads(line)
        out.append((args[args.index("--start_date") + 1], args[args.index("--end_date") + 1]))
    return out


def argv(fake: dict, start: str, end: str, *extra: str) -> list[str]:
    return ["--start_date", start, "--end_date", end, "--command", str(fake["command"]), *extra]


TARGET = ("--", "--project", "my-proj", "--dataset", "d")


DATES = ["--start_date", "2026-01-01", "--end_date", "2026-01-02"]


# --- against the emulators: the real sync, the real _sync_runs --------------------------

ALL = ("tasks", "user_interactions")


def _entry(table: str, status: str = "succeeded", replaced: bool = True) -> dict:
    return {"table": table, "status": status, "replaced": replaced}


def _row(run: str, start: str, end: str, status: str, tables: list, started: str) -> dict:
    return {
        "run_id": run, "window_start": start, "window_end": end, "status": status,
        "started_at": started, "finished_at": started, "tables": tables,
    }  # fmt: skip


def test_succeeded_windows_are_runs_that_replaced_every_table_asked_for(bq_client) -> None:
    since = datetime.datetime(2026, 11, 20, tzinfo=UTC)
    dataset = unique_dataset("succeeded_windows")
    assert run_log.succeeded_windows(bq_client, dataset, since, ALL) == []  # no dataset
    bq.ensure_dataset(bq_client, dataset, None)
    assert run_log.succeeded_windows(bq_client, dataset, since, ALL) == []  # no _sync_runs
    bq.ensure_table(bq_client, dataset, run_log.TABLE, run_log.SCHEMA, run_log.PARTITION_COLUMN)
    new, old = "2026-11-25T01:00:00Z", "2026-11-19T23:00:00Z"
    both = [_entry("tasks"), _entry("user_interactions")]
    rows = [
        _row("ok", "2026-11-01", "2026-11-07", "succeeded", both, new),
        _row("before_since", "2026-11-08", "2026-11-14", "succeeded", both, old),
        _row("failed", "2026-11-08", "2026-11-14", "failed", both, new),
        _row("not_reconciled", "2026-11-08", "2026-11-14", "not_reconciled", both, new),
        _row("tasks_only", "2026-11-15", "2026-11-21", "succeeded", [_entry("tasks")], new),
        _row(
            "not_replaced", "2026-11-22", "2026-11-28", "succeeded",
            [_entry("tasks"), _entry("user_interactions", replaced=False)], new,
        ),
        _row(
            "table_failed", "2026-11-29", "2026-11-30", "succeeded",
            [_entry("tasks"), _entry("user_interactions", status="failed")], new,
        ),
    ]  # fmt: skip
    bq.load_rows(bq_client, dataset, run_log.TABLE, run_log.SCHEMA, rows)

    assert run_log.succeeded_windows(bq_client, dataset, since, ALL) == [
        (D(2026, 11, 1), D(2026, 11, 7))
    ]
    assert run_log.succeeded_windows(bq_client, dataset, since, ["tasks"]) == [
        (D(2026, 11, 1), D(2026, 11, 7)),
        (D(2026, 11, 15), D(2026, 11, 21)),
        (D(2026, 11, 22), D(2026, 11, 28)),
        (D(2026, 11, 29), D(2026, 11, 30)),
    ]


#: The real sync, except on the chunk starting at $FAIL_ON: that one fails (exit 3).
FAILING_SYNC = """
import os, sys
args = sys.argv[1:]
if args[args.index("--start_date") + 1] == os.environ.get("FAIL_ON"):
    sys.exit(3)
os.execv(sys.executable, [sys.executable, "-m", "pipelines.firestore_to_bq", *args])
"""
DAYS = ("2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04")


def _seed_tasks(db) -> None:
    seed(db, {f"users/u{i}/tasks/t{day}": task(day) for day in DAYS for i in (1, 2)})


def test_backfill_progress_is_the_datasets_sync_runs_not_a_local_file(
    emulators, firestore_db, bq_client, tmp_path, monkeypatch, capfd
) -> None:
    """Issue 14.5: a failed chunk resumes from _sync_runs; wiped emulators run every chunk again."""
    script = tmp_path / "sync.py"
    script.write_text(FAILING_SYNC)
    monkeypatch.chdir(tmp_path)  # where a state file would have been written
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    _seed_tasks(firestore_db)
    dataset = unique_dataset("backfill")
    command = shlex.join([sys.executable, str(script)])
    args = [
        "--start_date", DAYS[0], "--end_date", DAYS[-1], "--chunk_days", "2",
        "--command", command, "--", "--project", PROJECT, "--dataset", dataset,
        "--collections", "tasks",
    ]  # fmt: skip
    first, second = f"chunk 1/2 {DAYS[0]}..{DAYS[1]}", f"chunk 2/2 {DAYS[2]}..{DAYS[3]}"

    monkeypatch.setenv("FAIL_ON", DAYS[2])
    assert backfill.main(args) == 3
    out, err = capfd.readouterr()
    assert f"{first}: done in " in out and f"{second}: FAILED with exit code 3" in err
    assert len(table_rows(bq_client, dataset, "tasks")) == 4

    monkeypatch.delenv("FAIL_ON")
    assert backfill.main(args) == 0
    out, _ = capfd.readouterr()
    assert f"{first}: already done ({PROJECT}.{dataset}._sync_runs), skipped" in out
    assert f"{second}: done in " in out
    assert len(table_rows(bq_client, dataset, "tasks")) == 8

    assert backfill.main(args) == 0
    assert capfd.readouterr().out == (
        f"all 2 chunks already done ({PROJECT}.{dataset}._sync_runs); nothing to run\n"
    )
    assert os.listdir(tmp_path) == ["sync.py"]

    # The emulators lose their data (down and up): the same command runs every chunk again.
    bq_client.delete_dataset(dataset, delete_contents=True)
    emulators.reset_firestore()
    _seed_tasks(firestore_db)
    assert backfill.main(args) == 0
    out, _ = capfd.readouterr()
    assert "already done" not in out
    assert f"{first}: done in " in out and f"{second}: done in " in out
    assert len(table_rows(bq_client, dataset, "tasks")) == 8
