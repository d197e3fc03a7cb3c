"""f2bq_analytics/analytics.py without a server: SQL shape, parameters, byte cap, arguments."""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from google.cloud import bigquery

from devtools import REPO_ROOT
from f2bq_analytics import analytics
from pipelines.convert.table_spec import load_specs
from tests.support.network import closed_port

UTC = datetime.UTC
AS_OF = datetime.datetime(2026, 11, 10, 12, tzinfo=UTC)
HOSTILE = "x' OR '1'='1"


class FakeJob:
    total_bytes_processed = 1234

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def result(self, **_: Any) -> list[dict[str, Any]]:
        return self.rows


class FakeClient:
    """Records each query and its job config; answers with canned rows."""

    ROWS = {
        "total_interactions": [
            {
                "total_interactions": 0, "active_days": 0, "avg_duration_ms": None,
                "total_tokens": 0, "error_count": 0, "top_intents": None,
            }
        ],
        "AS tasks": [{"tasks": 0, "completed": 0, "rate": None}],
        "message_in": [],
        "AS memories": [],
    }  # fmt: skip

    def __init__(self) -> None:
        self.calls: list[tuple[str, bigquery.QueryJobConfig]] = []

    def query(self, sql: str, job_config: bigquery.QueryJobConfig, **_: Any) -> FakeJob:
        self.calls.append((sql, job_config))
        return FakeJob(next(rows for key, rows in self.ROWS.items() if key in sql))


def ask_everything(a: analytics.Analytics, user_id: str = "u1", **kwargs: Any) -> list[Any]:
    return [
        a.user_analytics(user_id, **kwargs),
        a.task_completion_rate(user_id, **kwargs),
        a.chat_history(user_id, **kwargs),
        a.emotional_trend(user_id, **kwargs),
    ]


@pytest.mark.parametrize("name", sorted(analytics.QUERIES))
def test_each_query_filters_on_its_tables_partition_column(name: str):
    query = analytics.QUERIES[name]
    spec = load_specs()[query.table]
    sql = query.text("my-proj", "app_analytics")
    assert f"FROM `my-proj.app_analytics.{spec.name}`" in sql
    column = re.escape(spec.partition_column)
    window = (
        rf"WHERE {column} BETWEEN TIMESTAMP_SUB\(@as_of, INTERVAL @days DAY\) AND @as_of"
        r"\s+AND user_id = @user_id"
    )
    assert re.search(window, sql), sql
    assert len(re.findall(r"\bFROM `", sql)) == 1  # the one table read is the filtered one


@pytest.mark.parametrize(
    "query", [*analytics.QUERIES.values(), *analytics.VIEWS], ids=lambda q: q.name
)
def test_no_parameter_names_in_comments(query: analytics.Sql):
    """bqemulator counts ``@name`` in comments as parameters and then refuses the query."""
    comments = re.findall(r"--[^\n]*", query.text("p-roject", "d"))
    assert comments and not any("@" in c for c in comments)


@pytest.mark.parametrize("view", list(analytics.VIEWS), ids=lambda v: v.name)
def test_views_read_their_table_and_group_by_user_and_day(view: analytics.Sql):
    sql = view.text("my-proj", "app_analytics")
    assert f"FROM `my-proj.app_analytics.{view.table}`" in sql
    assert f"DATE({load_specs()[view.table].partition_column}) AS day" in sql
    assert sql.rstrip().endswith("GROUP BY user_id, day")


def test_every_value_is_a_parameter_and_every_query_has_a_byte_cap():
    client = FakeClient()
    a = analytics.Analytics("my-proj", "app_analytics", client=client)

    ask_everything(a, HOSTILE, days=13, as_of=AS_OF)

    assert len(client.calls) == 4
    for sql, config in client.calls:
        assert HOSTILE not in sql and "2026" not in sql and "13" not in sql
        values = {p.name: (p.type_, p.value) for p in config.query_parameters}
        assert values["user_id"] == ("STRING", HOSTILE)
        assert values["days"] == ("INT64", 13)
        assert values["as_of"] == ("TIMESTAMP", AS_OF)
        assert set(re.findall(r"@(\w+)", sql)) == set(values)
        assert config.maximum_bytes_billed == analytics.DEFAULT_MAXIMUM_BYTES_BILLED
        assert not config.dry_run
    chat_values = {p.name: p.value for p in client.calls[2][1].query_parameters}
    assert chat_values["limit"] == 20 and chat_values["intent"] == "chat"


def test_byte_cap_is_an_option():
    client = FakeClient()
    a = analytics.Analytics("my-proj", "d", client=client, maximum_bytes_billed=10**6)
    a.task_completion_rate("u1")
    assert client.calls[0][1].maximum_bytes_billed == 10**6
    with pytest.raises(ValueError, match="maximum_bytes_billed"):
        analytics.Analytics("my-proj", "d", client=client, maximum_bytes_billed=0)


def test_as_of_defaults_to_now_in_utc():
    client = FakeClient()
    before = datetime.datetime.now(UTC)
    analytics.Analytics("my-proj", "d", client=client).user_analytics("u1")
    after = datetime.datetime.now(UTC)
    (as_of,) = [p.value for p in client.calls[0][1].query_parameters if p.name == "as_of"]
    assert before <= as_of <= after and as_of.tzinfo is not None


def test_as_of_in_another_zone_is_the_same_instant():
    client = FakeClient()
    paris = datetime.timezone(datetime.timedelta(hours=1))
    analytics.Analytics("my-proj", "d", client=client).user_analytics(
        "u1", as_of=datetime.datetime(2026, 11, 10, 13, tzinfo=paris)
    )
    (as_of,) = [p.value for p in client.calls[0][1].query_parameters if p.name == "as_of"]
    assert as_of == AS_OF and as_of.utcoffset() == datetime.timedelta(0)


def test_empty_answers_have_the_documented_shapes():
    a = analytics.Analytics("my-proj", "d", client=FakeClient())
    assert ask_everything(a) == [
        {
            "total_interactions": 0, "active_days": 0, "avg_duration_ms": None,
            "total_tokens": 0, "error_count": 0, "top_intents": [],
        },
        {"tasks": 0, "completed": 0, "rate": None},
        [],
        {"days": [], "avg_valence": None},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "days must be"),
        ({"days": True}, "days must be"),
        ({"days": 3661}, "days must be"),
        ({"days": "7"}, "days must be"),
        ({"as_of": datetime.datetime(2026, 11, 10)}, "timezone-aware"),
        ({"as_of": "2026-11-10T00:00:00Z"}, "timezone-aware"),
    ],
)
def test_bad_arguments_are_refused_before_any_query(kwargs: dict[str, Any], message: str):
    client = FakeClient()
    a = analytics.Analytics("my-proj", "d", client=client)
    with pytest.raises(ValueError, match=message):
        a.user_analytics("u1", **kwargs)
    for limit in (0, 101):
        with pytest.raises(ValueError, match="limit must be"):
            a.chat_history("u1", limit=limit)
    with pytest.raises(ValueError, match="user_id"):
        a.emotional_trend("")
    assert client.calls == []


def test_bad_names_are_refused_before_a_client_is_made():
    with pytest.raises(ValueError, match="dataset"):
        analytics.Analytics("my-proj", "app-analytics`; DROP")
    with pytest.raises(ValueError, match="project"):
        analytics.Analytics("My Project", "d")


def test_async_twins_await_the_same_calls():
    client = FakeClient()
    b = analytics.AsyncAnalytics("my-proj", "d", client=client)

    async def ask() -> list[Any]:
        return [
            await b.user_analytics("u1", days=3, as_of=AS_OF),
            await b.task_completion_rate("u1", days=3, as_of=AS_OF),
            await b.chat_history("u1", days=3, limit=5, as_of=AS_OF),
            await b.emotional_trend("u1", days=3, as_of=AS_OF),
        ]

    assert asyncio.run(ask()) == ask_everything(
        analytics.Analytics("my-proj", "d", client=FakeClient()), days=3, as_of=AS_OF
    )
    assert [sql for sql, _ in client.calls] == [
        analytics.QUERIES[n].text("my-proj", "d")
        for n in ("user_analytics", "task_completion_rate", "chat_history", "emotional_trend")
    ]


def test_dry_run_returns_the_bytes_processed():
    client = FakeClient()
    a = analytics.Analytics("my-proj", "d", client=client)
    assert a.bytes_processed("chat_history", "u1", days=7, limit=5) == 1234
    ((_, config),) = client.calls
    assert config.dry_run and not config.use_query_cache
    assert config.maximum_bytes_billed == analytics.DEFAULT_MAXIMUM_BYTES_BILLED


COMMON = ["--project", "my-proj", "--dataset", "d", "--user_id", "u1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["top_users", *COMMON], "invalid choice: 'top_users'"),
        (["user_analytics", "--project", "my-proj", "--dataset", "d"], "--user_id"),
        (["user_analytics", *COMMON, "--days", "0"], "days must be"),
        (["user_analytics", *COMMON, "--days", "week"], "invalid int value: 'week'"),
        (["user_analytics", *COMMON, "--as_of", "2026-11-10T00:00:00"], "needs a UTC offset"),
        (["user_analytics", *COMMON, "--as_of", "yesterday"], "not an RFC 3339 time"),
        (["user_analytics", *COMMON, "--limit", "5"], "--limit applies to chat_history only"),
        (["chat_history", *COMMON, "--limit", "101"], "--limit must be"),
        (["chat_history", *COMMON[:3], "bad-name", *COMMON[4:]], "dataset 'bad-name'"),
        (["chat_history", "--project", "Not A Project", *COMMON[2:]], "project"),
        (["user_analytics", *COMMON, "--user_id", ""], "user_id"),
        (["user_analytics", "--project", "my-proj", "--dataset", "d", "--user-id", "u1"],
         "unknown option --user-id: did you mean --user_id?"),
        (["user_analytics", *COMMON, "--as-of", "2026-11-10T00:00:00Z"],
         "unknown option --as-of: did you mean --as_of?"),
        (["user_analytics", *COMMON, "--maximum_bytes_billed", "0"], "--maximum_bytes_billed"),
        (["user_analytics", *COMMON, "--zzz"], "unknown option --zzz (see python -m "),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(argv, message, capsys, monkeypatch):
    def no_client(*_: Any, **__: Any) -> None:
        raise AssertionError("no client may be made for bad arguments")

    monkeypatch.setattr(analytics.bq, "make_client", no_client)
    monkeypatch.setattr(analytics.Analytics, "_job", no_client)
    assert analytics.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_cli_with_bigquery_unreachable_fails_in_bounded_time_with_one_line():
    """Issue 14.6: the sync's probe, not the query's retries: one line, exit 1, no traceback."""
    port = closed_port()
    env = {**os.environ, "BIGQUERY_EMULATOR_HOST": f"127.0.0.1:{port}"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "f2bq_analytics", "user_analytics", *COMMON],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: the BigQuery emulator at http://127.0.0.1:{port} (BIGQUERY_EMULATOR_HOST) "
        "did not answer within 12 s (ConnectionError: Failed to establish a new connection: "
        "[Errno 111] Connection refused); start the emulator or unset BIGQUERY_EMULATOR_HOST"
    ]
    assert seconds < 60  # a hang guard, not a speed claim


def test_sql_files_ship_in_the_wheel(tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path)],
        cwd=REPO_ROOT, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    sql_files = REPO_ROOT.glob("f2bq_analytics/sql/**/*.sql")
    sql = {p.relative_to(REPO_ROOT).as_posix() for p in sql_files}
    assert len(sql) == len(analytics.QUERIES) + len(analytics.VIEWS)
    assert sql <= shipped
