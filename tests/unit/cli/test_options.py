"""Unit tests of pipelines.cli.options.resolve, pop_dry_run and main()'s argument errors.

Nothing here touches a server: every case fails (or resolves) before the pipeline runs.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.cli.arguments import pop_dry_run
from pipelines.cli.options import SyncConfig, UsageError, resolve
from pipelines.firestore_to_bq import main

UTC = datetime.UTC
NOW = datetime.datetime(2026, 11, 25, 2, 0, 0, tzinfo=UTC)
BASE = ["--project", "my-project", "--dataset", "analytics"]
ALL_TABLES = ["emotional_memories", "projects", "routines", "tasks", "user_interactions"]


@pytest.fixture(autouse=True)
def _no_hash_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("F2BQ_HASH_KEY", raising=False)
    monkeypatch.delenv("MY_HASH_KEY", raising=False)


def config(*args: str, base: list[str] = BASE, dry_run: bool = False, now=NOW) -> SyncConfig:
    return resolve(PipelineOptions([*base, *args]), dry_run=dry_run, now=now)


def usage_error(*args: str, base: list[str] = BASE, dry_run: bool = False, now=NOW) -> str:
    with pytest.raises(UsageError) as info:
        config(*args, base=base, dry_run=dry_run, now=now)
    message = str(info.value)
    assert message and "\n" not in message
    return message


# --------------------------------------------------------------------------------------
# The window
# --------------------------------------------------------------------------------------


def test_default_window_is_yesterday_utc() -> None:
    cfg = config()
    assert (cfg.start_date, cfg.end_date) == (datetime.date(2026, 11, 24),) * 2
    assert cfg.window_days == [datetime.date(2026, 11, 24)]


@pytest.mark.parametrize(
    ("now", "yesterday"),
    [
        (datetime.datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime.date(2025, 12, 31)),
        (datetime.datetime(2026, 3, 1, 23, 59, tzinfo=UTC), datetime.date(2026, 2, 28)),
        (datetime.datetime(2024, 3, 1, 12, tzinfo=UTC), datetime.date(2024, 2, 29)),
        # 01:00 at +05:00 is still the previous day in UTC.
        (
            datetime.datetime(
                2026, 11, 25, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=5))
            ),
            datetime.date(2026, 11, 23),
        ),
    ],
)
def test_default_window_follows_now(now: datetime.datetime, yesterday: datetime.date) -> None:
    cfg = config(now=now)
    assert cfg.start_date == cfg.end_date == yesterday


def test_date() -> None:
    cfg = config("--date", "2026-11-20")
    assert (cfg.start_date, cfg.end_date) == (datetime.date(2026, 11, 20),) * 2


def test_start_and_end_date() -> None:
    cfg = config("--start_date", "2026-02-27", "--end_date", "2026-03-02")
    assert cfg.window_days == [
        datetime.date(2026, 2, 27),
        datetime.date(2026, 2, 28),
        datetime.date(2026, 3, 1),
        datetime.date(2026, 3, 2),
    ]


def test_same_start_and_end_date() -> None:
    cfg = config("--start_date", "2026-11-01", "--end_date", "2026-11-01")
    assert cfg.window_days == [datetime.date(2026, 11, 1)]


def test_equals_form_of_arguments() -> None:
    cfg = config("--date=2026-11-20", base=["--project=my-project", "--dataset=analytics"])
    assert cfg.start_date == datetime.date(2026, 11, 20)
    assert (cfg.project, cfg.dataset) == ("my-project", "analytics")


def test_end_before_start() -> None:
    message = usage_error("--start_date", "2026-11-24", "--end_date", "2026-11-23")
    assert message == "--end_date 2026-11-23 is before --start_date 2026-11-24"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-13-01", "is not a real calendar date"),
        ("2026-02-30", "is not a real calendar date"),
        ("2026-00-10", "is not a real calendar date"),
        ("24/11/2026", "is not a date in YYYY-MM-DD form"),
        ("2026-2-1", "is not a date in YYYY-MM-DD form"),
        ("20261124", "is not a date in YYYY-MM-DD form"),
        ("2026-11-24T00:00", "is not a date in YYYY-MM-DD form"),
        ("2026-11-24\n", "is not a date in YYYY-MM-DD form"),
        ("yesterday", "is not a date in YYYY-MM-DD form"),
    ],
)
@pytest.mark.parametrize("option", ["date", "start_date", "end_date"])
def test_malformed_date(option: str, value: str, reason: str) -> None:
    args = {
        "date": ["--date", value],
        "start_date": ["--start_date", value, "--end_date", "2026-11-24"],
        "end_date": ["--start_date", "2026-11-24", "--end_date", value],
    }[option]
    message = usage_error(*args)
    assert message == f"--{option} {value!r} {reason}"


@pytest.mark.parametrize(
    "args",
    [
        ["--date", "2026-11-24", "--start_date", "2026-11-20"],
        ["--date", "2026-11-24", "--end_date", "2026-11-25"],
        ["--date", "2026-11-24", "--start_date", "2026-11-20", "--end_date", "2026-11-25"],
    ],
)
def test_date_with_start_or_end(args: list[str]) -> None:
    assert usage_error(*args) == "use either --date or --start_date/--end_date, not both"


@pytest.mark.parametrize("args", [["--start_date", "2026-11-20"], ["--end_date", "2026-11-20"]])
def test_only_one_of_start_and_end(args: list[str]) -> None:
    assert usage_error(*args) == "--start_date and --end_date go together"


@pytest.mark.parametrize(
    "args",
    [
        ["--date", "2026-11-25"],  # today: a partial day
        ["--date", "2027-01-15"],
        ["--start_date", "2026-11-20", "--end_date", "2026-11-25"],
    ],
)
def test_a_day_after_yesterday_is_refused(args: list[str]) -> None:
    message = usage_error(*args)
    assert "after yesterday (2026-11-24, UTC)" in message


def test_main_refuses_a_future_date_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--date", "2999-01-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --date 2999-01-01 is after yesterday")


def test_edits_since_has_no_end() -> None:
    """--edits_since: every write since then, even after the window's last day."""
    cfg = config("--date", "2026-11-20", "--edits_since", "2026-11-10T00:00:00Z")
    assert cfg.edit_window == (datetime.datetime(2026, 11, 10, tzinfo=UTC), None)


def test_window_too_long() -> None:
    message = usage_error("--start_date", "2000-01-01", "--end_date", "2026-01-01")
    assert "is too long; split it" in message


# --------------------------------------------------------------------------------------
# Project, dataset, collections
# --------------------------------------------------------------------------------------


def test_resolved_config() -> None:
    cfg = config("--date", "2026-11-20", "--run_id", "r1")
    assert cfg.project == "my-project" and cfg.dataset == "analytics"
    assert [t.name for t in cfg.tables] == ALL_TABLES
    assert cfg.run_id == "r1"
    assert cfg.read_time == NOW and cfg.started_at == NOW
    assert cfg.read_time_text == "2026-11-25T02:00:00.000000Z"
    assert cfg.dry_run is False
    assert (cfg.lookback_days, cfg.num_splits, cfg.load_batch_rows) == (0, 8, 500_000)
    assert (cfg.database, cfg.location) == ("(default)", "US")


@pytest.mark.parametrize(
    ("collections", "tables"),
    [
        ("tasks", ["tasks"]),
        ("interactions", ["user_interactions"]),
        ("user_interactions,tasks", ["user_interactions", "tasks"]),
        (" tasks , memories ,", ["tasks", "emotional_memories"]),
        ("tasks,tasks", ["tasks"]),
        ("", ALL_TABLES),
    ],
)
def test_collections_subset(collections: str, tables: list[str]) -> None:
    cfg = config("--collections", collections)
    assert [t.name for t in cfg.tables] == tables


@pytest.mark.parametrize("collections", ["nope", "tasks,nope", "Tasks", "users"])
def test_unknown_collection(collections: str) -> None:
    message = usage_error("--collections", collections)
    assert message.startswith("unknown collection ")
    assert "known: " in message


def test_missing_project() -> None:
    assert usage_error(base=["--dataset", "analytics"]) == "--project is required"


@pytest.mark.parametrize(
    "project", ["My-Project", "p`; DROP TABLE x; --", "my project", "my-project\n", "a/b"]
)
def test_invalid_project(project: str) -> None:
    message = usage_error(base=["--project", project, "--dataset", "analytics"])
    assert message == f"project {project!r} is not a valid project id"


def test_domain_scoped_project_is_valid() -> None:
    cfg = config(base=["--project", "example.com:my-project", "--dataset", "d"])
    assert cfg.project == "example.com:my-project"


def test_missing_dataset() -> None:
    message = usage_error(base=["--project", "my-project"])
    assert message == "--dataset is required (or use --dry_run)"


def test_missing_dataset_allowed_with_dry_run() -> None:
    cfg = config(base=["--project", "my-project"], dry_run=True)
    assert cfg.dataset is None and cfg.dry_run is True


@pytest.mark.parametrize(
    "dataset",
    [
        "d`; DROP TABLE x; --",
        "d`",
        "my-dataset",
        "my.dataset",
        "my dataset",
        "p.d.t",
        "data\nset",
        "dataset\n",
        "1dataset",
    ],
)
@pytest.mark.parametrize("dry_run", [False, True])
def test_invalid_dataset(dataset: str, dry_run: bool) -> None:
    message = usage_error(base=["--project", "my-project", "--dataset", dataset], dry_run=dry_run)
    assert message == f"--dataset {dataset!r} is not a plain BigQuery identifier"


# --------------------------------------------------------------------------------------
# Run id, read time, numbers
# --------------------------------------------------------------------------------------


def test_generated_run_id() -> None:
    first, second = config().run_id, config().run_id
    assert first.startswith("20261125T020000_") and len(first) == len("20261125T020000_") + 6
    assert first != second


@pytest.mark.parametrize("run_id", ["r-1", "r 1", "r;1", "`r`", "x" * 65, "r1\n", "ré"])
def test_invalid_run_id(run_id: str) -> None:
    message = usage_error("--run_id", run_id)
    assert message == "--run_id may hold letters, digits and underscores only"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-24T10:00:00Z", datetime.datetime(2026, 11, 24, 10, tzinfo=UTC)),
        ("2026-11-24T12:00:00+02:00", datetime.datetime(2026, 11, 24, 10, tzinfo=UTC)),
        ("2026-11-25T02:00:00+00:00", NOW),
    ],
)
def test_read_time(value: str, expected: datetime.datetime) -> None:
    cfg = config("--read_time", value)
    assert cfg.read_time == expected
    assert cfg.read_time.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-11-24T10:00:00", "--read_time needs a UTC offset, e.g. 2026-11-25T02:00:00Z"),
        ("2026-11-24", "--read_time needs a UTC offset, e.g. 2026-11-25T02:00:00Z"),
        ("2026-11-25T02:00:01Z", "--read_time is in the future"),
        ("2027-01-01T00:00:00+00:00", "--read_time is in the future"),
        ("yesterday", "--read_time 'yesterday' is not an RFC 3339 time"),
        ("24/11/2026 10:00Z", "--read_time '24/11/2026 10:00Z' is not an RFC 3339 time"),
    ],
)
def test_invalid_read_time(value: str, message: str) -> None:
    assert usage_error("--read_time", value) == message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lookback_days", "-1"], "--lookback_days must be 0 or more"),
        (["--num_splits", "0"], "--num_splits must be between 1 and 1000"),
        (["--num_splits", "1001"], "--num_splits must be between 1 and 1000"),
        (["--load_batch_rows", "0"], "--load_batch_rows must be between 1 and 1000000"),
    ],
)
def test_invalid_numbers(args: list[str], message: str) -> None:
    assert usage_error(*args) == message


def test_lookback_days() -> None:
    cfg = config("--date", "2026-11-20", "--lookback_days", "3")
    assert cfg.lookback_days == 3
    assert cfg.rebuild_floor == datetime.date(2026, 11, 17)


# --------------------------------------------------------------------------------------
# Hash policy and --schemas_dir
# --------------------------------------------------------------------------------------


def _schemas_with_hash(tmp_path: Path) -> Path:
    raw: dict[str, Any] = {
        "table": "contacts",
        "source": {"collection": "contacts"},
        "id_column": "contact_id",
        "partition_column": "created_at",
        "fields": [
            {"name": "user_id", "type": "STRING", "mode": "REQUIRED"},
            {"name": "contact_id", "type": "STRING", "mode": "REQUIRED"},
            {"name": "email", "type": "STRING", "policy": "hash"},
            {"name": "created_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
        ],
    }
    (tmp_path / "contacts.json").write_text(json.dumps(raw))
    return tmp_path


def test_hash_policy_without_key(tmp_path: Path) -> None:
    schemas = _schemas_with_hash(tmp_path)
    message = usage_error("--schemas_dir", str(schemas))
    assert message == (
        "a column has policy 'hash' but neither --hash_key_secret nor $F2BQ_HASH_KEY is set"
    )


def test_hash_policy_with_secret_needs_a_version_name(tmp_path: Path) -> None:
    schemas = _schemas_with_hash(tmp_path)
    message = usage_error("--schemas_dir", str(schemas), "--hash_key_secret", "my-secret")
    assert message.startswith("--hash_key_secret must look like projects/")


def test_hash_policy_with_empty_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("F2BQ_HASH_KEY", "")
    message = usage_error("--schemas_dir", str(_schemas_with_hash(tmp_path)))
    assert "$F2BQ_HASH_KEY is set" in message


def test_hash_policy_with_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("F2BQ_HASH_KEY", "s3cret")
    cfg = config("--schemas_dir", str(_schemas_with_hash(tmp_path)))
    assert [t.name for t in cfg.tables] == ["contacts"]


def test_hash_policy_with_custom_key_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    schemas = str(_schemas_with_hash(tmp_path))
    monkeypatch.setenv("F2BQ_HASH_KEY", "not this one")
    message = usage_error("--schemas_dir", schemas, "--hash_key_env", "MY_HASH_KEY")
    assert message.endswith("neither --hash_key_secret nor $MY_HASH_KEY is set")
    monkeypatch.setenv("MY_HASH_KEY", "s3cret")
    assert config("--schemas_dir", schemas, "--hash_key_env", "MY_HASH_KEY").hash_key_env == (
        "MY_HASH_KEY"
    )


def test_bad_schemas_dir_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"table": "a b"}))
    message = usage_error("--schemas_dir", str(tmp_path))
    assert message.startswith("bad.json: table: ")


def test_empty_schemas_dir_is_a_usage_error(tmp_path: Path) -> None:
    assert usage_error("--schemas_dir", str(tmp_path)).startswith("no table schemas found")


# --------------------------------------------------------------------------------------
# pop_dry_run
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "dry_run", "rest"),
    [
        ([], False, []),
        (["--project", "p"], False, ["--project", "p"]),
        (["--dry_run"], True, []),
        (["--project", "p", "--dry_run", "--date", "x"], True, ["--project", "p", "--date", "x"]),
        (["--dry_run=true"], True, []),
        (["--dry_run=True"], True, []),
        (["--dry_run=1"], True, []),
        (["--dry_run=yes"], True, []),
        (["--dry_run="], True, []),
        (["--dry_run=false"], False, []),
        (["--dry_run=FALSE"], False, []),
        (["--dry_run=0"], False, []),
        (["--dry_run=no"], False, []),
        (["--dry_run", "--dry_run=false"], False, []),
        (["--dry_run_extra"], False, ["--dry_run_extra"]),
    ],
)
def test_pop_dry_run(argv: list[str], dry_run: bool, rest: list[str]) -> None:
    assert pop_dry_run(argv) == (dry_run, rest)


@pytest.mark.parametrize("value", ["maybe", "2", "on", "tru"])
def test_pop_dry_run_bad_value(value: str) -> None:
    with pytest.raises(UsageError, match=f"--dry_run takes true or false, not {value!r}"):
        pop_dry_run([f"--dry_run={value}"])


# --------------------------------------------------------------------------------------
# main(): exit code 2 and one "error:" line, before any server is contacted
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--dataset", "d"], "--project is required"),
        (["--project", "my-project"], "--dataset is required"),
        ([*BASE, "--dry_run=maybe"], "--dry_run takes true or false"),
        ([*BASE, "--date", "2026-13-01"], "is not a real calendar date"),
        ([*BASE, "--date", "24/11/2026"], "is not a date in YYYY-MM-DD form"),
        ([*BASE, "--start_date", "2026-11-24"], "go together"),
        ([*BASE, "--start_date", "2026-11-24", "--end_date", "2026-11-01"], "is before"),
        ([*BASE, "--date", "2026-11-24", "--start_date", "2026-11-24"], "not both"),
        ([*BASE, "--collections", "nope"], "unknown collection 'nope'"),
        (["--project", "my-project", "--dataset", "d`; DROP TABLE x; --"], "--dataset"),
        (["--project", "p`x", "--dataset", "d"], "is not a valid project id"),
        ([*BASE, "--run_id", "a-b"], "--run_id"),
        ([*BASE, "--read_time", "2026-11-24T10:00:00"], "needs a UTC offset"),
        ([*BASE, "--read_time", "2999-01-01T00:00:00Z"], "is in the future"),
        ([*BASE, "--lookback_days", "-2"], "--lookback_days must be 0 or more"),
        (["--project", "my-project", "--dataset", "d`", "--dry_run"], "--dataset"),
    ],
)
def test_main_reports_bad_arguments_on_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]


def test_main_hash_key_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*BASE, "--schemas_dir", str(_schemas_with_hash(tmp_path))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: a column has policy 'hash' but neither --hash_key_secret nor "
        "$F2BQ_HASH_KEY is set\n"
    )


def test_a_submitted_run_reports_where_its_outcome_goes_not_zero_counts() -> None:
    from pipelines.cli.summary import RunSummary

    summary = RunSummary(config("--run_id", "r1"), [], submitted=True)
    assert summary.reconciles
    assert summary.render() == (
        "run r1: window 2026-11-24..2026-11-24 submitted; "
        "its outcome and counts are recorded in _sync_runs"
    )


def test_an_unreadable_schemas_dir_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--schemas_dir: cannot read /nonexistent"):
        resolve(
            PipelineOptions(["--project", "p", "--dataset", "d", "--schemas_dir", "/nonexistent"])
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--date", "2026-11-20"), "--intraday takes no dates: it brings today (UTC) up to"),
        (("--start_date", "2026-11-20", "--end_date", "2026-11-21"), "--intraday takes no dates"),
        (("--mode", "full"), "--intraday reads what changed; it cannot be --mode full"),
        (("--edits_since", "2026-11-20T00:00:00Z"), "--intraday reads every change since"),
    ],
)
def test_intraday_refuses_dates_full_mode_and_edits_since(args, message) -> None:
    assert usage_error("--intraday", *args).startswith(message)


def test_intraday_goes_with_collections() -> None:
    settings = config("--intraday", "--collections", "tasks")
    assert settings.intraday and [t.name for t in settings.tables] == ["tasks"]
