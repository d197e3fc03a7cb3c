"""Unit tests of the SQL text and identifier checks in pipelines.services.bigquery (no server)."""

from __future__ import annotations

import datetime
import re

import pytest

from pipelines.services.bigquery import (
    EMULATOR_ENV,
    UnsafeIdentifier,
    check_identifier,
    check_project,
    date_literals,
    dead_letters_sql,
    emulator_endpoint,
    replace_days_sql,
    staging_table_name,
    table_sql,
)
from pipelines.state.dead_letters import Answered

D1, D2, D3 = datetime.date(2026, 11, 23), datetime.date(2026, 11, 24), datetime.date(1999, 1, 2)
COLUMNS = ["user_id", "task_id", "created_at", "extra"]
KEYS = ["_document_path"]

INJECTIONS = [
    "t`; DROP TABLE x; --",
    "t` WHERE TRUE; --",
    "`",
    "a.b",
    "a b",
    "a;b",
    "a-b",
    "a'b",
    'a"b',
    "a\\b",
    "a/*x*/",
    "a--",
    "",
    "1a",
    "tasks\n",
    "\ntasks",
    "tasks\x00",
    "täsks",
    "x" * 301,
]
INJECTION_IDS = [repr(v)[:24] for v in INJECTIONS]


def replace_sql(**overrides) -> str:
    args = {
        "project": "my-project",
        "dataset": "analytics",
        "target": "tasks",
        "staging": "_staging_r1_tasks",
        "columns": COLUMNS,
        "partition_column": "created_at",
        "days": [D1, D2],
        "key_columns": KEYS,
    }
    args.update(overrides)
    return replace_days_sql(**args)


def append(**overrides) -> str:
    args = {
        "project": "my-project",
        "dataset": "analytics",
        "target": "_dead_letters",
        "staging": "_staging_r1__dead_letters",
        "columns": COLUMNS,
        "key_columns": ["table_name", "document_path"],
        "answered": [Answered("tasks", (D1,)), Answered("projects")],
    }
    args.update(overrides)
    return dead_letters_sql(**args)


# --------------------------------------------------------------------------------------
# replace_days_sql
# --------------------------------------------------------------------------------------


def test_incremental_replace_upserts_and_drops_dead_documents() -> None:
    sql = replace_sql(
        days=[D1],
        upsert_through=datetime.date(2026, 11, 24),
        dead_staging="_staging_r1__dead_letters",
    )
    delete, insert = sql.split(";\n")[1:3]
    staging = "`my-project.analytics._staging_r1_tasks`"
    assert f"`_document_path` IN (SELECT `_document_path` FROM {staging})" in delete
    assert "`table_name` = 'tasks'" in delete
    assert insert.endswith(
        "WHERE DATE(`created_at`) <= DATE '2026-11-24'\n"
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY `_document_path`) = 1"
    )


def test_full_rebuild_replaces_every_day_through_the_last() -> None:
    sql = replace_sql(days=[], through=datetime.date(2026, 11, 24))
    target = "`my-project.analytics.tasks`"
    assert f"DELETE FROM {target} WHERE DATE(`created_at`) <= DATE '2026-11-24'" in sql


def test_replace_days_sql_exact_text() -> None:
    target = "`my-project.analytics.tasks`"
    staging = "`my-project.analytics._staging_r1_tasks`"
    days = "DATE '2026-11-23', DATE '2026-11-24'"
    cols = "`user_id`, `task_id`, `created_at`, `extra`"
    assert replace_sql() == (
        "BEGIN TRANSACTION;\n"
        f"DELETE FROM {target} WHERE DATE(`created_at`) IN ({days}) OR `_document_path` IN "
        f"(SELECT `_document_path` FROM {staging} WHERE DATE(`created_at`) IN ({days}));\n"
        f"INSERT INTO {target} ({cols})\n"
        f"SELECT {cols} FROM {staging} WHERE DATE(`created_at`) IN ({days})\n"
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY `_document_path`) = 1;\n"
        "COMMIT TRANSACTION;"
    )


def test_replace_days_sql_is_one_transaction_delete_then_insert_on_the_same_days() -> None:
    sql = replace_sql(days=[D3, D1, D2])
    statements = [s.strip() for s in sql.split(";") if s.strip()]
    assert statements[0] == "BEGIN TRANSACTION"
    assert statements[-1] == "COMMIT TRANSACTION"
    assert len(statements) == 4
    delete, insert = statements[1], statements[2]
    assert delete.startswith("DELETE FROM `my-project.analytics.tasks` ")
    assert insert.startswith("INSERT INTO `my-project.analytics.tasks` ")
    assert sql.index("DELETE") < sql.index("INSERT") < sql.index("COMMIT")
    day_lists = re.findall(r"DATE\(`created_at`\) IN \(([^)]*)\)", sql)
    assert day_lists == ["DATE '1999-01-02', DATE '2026-11-23', DATE '2026-11-24'"] * 3
    assert sql.count("BEGIN") == 1 and sql.count("COMMIT") == 1


def test_replace_days_sql_single_day_and_date_partition() -> None:
    sql = replace_sql(days=[D2], partition_column="day")
    assert "WHERE DATE(`day`) IN (DATE '2026-11-24')" in sql


def test_replace_days_sql_needs_a_day() -> None:
    with pytest.raises(ValueError, match="needs days, through or upsert_through"):
        replace_sql(days=[])


def test_replace_days_sql_domain_scoped_project() -> None:
    sql = replace_sql(project="example.com:my-project")
    assert "`example.com:my-project.analytics.tasks`" in sql


@pytest.mark.parametrize("value", INJECTIONS, ids=INJECTION_IDS)
@pytest.mark.parametrize(
    "argument", ["dataset", "target", "staging", "partition_column", "columns", "key_columns"]
)
def test_replace_days_sql_rejects_injection(argument: str, value: str) -> None:
    override = [*COLUMNS[:1], value] if argument in ("columns", "key_columns") else value
    with pytest.raises(UnsafeIdentifier):
        replace_sql(**{argument: override})


@pytest.mark.parametrize(
    "project",
    ["p`; DROP TABLE x; --", "my-project`", "My-Project", "my project", "my-project\n", "a/b", ""],
)
def test_replace_days_sql_rejects_bad_project(project: str) -> None:
    with pytest.raises(UnsafeIdentifier, match="is not a valid project id"):
        replace_sql(project=project)


@pytest.mark.parametrize(
    "day",
    [
        "2026-11-24",
        "2026-11-24') OR TRUE; --",
        datetime.datetime(2026, 11, 24),
        20261124,
        None,
    ],
)
def test_replace_days_sql_rejects_non_date_days(day: object) -> None:
    with pytest.raises(TypeError, match="expected a date"):
        replace_sql(days=[D1, day])


# --------------------------------------------------------------------------------------
# dead_letters_sql
# --------------------------------------------------------------------------------------


def test_dead_letters_sql_exact_text() -> None:
    cols = "`user_id`, `task_id`, `created_at`, `extra`"
    assert append() == (
        f"INSERT INTO `my-project.analytics._dead_letters` ({cols})\n"
        f"SELECT {cols} FROM `my-project.analytics._staging_r1__dead_letters`\n"
        "WHERE `partition_day` IS NULL OR (`table_name` = 'tasks' AND `partition_day` IN "
        f"(DATE '{D1.isoformat()}'))\n"
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY `table_name`, `document_path`) = 1"
    )
    assert "DELETE" not in append()


def test_dead_letters_sql_and_answered_covers_agree() -> None:
    """The SQL is the one rule of ``Answered.covers``, table by table."""
    rules = [Answered("tasks", (D1,)), Answered("projects", every=True), Answered("routines")]
    sql = append(answered=rules)
    assert "(`table_name` = 'tasks' AND `partition_day` IN (DATE '2026-11-23'))" in sql
    assert "OR `table_name` = 'projects'" in sql and "'routines'" not in sql
    assert [r.covers(D1) for r in rules] == [True, True, False]
    assert [r.covers(D2) for r in rules] == [False, True, False]
    assert all(r.covers(None) for r in rules)


@pytest.mark.parametrize("value", INJECTIONS, ids=INJECTION_IDS)
def test_dead_letters_sql_rejects_injection_through_table_names(value: str) -> None:
    with pytest.raises(UnsafeIdentifier):
        append(answered=[Answered(value, (D1,))])


@pytest.mark.parametrize("value", INJECTIONS, ids=INJECTION_IDS)
@pytest.mark.parametrize("argument", ["dataset", "target", "staging", "columns", "key_columns"])
def test_dead_letters_sql_rejects_injection(argument: str, value: str) -> None:
    override = [value] if argument in ("columns", "key_columns") else value
    with pytest.raises(UnsafeIdentifier):
        append(**{argument: override})


def test_dead_letters_sql_rejects_bad_project() -> None:
    with pytest.raises(UnsafeIdentifier):
        append(project="p`; DROP TABLE x; --")


# --------------------------------------------------------------------------------------
# date_literals, table_sql, check_identifier, check_project, staging_table_name
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "text"),
    [
        ([], ""),
        ([D2], "DATE '2026-11-24'"),
        ((D1, D2), "DATE '2026-11-23', DATE '2026-11-24'"),
        (iter([D3]), "DATE '1999-01-02'"),
        ([datetime.date(1, 1, 1)], "DATE '0001-01-01'"),
        ([datetime.date(9999, 12, 31)], "DATE '9999-12-31'"),
    ],
)
def test_date_literals(days, text: str) -> None:
    assert date_literals(days) == text


@pytest.mark.parametrize(
    "day",
    ["2026-11-24", "2026-11-24'; DROP TABLE x; --", datetime.datetime(2026, 11, 24), 1, None, b"x"],
)
def test_date_literals_rejects_non_dates(day: object) -> None:
    with pytest.raises(TypeError, match="expected a date, got"):
        date_literals([D1, day])


def test_table_sql() -> None:
    assert table_sql("my-project", "analytics", "tasks") == "`my-project.analytics.tasks`"
    assert table_sql("my-project", "_d", "_t9") == "`my-project._d._t9`"


@pytest.mark.parametrize("value", INJECTIONS, ids=INJECTION_IDS)
def test_table_sql_rejects_injection(value: str) -> None:
    with pytest.raises(UnsafeIdentifier, match="dataset .* is not a plain BigQuery identifier"):
        table_sql("my-project", value, "tasks")
    with pytest.raises(UnsafeIdentifier, match="table .* is not a plain BigQuery identifier"):
        table_sql("my-project", "analytics", value)


@pytest.mark.parametrize("name", ["a", "_", "A_b_9", "_staging_r1_tasks", "x" * 300])
def test_check_identifier_accepts(name: str) -> None:
    assert check_identifier(name) == name


@pytest.mark.parametrize(
    "name", [*INJECTIONS, None, 5, b"tasks"], ids=[*INJECTION_IDS, "None", "5", "bytes"]
)
def test_check_identifier_rejects(name: object) -> None:
    with pytest.raises(UnsafeIdentifier, match=r"^column .* is not a plain BigQuery identifier$"):
        check_identifier(name, "column")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "project", ["my-project", "my-project-123", "example.com:my-project", "p1"]
)
def test_check_project_accepts(project: str) -> None:
    assert check_project(project) == project


@pytest.mark.parametrize(
    "project", ["", "My-Project", "my_project", "my project", "p`", "p;", "p\n", "p/x", None]
)
def test_check_project_rejects(project: object) -> None:
    with pytest.raises(UnsafeIdentifier, match="is not a valid project id"):
        check_project(project)  # type: ignore[arg-type]


def test_staging_table_name() -> None:
    assert staging_table_name("20261125T020000_abc123", "tasks") == (
        "_staging_20261125T020000_abc123_tasks"
    )
    with pytest.raises(UnsafeIdentifier):
        staging_table_name("r-1", "tasks")


# --------------------------------------------------------------------------------------
# emulator_endpoint
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "endpoint"),
    [
        ("127.0.0.1:9050", "http://127.0.0.1:9050"),
        ("http://127.0.0.1:9050", "http://127.0.0.1:9050"),
        ("  127.0.0.1:9050\n", "http://127.0.0.1:9050"),
        ("localhost:9050", "http://localhost:9050"),
        ("https://bq.example:443", "https://bq.example:443"),
        ("", None),
        ("   ", None),
    ],
)
def test_emulator_endpoint(
    monkeypatch: pytest.MonkeyPatch, value: str, endpoint: str | None
) -> None:
    monkeypatch.setenv(EMULATOR_ENV, value)
    assert emulator_endpoint() == endpoint


def test_emulator_endpoint_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BIGQUERY_EMULATOR_HOST", raising=False)  # the variable users set
    assert emulator_endpoint() is None
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "localhost:9050")
    assert emulator_endpoint() == "http://localhost:9050"


def test_an_incremental_delete_with_located_days_names_them_and_nothing_else() -> None:
    """Every branch of the delete is under a literal partition filter, so BigQuery
    prunes to the replaced and located days instead of scanning the table."""
    sql = replace_sql(
        days=[D2],
        upsert_through=D2,
        dead_staging="_staging_r1__dead_letters",
        located=[D1, D2],
    )
    delete = sql.split(";\n")[1]
    staging = "`my-project.analytics._staging_r1_tasks`"
    assert delete == (
        "DELETE FROM `my-project.analytics.tasks` WHERE DATE(`created_at`) IN (DATE '2026-11-24')"
        " OR (DATE(`created_at`) IN (DATE '2026-11-23', DATE '2026-11-24') AND ("
        f"`_document_path` IN (SELECT `_document_path` FROM {staging} "
        "WHERE DATE(`created_at`) <= DATE '2026-11-24') OR "
        "(DATE(`created_at`) <= DATE '2026-11-24' AND "
        f"`_document_path` IN (SELECT `_document_path` FROM {staging})) OR `_document_path` IN "
        "(SELECT `document_path` FROM `my-project.analytics._staging_r1__dead_letters` "
        "WHERE `table_name` = 'tasks')))"
    )


def test_an_incremental_delete_keeps_rows_past_upsert_through_of_documents_not_written() -> None:
    """A changed document now on a day past ``upsert_through`` is not written: its
    row there (an intraday run's, on today) stays; its rows up to that day go.
    A document written (its day up to ``upsert_through``) loses its row anywhere."""
    delete = replace_sql(days=[], upsert_through=D2).split(";\n")[1]
    staging = "`my-project.analytics._staging_r1_tasks`"
    assert delete == (
        "DELETE FROM `my-project.analytics.tasks` WHERE "
        f"`_document_path` IN (SELECT `_document_path` FROM {staging} "
        "WHERE DATE(`created_at`) <= DATE '2026-11-24') OR "
        "(DATE(`created_at`) <= DATE '2026-11-24' AND "
        f"`_document_path` IN (SELECT `_document_path` FROM {staging}))"
    )


def test_an_incremental_delete_with_nothing_located_deletes_only_replaced_days() -> None:
    delete = replace_sql(days=[D1], upsert_through=D2, located=[]).split(";\n")[1]
    assert delete == (
        "DELETE FROM `my-project.analytics.tasks` WHERE DATE(`created_at`) IN (DATE '2026-11-23')"
    )
    delete = replace_sql(days=[], upsert_through=D2, located=[]).split(";\n")[1]
    assert delete.endswith("WHERE FALSE")
