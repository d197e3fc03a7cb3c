"""SQL injection through configuration: table, column, collection, field and dataset names.

Two halves:

* Names that reach SQL (project, dataset, table, column, clustering, run id,
  the tables picked by ``--collections``) must be plain identifiers. Anything
  else is refused by the CLI with exit code 2 and one ``error:`` line, before a
  BigQuery or Firestore client is ever created.
* Names that never reach SQL (Firestore collection ids and field names, read
  by name through the Firestore API) may be as hostile as Firestore allows; a
  sync with them writes exactly the expected rows and leaves every other table
  of the dataset, including tables named in the injected SQL, untouched.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.cloud import bigquery as bigquery_lib
from google.cloud import firestore as firestore_lib

from pipelines.firestore_to_bq import main
from pipelines.services import bigquery as bq
from pipelines.services import firestore as fs
from tests.support import example_app
from tests.support.documents import at, interaction, memory, task
from tests.support.sync_helpers import PROJECT, seed, sync, table_rows, unique_dataset, verdicts

REPO_SCHEMAS = example_app.SCHEMAS
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
BASE = ["--project", PROJECT, "--dataset", "analytics", "--date", DAYS[0]]
DROP = "`; DROP TABLE x; --"


def tasks_schema() -> dict[str, Any]:
    return json.loads((REPO_SCHEMAS / "tasks.json").read_text(encoding="utf-8"))


def write_schema(directory: Path, schema: dict[str, Any], name: str = "tasks.json") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(schema), encoding="utf-8")
    return directory


@pytest.fixture
def no_servers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail loudly if anything creates a BigQuery or Firestore client."""
    touched: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def _refuse(*args: Any, **kwargs: Any) -> Any:
            touched.append(what)
            raise AssertionError(f"{what} was contacted before the arguments were checked")

        return _refuse

    monkeypatch.setattr(bq, "make_client", refuse("BigQuery (services.bigquery.make_client)"))
    monkeypatch.setattr(fs, "make_client", refuse("Firestore (services.firestore.make_client)"))
    monkeypatch.setattr(bigquery_lib.Client, "__init__", refuse("BigQuery (Client)"))
    monkeypatch.setattr(firestore_lib.Client, "__init__", refuse("Firestore (Client)"))
    monkeypatch.delenv("F2BQ_HASH_KEY", raising=False)
    return touched


def assert_one_error_line(
    argv: list[str], capfd: pytest.CaptureFixture[str], touched: list[str]
) -> str:
    assert main(argv) == 2
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert not touched
    return lines[0]


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(schema: dict[str, Any]) -> None:
        node = schema
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


# Schema files whose names would reach SQL: each must be refused.
BAD_SCHEMAS: dict[str, Callable[[dict[str, Any]], None]] = {
    "table_drop": _set(("table",), f"tasks{DROP}"),
    "table_backtick_only": _set(("table",), "tasks`"),
    "table_other_dataset": _set(("table",), "other_dataset.tasks"),
    "table_other_project": _set(("table",), "evil-project.other.tasks"),
    "table_trailing_newline": _set(("table",), "tasks\n"),
    "table_comment": _set(("table",), "tasks/*x*/"),
    "table_unicode": _set(("table",), "tâsks"),
    "table_too_long": _set(("table",), "t" * 301),
    "table_empty": _set(("table",), ""),
    "table_not_a_string": _set(("table",), ["tasks"]),
    "column_backtick": _set(("fields", 2, "name"), "desc`ription"),
    "column_subquery": _set(("fields", 2, "name"), "description`, (SELECT 1)) --"),
    "column_space": _set(("fields", 2, "name"), "the description"),
    "column_newline": _set(("fields", 2, "name"), "description\n"),
    "id_column": _set(("id_column",), f"task_id{DROP}"),
    "partition_column": _set(("partition_column",), "created_at`) OR TRUE --"),
    "clustering": _set(("clustering",), [f"user_id{DROP}"]),
    "field_map_key": _set(("field_map",), {"x`; DELETE FROM t WHERE TRUE; --": "description"}),
    "type": _set(("fields", 2, "type"), "STRING; DROP TABLE x"),
    "mode": _set(("fields", 2, "mode"), "NULLABLE`"),
    "collection_with_slash": _set(("source", "collection"), "tasks/../../x"),
    "collection_empty": _set(("source", "collection"), ""),
    "parent_collection_with_slash": _set(("source", "parent_collection"), "users/x/y"),
}


BAD_ARGS: dict[str, list[str]] = {
    "dataset_drop": ["--project", PROJECT, "--dataset", f"analytics{DROP}"],
    "dataset_dotted": ["--project", PROJECT, "--dataset", "other-project.analytics"],
    "dataset_newline": ["--project", PROJECT, "--dataset", "analytics\n"],
    "dataset_quote": ["--project", PROJECT, "--dataset", "analytics' OR '1'='1"],
    "dataset_dry_run": ["--project", PROJECT, "--dataset", f"analytics{DROP}", "--dry_run"],
    "project_drop": ["--project", f"{PROJECT}{DROP}", "--dataset", "analytics"],
    "project_backtick": ["--project", "demo`project", "--dataset", "analytics"],
    "run_id_drop": [*BASE, "--run_id", f"r{DROP}"],
    "run_id_dash": [*BASE, "--run_id", "r-1"],
    "run_id_dot": [*BASE, "--run_id", "r.x"],
    "run_id_newline": [*BASE, "--run_id", "r1\n"],
    "run_id_too_long": [*BASE, "--run_id", "r" * 65],
    "collections_drop": [*BASE, "--collections", f"tasks{DROP}"],
    "collections_semicolon": [*BASE, "--collections", "tasks;interactions"],
    "collections_path": [*BASE, "--collections", "users/alice/tasks"],
    "collections_star": [*BASE, "--collections", "*"],
    "collections_junk_after_valid": [*BASE, "--collections", "tasks,../x"],
    "collections_quote": [*BASE, "--collections", "tasks' OR '1'='1"],
}


# --------------------------------------------------------------------------------------
# Valid but hostile Firestore names: reach only the Firestore API, never SQL
# --------------------------------------------------------------------------------------

#: A collection id with quotes, backticks, spaces and SQL; Firestore allows it.
HOSTILE_COLLECTION = "tasks'\"`; DROP TABLE tasks; --"
HOSTILE_FIELD = "x`; DELETE FROM t WHERE TRUE; --"
HOSTILE_UPDATED = "updated`at'; DROP TABLE _sync_runs; --"
HOSTILE_PARTITION = ["meta.x`", 'created at"; DROP TABLE x; --']
HOSTILE_COMPLETED = ["a.b`c", "d'e\"f; --"]


def hostile_schema() -> dict[str, Any]:
    schema = tasks_schema()
    schema["table"] = "hostile_tasks"
    schema["source"] = {"collection": HOSTILE_COLLECTION, "layout": "per_user"}
    schema["field_map"] = {
        "description": HOSTILE_FIELD,
        "completed": HOSTILE_COMPLETED,
        "created_at": HOSTILE_PARTITION,
        "updated_at": HOSTILE_UPDATED,
    }
    return schema


def hostile_doc(
    created: datetime.datetime, updated: datetime.datetime, text: str, done: Any
) -> dict[str, Any]:
    return {
        HOSTILE_FIELD: text,
        HOSTILE_COMPLETED[0]: {HOSTILE_COMPLETED[1]: done, "sibling`": 1},
        HOSTILE_PARTITION[0]: {HOSTILE_PARTITION[1]: created},
        HOSTILE_UPDATED: updated,
        "description": "not the description column's source",
        "origin": "user_added",
    }


def _make_bait_table(client: bigquery_lib.Client, dataset: str, name: str) -> None:
    """A table named in the injected SQL, holding one row that must survive."""
    schema = [
        {"name": "at", "type": "TIMESTAMP", "mode": "NULLABLE"},
        {"name": "n", "type": "INT64", "mode": "NULLABLE"},
    ]
    bq.ensure_table(client, dataset, name, schema, "at")
    bq.load_rows(client, dataset, name, schema, [{"at": "2026-11-01T00:00:00Z", "n": 7}])


def test_hostile_collection_and_field_names_sync_and_touch_no_other_table(
    firestore_db, bq_client, tmp_path: Path
) -> None:
    db = firestore_db
    # An ordinary dataset first: every shipped table, plus the tables the SQL targets.
    ordinary = {}
    for i, day in enumerate(DAYS):
        ordinary[f"users/alice/tasks/t{i}"] = task(day)
        ordinary[f"users/alice/interactions/i{i}"] = interaction(day)
        ordinary[f"users/alice/memories/m{i}"] = memory(day)
    ordinary["users/alice/tasks/bad"] = task(DAYS[0], origin="email")  # one dead letter
    seed(db, ordinary)
    dataset = unique_dataset("injection")
    sync(dataset, "--start_date", DAYS[0], "--end_date", DAYS[-1])
    for name in ("x", "t"):
        _make_bait_table(bq_client, dataset, name)
    before_tables = {t.table_id for t in bq_client.list_tables(dataset, timeout=30)}
    before = {
        name: table_rows(bq_client, dataset, name, keep_run_metadata=True) for name in before_tables
    }

    # The hostile collection, under the same users; the plain tasks are not its documents.
    base = f"users/alice/{HOSTILE_COLLECTION}"
    hostile = {
        f"{base}/h{i}": hostile_doc(at(day), at(day), f"{HOSTILE_FIELD} #{i}", i % 2 == 0)
        for i, day in enumerate(DAYS[:3])
    }
    # Its day is before the window: read (through the hostile partition path) but
    # left alone, and counted as outside the window.
    hostile[f"{base}/before"] = hostile_doc(at("2026-10-30"), at(DAYS[1]), "before", True)
    hostile[f"{base}/dead"] = hostile_doc(at(DAYS[2]), at(DAYS[2]), "dead", "yes")
    seed(db, hostile)
    schemas = write_schema(tmp_path / "schemas", hostile_schema(), "hostile.json")
    summary = sync(
        dataset, "--start_date", DAYS[0], "--end_date", DAYS[-1], "--schemas_dir", str(schemas)
    )
    tally = summary.tables[0]
    assert (tally.table, tally.read, tally.written, tally.dead_lettered) == (
        "hostile_tasks",
        5,
        3,
        1,
    )
    assert tally.outside_window == 1

    rows = {r["task_id"]: r for r in table_rows(bq_client, dataset, "hostile_tasks")}
    assert set(rows) == {"h0", "h1", "h2"}
    for i in range(3):
        row = rows[f"h{i}"]
        assert row["_document_path"] == f"{base}/h{i}"
        assert row["user_id"] == "alice"
        assert row["description"] == f"{HOSTILE_FIELD} #{i}"
        assert row["completed"] is (i % 2 == 0)
        assert row["created_at"] == at(DAYS[i])
        assert row["updated_at"] == at(DAYS[i])
        assert row["origin"] == "user_added"
        assert row["extra"] == {
            "description": "not the description column's source",
            HOSTILE_COMPLETED[0]: {"sibling`": 1},
        }
    assert summary.tables[0].days_replaced == len(DAYS)

    dead = [
        r
        for r in table_rows(bq_client, dataset, "_dead_letters")
        if r["table_name"] == "hostile_tasks"
    ]
    assert [(r["document_path"], r["field"]) for r in dead] == [
        (f"{base}/dead", ".".join(HOSTILE_COMPLETED))
    ]

    # Nothing else changed: same tables (plus the new one), same rows, one more run.
    after_tables = {t.table_id for t in bq_client.list_tables(dataset, timeout=30)}
    assert after_tables == before_tables | {"hostile_tasks"}
    logs = {"_dead_letters", "_sync_runs", "_sync_commits", "_sync_leases"}
    for name in sorted(before_tables - logs):
        assert table_rows(bq_client, dataset, name, keep_run_metadata=True) == before[name], name
    held = table_rows(bq_client, dataset, "_sync_leases", keep_run_metadata=True)
    assert [r for r in held if r["table_name"] != "hostile_tasks"] == before["_sync_leases"]
    dead_after = table_rows(bq_client, dataset, "_dead_letters", keep_run_metadata=True)
    assert [r for r in dead_after if r["table_name"] != "hostile_tasks"] == before["_dead_letters"]
    runs = verdicts(bq_client, dataset)
    assert runs[0] in before["_sync_runs"]
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    commits = table_rows(bq_client, dataset, "_sync_commits", keep_run_metadata=True)
    assert [c for c in commits if c["table_name"] != "hostile_tasks"] == before["_sync_commits"]
