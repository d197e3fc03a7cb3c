"""``firestore-to-bq schema drift`` without a server: its SQL, what the answers mean, the report.

The SQL is parsed as GoogleSQL (sqlglot's BigQuery dialect, which bqemulator is built on)
and checked to filter each table on its partition column with constant bounds, the filter
BigQuery prunes partitions by. ``tests/integration/test_schema_drift.py`` runs it for real.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import Counter
from typing import Any

import pytest

from f2bq_analytics import analytics
from pipelines import firestore_to_bq
from pipelines.cli import schema_drift as drift
from pipelines.convert.table_spec import Column, load_specs
from pipelines.services import bigquery as bq

sqlglot = pytest.importorskip("sqlglot")

UTC = datetime.UTC
TODAY = datetime.date(2026, 11, 24)
WINDOW = drift.Window(datetime.date(2026, 10, 21), TODAY)
SPECS = load_specs()  # the example app's (tests/conftest.py)
D1, D2 = datetime.date(2026, 11, 20), datetime.date(2026, 11, 23)


def parsed(sql: str) -> Any:
    """``sql`` parsed as one BigQuery statement (raises on anything malformed)."""
    statements = sqlglot.parse(sql, dialect="bigquery")
    assert len(statements) == 1, sql
    return statements[0]


def partition_filters(sql: str) -> list[str]:
    """Each WHERE of ``sql``, as BigQuery SQL."""
    return [w.this.sql(dialect="bigquery") for w in parsed(sql).find_all(sqlglot.exp.Where)]


# ---------------------------------------------------------------------------
# The window and its filter
# ---------------------------------------------------------------------------


def test_the_window_is_the_last_n_days_up_to_today() -> None:
    assert drift.window(35, TODAY) == WINDOW
    assert drift.window(1, TODAY) == drift.Window(TODAY, TODAY)
    assert drift.window(35, TODAY).days == 35 == drift.DEFAULT_DAYS
    for bad in (0, -1, drift.MAX_DAYS + 1):
        with pytest.raises(drift.UsageError, match="--days"):
            drift.window(bad, TODAY)


def test_a_timestamp_partition_is_filtered_by_a_half_open_range_of_midnights() -> None:
    where = drift.day_filter("created_at", "TIMESTAMP", WINDOW)
    assert where == (
        "`created_at` >= TIMESTAMP '2026-10-21 00:00:00+00' "
        "AND `created_at` < TIMESTAMP '2026-11-25 00:00:00+00'"
    )


def test_a_date_partition_is_filtered_by_between() -> None:
    where = drift.day_filter("day", "DATE", WINDOW)
    assert where == "`day` BETWEEN DATE '2026-10-21' AND DATE '2026-11-24'"


# ---------------------------------------------------------------------------
# The SQL
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("table", sorted(SPECS))
def test_every_query_is_one_googlesql_statement_pruned_on_the_partition_column(
    table: str,
) -> None:
    spec = SPECS[table]
    json_columns = ["extra", *(c.name for c in spec.columns if c.type == "JSON")]
    columns = drift.checked_columns(spec, [c.name for c in spec.columns])
    expected = drift.day_filter(spec.partition_column, spec.partition.type, WINDOW)
    for sql in (
        drift.keys_sql("my-proj", "app", spec, WINDOW, json_columns),
        drift.fill_sql("my-proj", "app", spec, WINDOW, columns),
    ):
        assert f"FROM `my-proj.app.{table}`" in sql
        assert sql.count(f"FROM `my-proj.app.{table}`") == 1  # one scan of the table
        # The only filter is the window on the partition column, with literal bounds.
        assert partition_filters(sql) == [
            parsed(f"SELECT 1 FROM t WHERE {expected}")
            .find(sqlglot.exp.Where)
            .this.sql(dialect="bigquery")
        ]


def test_the_dead_letter_query_is_pruned_by_run_start_and_clustered_table_name() -> None:
    sql = drift.type_changes_sql("my-proj", "app", "tasks", WINDOW)
    parsed(sql)
    assert "FROM `my-proj.app._dead_letters`" in sql
    assert (
        "WHERE `dead_lettered_at` >= TIMESTAMP '2026-10-21 00:00:00+00' "
        "AND `dead_lettered_at` < TIMESTAMP '2026-11-25 00:00:00+00' "
        "AND table_name = 'tasks')"
    ) in sql


@pytest.mark.parametrize(
    ("reason", "change"),
    [
        ("expected integer, got string", "expected integer, got string"),
        ("array element 2: expected integer, got string", "expected integer, got string"),
        ("double 2.5 is not a whole INT64", "expected integer, got double"),
        ("array element 0: double 1.5 is not a whole INT64", "expected integer, got double"),
        ('unparsable timestamp "tomorrow"', None),  # a format, not a type
        ("integer 9223372036854775808 is outside INT64", None),
        ("missing required field", None),
    ],
)
def test_which_dead_letters_are_type_changes(reason: str, change: str | None) -> None:
    """The SQL's two patterns, applied here as BigQuery's RE2 would (they are plain)."""
    import re

    if re.search(drift.TYPE_REASON, reason):
        found = re.search(drift.TYPE_REASON, reason)[0]
    elif re.search(drift.FRACTION_REASON, reason):
        found = "expected integer, got double"
    else:
        found = None
    assert found == change


def test_keys_are_read_top_level_from_each_json_column_in_one_scan() -> None:
    sql = drift.keys_sql("my-proj", "app", SPECS["routines"], WINDOW, ["extra", "items"])
    assert (
        "UNNEST([STRUCT('extra' AS json_column, `extra` AS doc), "
        "STRUCT('items' AS json_column, `items` AS doc)]) AS j"
    ) in sql
    assert "UNNEST(JSON_KEYS(j.doc, 1)) AS k" in sql
    # The value's kind, the same on BigQuery (string, number) and bqemulator (varchar, …).
    assert "JSON_TYPE(v) IN ('string', 'varchar')" in sql
    assert "GROUP BY json_column, json_key, kind" in sql
    with pytest.raises(ValueError):
        drift.keys_sql("my-proj", "app", SPECS["routines"], WINDOW, [])


def test_fill_counts_a_repeated_column_by_its_elements() -> None:
    spec = SPECS["routines"]
    columns = drift.checked_columns(spec, [c.name for c in spec.columns])
    sql = drift.fill_sql("my-proj", "app", spec, WINDOW, columns)
    names = [c.name for c in columns]
    assert f"COUNTIF(ARRAY_LENGTH(`days_of_week`) > 0) AS c{names.index('days_of_week')}" in sql
    assert f"COUNTIF(`name` IS NOT NULL) AS c{names.index('name')}" in sql
    assert sql.startswith("SELECT COUNT(*) AS row_count, ")


def test_columns_a_row_always_fills_or_never_fills_are_not_checked() -> None:
    spec = SPECS["tasks"]
    spec = dataclasses.replace(
        spec,
        columns=(*spec.columns, Column("notes", "STRING", policy="drop", source=("notes",))),
    )
    names = [c.name for c in drift.checked_columns(spec, [c.name for c in spec.columns])]
    # Partition, id and owner columns, REQUIRED ones and dropped ones are never reported empty.
    assert not {"created_at", "task_id", "user_id", "notes"} & set(names)
    assert "description" in names
    # A column the table lacks is reported as missing, not queried.
    assert "description" not in [
        c.name for c in drift.checked_columns(spec, ["user_id", "task_id", "created_at"])
    ]


@pytest.mark.parametrize("hostile", ["t`; DROP TABLE x; --", "a b", "a'b", ""])
def test_names_that_could_leave_the_sql_are_refused(hostile: str) -> None:
    spec = SPECS["tasks"]
    with pytest.raises(bq.UnsafeIdentifier):
        drift.type_changes_sql("my-proj", hostile, "tasks", WINDOW)
    with pytest.raises(bq.UnsafeIdentifier):
        drift.type_changes_sql("my-proj", "app", hostile, WINDOW)
    with pytest.raises(bq.UnsafeIdentifier):
        drift.keys_sql("my-proj", "app", spec, WINDOW, ["extra", hostile])
    with pytest.raises(bq.UnsafeIdentifier):
        drift.fill_sql("my-proj", "app", spec, WINDOW, [Column(hostile, "STRING")])


# ---------------------------------------------------------------------------
# What the answers mean
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        ({"string": 3}, "STRING"),
        ({"timestamp": 2, "null": 5}, "TIMESTAMP"),
        ({"date": 1}, "DATE"),
        ({"integer": 4}, "INT64"),
        ({"integer": 4, "double": 1}, "FLOAT64"),
        ({"double": 1}, "FLOAT64"),
        ({"boolean": 1}, "BOOL"),
        ({"object": 2}, "JSON"),
        ({"array": 2}, "JSON"),
        ({"string": 1, "integer": 1}, "JSON"),  # JSON takes both; STRING refuses numbers
        ({"string": 1, "timestamp": 1}, "JSON"),  # a STRING column refuses a timestamp
        ({"null": 3}, None),
        ({"unknown": 1}, None),
    ],
)
def test_the_suggested_type_takes_every_value_seen(kinds: dict, expected: str | None) -> None:
    assert drift.suggested_type(kinds) == expected


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("mood", "mood"),
        ("dueAt", "due_at"),
        ("heartRateAvg", "heart_rate_avg"),
        ("some-key", "some_key"),
        ("2fa", "f_2fa"),
        ("a.b", "a_b"),
        ("ÿ", "field"),
    ],
)
def test_a_suggested_column_name_is_a_snake_case_identifier(key: str, name: str) -> None:
    assert drift.column_name(key) == name


def key_row(column: str, key: str, kind: str, n: int, first: datetime.date, last=None) -> dict:
    return {
        "json_column": column,
        "json_key": key,
        "kind": kind,
        "n": n,
        "first_day": first,
        "last_day": last or first,
    }


def test_keys_are_split_into_undeclared_declared_since_and_new_inside_json_columns() -> None:
    rows = [
        key_row("extra", "mood", "string", 3, D1, D2),
        key_row("extra", "score", "integer", 2, D2),
        key_row("extra", "score", "double", 1, D1),
        key_row("extra", "name", "string", 1, D1),  # routines declares name: an older row
        key_row("items", "k", "integer", 4, D1, D2),
        key_row("items", "color", "string", 1, D2),  # first seen after the column's first day
    ]
    found = drift.TableDrift(SPECS["routines"])
    drift.classify(found, drift.key_stats(rows))
    assert [(s.key, s.rows, s.first, s.last) for s in found.undeclared] == [
        ("mood", 3, D1, D2),
        ("score", 3, D1, D2),
    ]
    assert found.undeclared[1].kinds == Counter({"integer": 2, "double": 1})
    assert found.undeclared[1].suggested_type == "FLOAT64"
    assert [s.key for s in found.declared_since] == ["name"]
    assert [(s.column, s.key) for s in found.new_json_keys] == [("items", "color")]
    assert found.drifted


def type_row(field: str, reason: str, documents: int = 2) -> dict:
    return {"field": field, "reason": reason, "documents": documents, "first_day": D1,
            "last_day": D2}  # fmt: skip


def test_a_type_change_stands_only_while_the_column_still_expects_the_old_type() -> None:
    spec = SPECS["routines"]
    rows = [
        type_row("start_time", "expected time, got integer"),
        type_row("days_of_week", "expected integer, got string"),  # an element of a REPEATED
        type_row("days_of_week", "expected array, got string"),
        type_row("name", "expected integer, got string"),  # declared STRING since: history
        type_row("gone", "expected string, got integer"),  # no such column any more
    ]
    changes = drift.type_changes(spec, rows)
    assert [(c.field, c.reason) for c in changes] == [
        ("start_time", "expected time, got integer"),
        ("days_of_week", "expected integer, got string"),
        ("days_of_week", "expected array, got string"),
    ]
    assert changes[0].column is not None and changes[0].column.type == "TIME"


def test_the_suggestion_maps_a_camel_case_field_and_avoids_a_declared_name() -> None:
    spec = SPECS["tasks"]
    due = drift.KeyStat("extra", "dueAt", 3, D1, D2, Counter({"timestamp": 3}))
    assert drift.suggestion(due, spec) == (
        'declare {"name": "due_at", "type": "TIMESTAMP"}, field_map "due_at": "dueAt"'
    )
    clash = drift.KeyStat("extra", "Description", 1, D1, D1, Counter({"integer": 1}))
    assert drift.suggestion(clash, spec).startswith('declare {"name": "description_int64"')
    nulls = drift.KeyStat("extra", "x", 1, D1, D1, Counter({"null": 1}))
    assert drift.suggestion(nulls, spec) == "only nulls so far: no type to suggest"


# ---------------------------------------------------------------------------
# Running it against a fake client, and the report
# ---------------------------------------------------------------------------


class Field:
    def __init__(self, name: str) -> None:
        self.name = name


class FakeClient:
    """Answers ``get_table`` and the three queries; records every job's config."""

    project = "my-proj"

    def __init__(self, tables: dict[str, list[str]], answers: dict[str, list[dict]]) -> None:
        self.tables = tables
        self.answers = answers
        self.configs: list[Any] = []
        self.sqls: list[str] = []

    def get_table(self, ref: str, **_: Any) -> Any:
        from google.api_core import exceptions

        name = ref.rsplit(".", 1)[1]
        if name not in self.tables:
            raise exceptions.NotFound(name)
        return type("Table", (), {"schema": [Field(n) for n in self.tables[name]]})()

    def query(self, sql: str, job_config: Any = None, **_: Any) -> Any:
        self.sqls.append(sql)
        self.configs.append(job_config)
        if "_dead_letters" in sql:
            rows = self.answers.get("dead", [])
        elif "JSON_KEYS" in sql:
            rows = self.answers.get("keys", [])
        else:
            rows = self.answers.get("fill", [{"row_count": 0}])
        return type("Job", (), {"result": lambda self, **_: rows})()


def tasks_client() -> FakeClient:
    spec = SPECS["tasks"]
    columns = [c.name for c in spec.columns if c.name != "routine_item_id"] + ["extra"]
    checked = drift.checked_columns(spec, columns)
    fill = {"row_count": 7, **{f"c{i}": 7 for i in range(len(checked))}}
    fill[f"c{[c.name for c in checked].index('origin')}"] = 0
    return FakeClient(
        {"tasks": columns},
        {
            "fill": [fill],
            "keys": [key_row("extra", "mood", "string", 3, D1, D2)],
            "dead": [type_row("duration_minutes", "expected integer, got string", 1)],
        },
    )


def test_one_table_is_read_with_three_capped_queries_and_its_findings_kept() -> None:
    client = tasks_client()
    found = drift.table_drift(client, "app", SPECS["tasks"], WINDOW, cap=12345)
    assert len(client.sqls) == 3
    assert all(config.maximum_bytes_billed == 12345 for config in client.configs)
    assert found.rows == 7
    assert [c.name for c in found.missing_columns] == ["routine_item_id"]
    assert "routine_item_id" not in " ".join(client.sqls)  # not queried: it is not there
    assert [c.name for c in found.empty_columns] == ["origin"]
    assert [s.key for s in found.undeclared] == ["mood"]
    assert [t.field for t in found.type_changes] == ["duration_minutes"]


def test_a_missing_table_is_said_and_not_queried() -> None:
    client = FakeClient({}, {})
    found = drift.table_drift(client, "app", SPECS["tasks"], WINDOW, cap=1)
    assert not found.exists and client.sqls == []
    assert drift.render_table(found) == [
        "tasks: no such table yet (scripts/setup_bigquery.py creates it)"
    ]


def test_the_cap_is_the_analytics_own() -> None:
    assert drift.DEFAULT_MAXIMUM_BYTES_BILLED == analytics.DEFAULT_MAXIMUM_BYTES_BILLED


def test_the_report_has_one_block_per_table(monkeypatch, capsys) -> None:
    from pipelines.services import reachability

    client = tasks_client()
    monkeypatch.setattr(reachability, "check_bigquery", lambda *a: None)
    monkeypatch.setattr(bq, "make_client", lambda *a: client)
    now = datetime.datetime(2026, 11, 24, 9, tzinfo=UTC)
    argv = ["--project", "my-proj", "--dataset", "app", "--days", "35"]
    assert drift.main(argv, now=now) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "schema drift of my-proj.app over 2026-10-21..2026-11-24 (35 days; only those "
        "partitions read, at most 10 GiB billed per query)"
    )
    block = out.split("\n\ntasks: ")[1].split("\n\n")[0].splitlines()
    assert block == [
        "7 rows in the window",
        "  declared, but not in the table yet: routine_item_id STRING "
        "(scripts/setup_bigquery.py adds them)",
        "  1 undeclared field in extra (declare them in the schema file of tasks, see "
        "docs/schemas.md#adding-a-table-or-a-column):",
        '    mood: 3 rows, 2026-11-20..2026-11-23, string -> declare {"name": "mood", '
        '"type": "STRING"}',
        "  declared columns no row of the window fills: origin",
        "  declared fields arriving with another type (dead letters; not an addition: fix the "
        "writer, or change the column's type by rebuilding the table, see "
        "docs/schemas.md#changing-a-columns-type):",
        "    duration_minutes (column duration_minutes INT64): expected integer, got string, "
        "1 document, 2026-11-20..2026-11-23",
    ]
    assert "\nprojects: no such table yet" in out
    assert out.rstrip().endswith("drift in 1 of 5 tables: tasks")
    # --fail_on_drift makes drift an exit status, for a scheduled check.
    assert drift.main([*argv, "--fail_on_drift"], now=now) == 1


def test_no_drift_exits_0_even_with_fail_on_drift(monkeypatch, capsys) -> None:
    from pipelines.services import reachability

    monkeypatch.setattr(reachability, "check_bigquery", lambda *a: None)
    monkeypatch.setattr(bq, "make_client", lambda *a: FakeClient({}, {}))
    code = drift.main(["--project", "my-proj", "--dataset", "app", "--fail_on_drift"])
    assert code == 0
    assert capsys.readouterr().out.rstrip().endswith("no drift in 5 tables")


def test_a_query_over_the_cap_says_what_to_change(monkeypatch, capsys) -> None:
    from google.api_core import exceptions

    from pipelines.services import reachability

    class Capped(FakeClient):
        def query(self, sql: str, job_config: Any = None, **_: Any) -> Any:
            raise exceptions.BadRequest(
                "Query exceeded limit for bytes billed: 1. 10485760 or higher required."
            )

    monkeypatch.setattr(reachability, "check_bigquery", lambda *a: None)
    monkeypatch.setattr(bq, "make_client", lambda *a: Capped({"tasks": ["extra"]}, {}))
    argv = ["--project", "my-proj", "--dataset", "app", "--maximum_bytes_billed", "1"]
    assert drift.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: BadRequest: Query exceeded limit for bytes billed")
    assert err.rstrip().endswith("raise --maximum_bytes_billed or lower --days")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "d"], "the following arguments are required: --project"),
        (["--project", "my-proj", "--dataset", "d;x"], "--dataset 'd;x' is not a plain"),
        (["--project", "my-proj", "--dataset", "d", "--days", "0"], "--days must be from 1"),
        (["--project", "my-proj", "--dataset", "d", "--dayz", "3"], "did you mean --days?"),
        (["--project", "my-proj", "--dataset", "d", "--maximum_bytes_billed", "0"], "1 or more"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], message: str, capsys) -> None:
    assert firestore_to_bq.main(["schema", "drift", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("error: ") and message in err


def test_schema_help_lists_drift(capsys) -> None:
    assert firestore_to_bq.main(["schema", "--help"]) == 0
    out = capsys.readouterr().out
    assert "firestore-to-bq schema drift --project P --dataset D" in out
    assert firestore_to_bq.main(["schema", "drift", "--help"]) == 0
    assert "--fail_on_drift" in capsys.readouterr().out
