"""scripts/backfill.py with a stand-in sync command: chunking, stopping, resuming."""

from __future__ import annotations

import datetime
import json
import shlex
import sys
from pathlib import Path

import pytest

from devtools import backfill

D = datetime.date

#: Logs each run's arguments; fails (exit 3) on the chunk starting at $FAIL_ON.
FAKE_SYNC = """
import json, os, sys
args = sys.argv[1:]
start = args[args.index("--start_date") + 1]
with open(os.environ["SYNC_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
sys.exit(3 if start == os.environ.get("FAIL_ON") else 0)
"""


@pytest.fixture
def fake_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path | str]:
    script = tmp_path / "fake_sync.py"
    script.write_text(FAKE_SYNC)
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv("SYNC_LOG", str(log))
    monkeypatch.delenv("FAIL_ON", raising=False)
    return {
        "command": shlex.join([sys.executable, str(script)]),
        "log": log,
        "state": tmp_path / "state.json",
    }


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
    return [
        "--start_date",
        start,
        "--end_date",
        end,
        "--command",
        str(fake["command"]),
        "--state_file",
        str(fake["state"]),
        *extra,
    ]


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


def test_runs_every_chunk_in_order_with_pass_through_args(fake_sync: dict) -> None:
    code = backfill.main(
        argv(fake_sync, "2026-01-01", "2026-01-17", "--", "--project", "p", "--dataset", "d")
    )

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
        "--project",
        "p",
        "--dataset",
        "d",
    ]
    state = json.loads(fake_sync["state"].read_text())
    assert state["completed"] == [
        ["2026-01-01", "2026-01-07"],
        ["2026-01-08", "2026-01-14"],
        ["2026-01-15", "2026-01-17"],
    ]


def test_stops_at_the_first_failure_and_resumes_after_the_last_done_chunk(
    fake_sync: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = argv(fake_sync, "2026-01-01", "2026-01-20", "--chunk_days", "5", "--", "--dataset", "d")
    monkeypatch.setenv("FAIL_ON", "2026-01-11")

    assert backfill.main(args) == 3
    assert runs(fake_sync["log"]) == [
        ("2026-01-01", "2026-01-05"),
        ("2026-01-06", "2026-01-10"),
        ("2026-01-11", "2026-01-15"),
    ]
    assert json.loads(fake_sync["state"].read_text())["completed"] == [
        ["2026-01-01", "2026-01-05"],
        ["2026-01-06", "2026-01-10"],
    ]

    monkeypatch.delenv("FAIL_ON")
    fake_sync["log"].unlink()
    assert backfill.main(args) == 0
    assert runs(fake_sync["log"]) == [("2026-01-11", "2026-01-15"), ("2026-01-16", "2026-01-20")]
    assert len(json.loads(fake_sync["state"].read_text())["completed"]) == 4

    fake_sync["log"].unlink()
    assert backfill.main(args) == 0
    assert runs(fake_sync["log"]) == []


def test_refuses_a_state_file_from_another_backfill(
    fake_sync: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAIL_ON", "2026-01-08")
    assert backfill.main(argv(fake_sync, "2026-01-01", "2026-01-31", "--", "--dataset", "a")) == 3
    fake_sync["log"].unlink()

    other_range = argv(fake_sync, "2026-01-01", "2026-02-28", "--", "--dataset", "a")
    other_args = argv(fake_sync, "2026-01-01", "2026-01-31", "--", "--dataset", "b")
    other_chunks = argv(
        fake_sync, "2026-01-01", "2026-01-31", "--chunk_days", "3", "--", "--dataset", "a"
    )
    for args in (other_range, other_args, other_chunks):
        assert backfill.main(args) == 2
        assert "records a different backfill" in capsys.readouterr().err
    assert runs(fake_sync["log"]) == []


def test_dry_run_prints_chunk_commands_and_marks_done_ones(
    fake_sync: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argv(fake_sync, "2026-01-01", "2026-01-10", "--chunk_days", "4", "--", "--dataset", "d")
    monkeypatch.setenv("FAIL_ON", "2026-01-05")
    assert backfill.main(args) == 3
    fake_sync["log"].unlink()
    capsys.readouterr()

    assert backfill.main([*args[: args.index("--")], "--dry_run", *args[args.index("--") :]]) == 0

    command = fake_sync["command"]
    assert capsys.readouterr().out.splitlines() == [
        f"# done: {command} --start_date 2026-01-01 --end_date 2026-01-04 --dataset d",
        f"{command} --start_date 2026-01-05 --end_date 2026-01-08 --dataset d",
        f"{command} --start_date 2026-01-09 --end_date 2026-01-10 --dataset d",
    ]
    assert runs(fake_sync["log"]) == []


def test_default_command_is_the_pipeline_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(tmp_path / "s.json")
    args = ["--start_date", "2026-01-01", "--end_date", "2026-01-02", "--state_file", state]
    assert backfill.main([*args, "--dry_run"]) == 0
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
            ]
        )
    ]


@pytest.mark.parametrize(
    "bad",
    [
        ["--start_date", "2026-01-10", "--end_date", "2026-01-01"],
        ["--start_date", "2026-1-1", "--end_date", "2026-01-01"],
        ["--start_date", "2026-01-01", "--end_date", "2026-01-02", "--chunk_days", "0"],
        ["--start_date", "2026-01-01", "--end_date", "2026-01-02", "--", "--date", "2026-01-01"],
    ],
)
def test_bad_arguments(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        backfill.main([*bad, "--dry_run"] if "--" not in bad else bad)
    assert exit_info.value.code == 2
