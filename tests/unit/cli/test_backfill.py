"""scripts/backfill.py: chunking, stopping and resuming from ``_sync_runs``.

The unit tests run a stand-in sync command and stand in for the one BigQuery
read (``finished_windows``); the integration tests run the real sync against
the emulators and read the real ``_sync_runs``.
"""

from __future__ import annotations

import datetime
import json
import shlex
import sys
from pathlib import Path

import pytest

from pipelines.cli import backfill
from tests.support.documents import task
from tests.support.sync_helpers import seed

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


def test_chunks_have_inclusive_ends_and_a_short_last_chunk() -> None:
    assert backfill.chunks(D(2026, 1, 1), D(2026, 1, 17), 7) == [
        (D(2026, 1, 1), D(2026, 1, 7)),
        (D(2026, 1, 8), D(2026, 1, 14)),
        (D(2026, 1, 15), D(2026, 1, 17)),
    ]
    assert backfill.chunks(D(2026, 1, 1), D(2026, 1, 14), 7)[-1] == (D(2026, 1, 8), D(2026, 1, 14))
    assert backfill.chunks(D(2026, 1, 1), D(2026, 1, 1), 7) == [(D(2026, 1, 1), D(2026, 1, 1))]
    assert backfill.chunks(D(2026, 2, 27), D(2026, 3, 2), 1) == [
        (D(2026, 2, 27), D(2026, 2, 27)),
        (D(2026, 2, 28), D(2026, 2, 28)),
        (D(2026, 3, 1), D(2026, 3, 1)),
        (D(2026, 3, 2), D(2026, 3, 2)),
    ]


def test_a_chunk_is_done_only_when_one_window_holds_all_its_days() -> None:
    chunk = (D(2026, 1, 8), D(2026, 1, 14))
    assert backfill.covered(chunk, [(D(2026, 1, 8), D(2026, 1, 14))])
    assert backfill.covered(chunk, [(D(2026, 1, 1), D(2026, 1, 31))])
    assert not backfill.covered(chunk, [])
    assert not backfill.covered(chunk, [(D(2026, 1, 9), D(2026, 1, 14))])
    assert not backfill.covered(chunk, [(D(2026, 1, 8), D(2026, 1, 13))])
    # Two runs that together hold the days are not one run that replaced them all.
    assert not backfill.covered(
        chunk, [(D(2026, 1, 1), D(2026, 1, 10)), (D(2026, 1, 11), D(2026, 1, 20))]
    )


def test_runs_every_chunk_in_order_with_pass_through_args(fake_sync: dict) -> None:
    code = backfill.main(argv(fake_sync, "2026-01-01", "2026-01-17", *TARGET))

    assert code == 0
    assert runs(fake_sync["log"]) == [
        ("2026-01-01", "2026-01-07"),
        ("2026-01-08", "2026-01-14"),
        ("2026-01-15", "2026-01-17"),
    ]
    first = json.loads(fake_sync["log"].read_text().splitlines()[0])
    assert first == [
        "--start_date",
        "2026-01-01",
        "--end_date",
        "2026-01-07",
        "--mode",
        "incremental",  # each chunk reads its own days (issue 26)
        "--project",
        "my-proj",
        "--dataset",
        "d",
    ]


def test_stops_at_the_first_failure_and_resumes_after_what_the_audit_says_is_done(
    fake_sync: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argv(fake_sync, "2026-01-01", "2026-01-20", "--chunk_days", "5", *TARGET)
    monkeypatch.setenv("FAIL_ON", "2026-01-11")

    assert backfill.main(args) == 3
    assert runs(fake_sync["log"]) == [
        ("2026-01-01", "2026-01-05"),
        ("2026-01-06", "2026-01-10"),
        ("2026-01-11", "2026-01-15"),
    ]
    assert "FAILED with exit code 3; 2 of 4 chunks done" in capsys.readouterr().err

    monkeypatch.delenv("FAIL_ON")
    fake_sync["log"].unlink()
    assert backfill.main(args) == 0
    assert runs(fake_sync["log"]) == [("2026-01-11", "2026-01-15"), ("2026-01-16", "2026-01-20")]
    out = capsys.readouterr().out
    assert "chunk 1/4 2026-01-01..2026-01-05: already done (my-proj.d._sync_runs), skipped" in out

    fake_sync["log"].unlink()
    assert backfill.main(args) == 0
    assert runs(fake_sync["log"]) == []
    assert "all 4 chunks already done (my-proj.d._sync_runs); nothing to run" in (
        capsys.readouterr().out
    )


def test_the_tables_a_chunk_syncs_come_from_the_pass_through_args(fake_sync: dict) -> None:
    assert backfill.main(argv(fake_sync, "2026-01-01", "2026-01-01", *TARGET)) == 0
    everything = fake_sync["targets"][-1]
    assert everything == backfill.Target(
        "my-proj", "d", "US", ("emotional_memories", "projects", "routines", "tasks",
                               "user_interactions")
    )  # fmt: skip
    some = [*TARGET, "--collections=interactions,tasks", "--bq_location", "EU"]
    assert backfill.main(argv(fake_sync, "2026-01-01", "2026-01-01", *some)) == 0
    assert fake_sync["targets"][-1] == backfill.Target(
        "my-proj", "d", "EU", ("user_interactions", "tasks")
    )


def test_dry_run_prints_every_chunk_command_and_reads_nothing(
    fake_sync: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argv(fake_sync, "2026-01-01", "2026-01-10", "--chunk_days", "4", "--dry_run", *TARGET)

    assert backfill.main(args) == 0

    command = fake_sync["command"]
    tail = "--mode incremental --project my-proj --dataset d"
    assert capsys.readouterr().out.splitlines() == [
        f"{command} --start_date 2026-01-01 --end_date 2026-01-04 {tail}",
        f"{command} --start_date 2026-01-05 --end_date 2026-01-08 {tail}",
        f"{command} --start_date 2026-01-09 --end_date 2026-01-10 {tail}",
    ]
    assert runs(fake_sync["log"]) == [] and fake_sync["targets"] == []


def test_default_command_is_the_pipeline_module(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--start_date", "2026-01-01", "--end_date", "2026-01-02", "--dry_run"]
    assert backfill.main(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        shlex.join(
            [
                sys.executable,
                "-m",
                "pipelines.firestore_to_bq",
                "--start_date",
                "2026-01-01",
                "--end_date",
                "2026-01-02",
                "--mode",
                "incremental",
            ]
        )
    ]


def test_a_mode_given_after_the_separator_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--start_date", "2026-01-01", "--end_date", "2026-01-02", "--dry_run"]
    assert backfill.main([*args, "--", "--mode", "full"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith("--end_date 2026-01-02 --mode full") and "incremental" not in line


DATES = ["--start_date", "2026-01-01", "--end_date", "2026-01-02"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--start_date", "2026-01-10", "--end_date", "2026-01-01"], "is before --start_date"),
        (["--start_date", "2026-1-1", "--end_date", "2026-01-01"], "not a date in YYYY-MM-DD"),
        ([*DATES, "--chunk_days", "0"], "--chunk_days must be between 1 and"),
        ([*DATES, "--chunk-days", "3"], "unknown option --chunk-days: did you mean --chunk_days?"),
        ([*DATES, *TARGET, "--date", "2026-01-01"], "--date is set per chunk"),
        ([*DATES, "--state_file", "s.json", *TARGET], "--state_file is gone: progress is read"),
        ([*DATES], "need --project and --dataset"),
        ([*DATES, "--", "--project", "my-proj"], "need --project and --dataset"),
        ([*DATES, "--", "--project", "my-proj", "--dataset", "d;x"], "--dataset 'd;x'"),
        ([*DATES, *TARGET, "--collections", "nope"], "unknown collection 'nope'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_run_nothing(
    bad: list[str], message: str, fake_sync: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    assert backfill.main(["--command", fake_sync["command"], *bad]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and message in err, err
    assert runs(fake_sync["log"]) == [] and fake_sync["targets"] == []


# --- against the emulators: the real sync, the real _sync_runs --------------------------

ALL = ("tasks", "user_interactions")


def _entry(table: str, status: str = "succeeded", replaced: bool = True) -> dict:
    return {"table": table, "status": status, "replaced": replaced}


def _row(run: str, start: str, end: str, status: str, tables: list, started: str) -> dict:
    return {
        "run_id": run, "window_start": start, "window_end": end, "status": status,
        "started_at": started, "finished_at": started, "tables": tables,
    }  # fmt: skip


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




def test_a_sync_runs_row_this_version_cannot_read_leaves_the_progress_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipelines.services import bigquery as bq
    from pipelines.services import reachability
    from pipelines.state import run_log
    from pipelines.state.verdict import TableVerdict

    def newer(*_):
        return TableVerdict.from_json({"table": "tasks", "status": "paused"})

    monkeypatch.setattr(reachability, "check_bigquery", lambda *_: None)
    monkeypatch.setattr(bq, "make_client", lambda *_: object())
    monkeypatch.setattr(run_log, "succeeded_windows", newer)
    target = backfill.Target("p", "d", None, ("tasks",))
    with pytest.raises(backfill.ProgressUnknown, match=r"cannot read p\.d\._sync_runs: .*'paused'"):
        backfill.finished_windows(target, datetime.datetime.now(UTC))
