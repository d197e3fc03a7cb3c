"""The command line (*unit*): unknown arguments refused with a spelling hint, --help, --log_level.

Nothing here contacts a server: every case ends before the pipeline is built.
"""

from __future__ import annotations

import argparse
import logging

import pytest

from pipelines.cli.arguments import check_known, pop_log_level
from pipelines.cli.options import SyncOptions, UsageError, resolve
from pipelines.firestore_to_bq import main, parse_options

BASE = ["--project", "my-project", "--dataset", "analytics"]


def one_error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "right"),
    [
        (["--start-date", "2026-11-18", "--end-date", "2026-11-24"], "--start_date"),
        (["--end-date=2026-11-24"], "--end_date"),
        (["--dry-run"], "--dry_run"),
        (["--num-splits", "4"], "--num_splits"),
        (["--Dataset", "x"], "--dataset"),
        (["--dataste", "x"], "--dataset"),
        (["--colections", "tasks"], "--collections"),
        (["--lookback", "2"], "--lookback_days"),
        (["--log-level", "DEBUG"], "--log_level"),
        (["--temp-location", "gs://b/t"], "--temp_location"),
    ],
)
def test_misspelled_options_fail_at_once_with_the_right_spelling(
    args: list[str], right: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = args[0].split("=")[0]
    line = one_error_line([*BASE, *args], capsys)
    assert line == f"error: unknown option {wrong}: did you mean {right}?"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--frobnicate"],
            "error: unknown option --frobnicate (run firestore-to-bq --help for the sync's "
            "options, --help_beam for Beam's)",
        ),
        (
            ["2026-11-24"],
            "error: unexpected argument '2026-11-24' (options start with --; see --help)",
        ),
    ],
)
def test_arguments_nothing_accepts_fail_at_once(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert one_error_line([*BASE, *args], capsys) == message


def test_beam_options_still_pass_through() -> None:
    args = [
        *BASE,
        *["--runner", "DataflowRunner", "--region", "europe-west1"],
        *["--temp_location", "gs://b/temp", "--setup_file", "./setup.py"],
        *["--max_num_workers", "3", "--direct_num_workers", "2"],
        *["--experiments", "a", "--experiments=b", "--service_account_email", "x@y.z"],
        *["--num_splits=4", "--date", "2026-11-20"],
    ]
    check_known(args)
    config = resolve(parse_options(args))
    assert config.num_splits == 4 and config.project == "my-project"


def test_unknown_option_is_refused_by_parse_options_too() -> None:
    with pytest.raises(UsageError, match="did you mean --start_date"):
        parse_options([*BASE, "--start-date", "2026-11-18"])


# --------------------------------------------------------------------------------------
# --help and --help_beam
# --------------------------------------------------------------------------------------


def _sync_actions() -> list[argparse.Action]:
    parser = argparse.ArgumentParser(add_help=False)
    SyncOptions._add_argparse_args(parser)
    return parser._actions


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_sync_options_with_help_and_defaults(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([flag]) == 0
    out = " ".join(capsys.readouterr().out.split())  # help wraps lines; compare words
    actions = _sync_actions()
    assert len(actions) >= 15
    for action in actions:
        option = action.option_strings[0]
        assert f" {option} " in out, option
        assert " ".join((action.help or "").split()) in out, option
        if action.default not in (None, "", False):
            assert str(action.default) in out, option
    for entry in ("--dry_run", "--log_level", "--help_beam"):
        assert f" {entry} " in out
    # The sync's own options come first, Beam's apart and after, with a pointer to all.
    assert out.index("sync options:") < out.index("Beam options used most:")
    assert "firestore-to-bq --help_beam lists them" in out
    assert "firestore-to-bq status" in out


def test_help_beam_lists_every_beam_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help_beam"]) == 0
    out = capsys.readouterr().out
    for option in ("--temp_location", "--max_num_workers", "--direct_num_workers", "--dataset"):
        assert option in out


# --------------------------------------------------------------------------------------
# --log_level
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "level", "rest"),
    [
        ([], logging.INFO, []),
        (["--log_level", "DEBUG", "--date", "x"], logging.DEBUG, ["--date", "x"]),
        (["--log_level=warning"], logging.WARNING, []),
        (["--project", "p", "--log_level", "ERROR"], logging.ERROR, ["--project", "p"]),
    ],
)
def test_pop_log_level(argv: list[str], level: int, rest: list[str]) -> None:
    assert pop_log_level(argv) == (level, rest)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--log_level", "verbose"], "--log_level 'verbose' is not one of DEBUG, INFO"),
        (["--log_level"], "--log_level needs a value"),
    ],
)
def test_bad_log_level(args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert fragment in one_error_line([*BASE, *args], capsys)


# --------------------------------------------------------------------------------------
# The summary's wording
# --------------------------------------------------------------------------------------


def test_summary_says_1_row_not_1_rows() -> None:
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.cli.summary import RunSummary, TableSummary

    config = resolve(PipelineOptions([*BASE, "--date", "2026-11-20", "--collections", "tasks"]))
    table = TableSummary("tasks", read=3, rows=3, written=3)
    table.written_per_day = {"2026-11-20": 1, "2026-11-21": 2, "2026-11-22": 0}
    lines = RunSummary(config, [table]).render().splitlines()
    assert "  2026-11-20: 1 row" in lines
    assert "  2026-11-21: 2 rows" in lines
    assert "  2026-11-22: 0 rows" in lines


@pytest.mark.parametrize(
    ("runner", "expected"),
    [
        (["--runner", "FooRunner"], "--runner FooRunner: not a Beam runner"),
        (["--runner", "DataflowRunner"], "Missing required option: region"),
        (["--runner", "DataflowRunner", "--region", "europe-west1"], "temp_location"),
        (
            ["--runner", "DataflowRunner", "--region", "europe-west1", "--temp_location", "/tmp"],
            "Invalid GCS path",
        ),
    ],
)
def test_a_bad_runner_is_refused_by_beams_validator_before_anything_runs(
    runner: list[str], expected: str
) -> None:
    """Issue 23, finding 2 (no server: the check comes before any call)."""
    from pipelines.firestore_to_bq import check_runner

    with pytest.raises(UsageError, match=expected):
        check_runner(parse_options([*BASE, *runner]))


def test_a_complete_dataflow_runner_passes_the_check_without_credentials() -> None:
    from pipelines.firestore_to_bq import check_runner

    dataflow = ["--runner", "DataflowRunner", "--region", "europe-west1"]
    check_runner(parse_options([*BASE, *dataflow, "--temp_location", "gs://my-bucket/temp"]))


def test_a_stop_lost_inside_a_library_is_not_the_last_one_the_run_hears() -> None:
    """The stop trial's stop109: a SIGTERM raised inside a finalizer is swallowed
    ("Exception ignored"); the next one must still stop the run. Once the run acts
    on the stop, further signals are let go so its recording finishes."""
    import os
    import signal

    from pipelines import firestore_to_bq as sync

    with sync._stop_on_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt:
            pass  # as a library's bare except or a finalizer would
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        sync.ACTING_ON_STOP.set()
        os.kill(os.getpid(), signal.SIGTERM)  # ignored while the stop is recorded
        assert sync.STOPPED.is_set()


def test_the_command_line_ignores_a_stop_after_the_run_ended(tmp_path) -> None:
    """The stop trial's 16 runs killed (-15) after their summary: the process keeps
    its exit status through the interpreter's shutdown."""
    import signal
    import subprocess
    import sys

    from devtools import REPO_ROOT

    code = (
        "import os, signal, sys, time\n"
        "from pipelines import firestore_to_bq as f\n"
        "f._main = lambda args, now: 0\n"
        "code = f.cli()\n"
        "os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.2)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode} (-{signal.SIGTERM}: killed)"


def test_a_sync_runs_row_this_version_cannot_read_stops_the_run_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Planning from a status a newer sync wrote would misread it: refused before any lease."""
    from pipelines import firestore_to_bq
    from pipelines.state.verdict import run_status

    def plan(*_, **__):
        return run_status({"run_id": "r9", "status": "paused"})

    monkeypatch.setattr(firestore_to_bq, "run", plan)
    assert main(["--project", "p", "--dataset", "d"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: _sync_runs row of run 'r9': unknown status 'paused'"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
