"""scripts/setup_bigquery.py against the BigQuery emulator: create, re-run, migrate, refuse."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from google.cloud import bigquery

from devtools import setup_bigquery as setup
from f2bq_analytics import analytics
from pipelines.convert.table_spec import load_specs
from pipelines.services import bigquery as bq
from pipelines.state import commit_log, dead_letters, leases, run_log
from tests.support import example_app

if TYPE_CHECKING:
    from devtools.emulators import Emulators


TIMEOUT = 30


class Setup:
    """setup_bigquery run against a fresh dataset of the emulator, with an editable schemas/."""

    def __init__(self, emulators: Emulators, client: bigquery.Client, schemas: Path, capsys):
        self.project = emulators.project
        self.dataset = f"setup_{uuid.uuid4().hex[:10]}"
        self.client = client
        self.schemas = schemas
        self.capsys = capsys

    def run(self, *extra: str) -> tuple[int, str, str]:
        code = setup.main(["--project", self.project, "--dataset", self.dataset, *extra])
        out, err = self.capsys.readouterr()
        return code, out, err

    def run_edited(self) -> tuple[int, str, str]:
        return self.run("--schemas_dir", str(self.schemas))

    def edit(self, table: str, change) -> None:
        path = self.schemas / f"{table}.json"
        raw = json.loads(path.read_text())
        change(raw)
        path.write_text(json.dumps(raw))

    def table(self, name: str) -> bigquery.Table:
        return self.client.get_table(f"{self.project}.{self.dataset}.{name}", timeout=TIMEOUT)

    def count(self, name: str) -> int:
        sql = f"SELECT COUNT(*) AS n FROM `{self.project}.{self.dataset}.{name}`"
        return next(iter(self.client.query(sql, timeout=TIMEOUT).result(timeout=60)))["n"]


@pytest.fixture
def env(
    emulators: Emulators,
    bq_client: bigquery.Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Setup:
    """A dataset that does not exist yet, and an editable copy of the example app's schemas."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    for path in example_app.SCHEMAS.glob("*.json"):
        shutil.copy(path, schemas / path.name)
    return Setup(emulators, bq_client, schemas, capsys)


@pytest.fixture
def created(env: Setup) -> Setup:
    """The same, after a first run created the dataset from the shipped schemas."""
    assert env.run()[0] == 0
    return env


def column(raw: dict, name: str) -> dict:
    return next(f for f in raw["fields"] if f["name"] == name)


def column_names(t: bigquery.Table) -> list[str]:
    return [f.name for f in t.schema]


def load_one_task(dataset: str, project: str) -> None:
    spec = load_specs()["tasks"]
    row = {
        "user_id": "u1",
        "task_id": "t1",
        "created_at": "2026-11-24T10:00:00Z",
        "_document_path": "users/u1/tasks/t1",
    }
    client = bq.make_client(project)
    assert bq.load_rows(client, dataset, "tasks", spec.bigquery_schema(), [row]) == 1


def test_creates_dataset_and_every_table_partitioned_and_clustered(env: Setup) -> None:
    code, out, _ = env.run("--location", "EU")

    assert code == 0
    assert f"create dataset {env.project}.{env.dataset} in EU" in out
    dataset = env.client.get_dataset(f"{env.project}.{env.dataset}", timeout=TIMEOUT)
    assert dataset.location == "EU"
    expected = {
        spec.name: (spec.partition_column, list(spec.clustering), list(spec.column_names))
        for spec in load_specs().values()
    }
    expected[dead_letters.TABLE] = (
        dead_letters.PARTITION_COLUMN,
        list(dead_letters.CLUSTERING),
        [f["name"] for f in dead_letters.SCHEMA],
    )
    expected[run_log.TABLE] = (run_log.PARTITION_COLUMN, [], [f["name"] for f in run_log.SCHEMA])
    for module in (commit_log, leases):
        fields = [f["name"] for f in module.SCHEMA]
        expected[module.TABLE] = (module.PARTITION_COLUMN, list(module.CLUSTERING), fields)
    assert sorted(re.findall(rf"^create table {env.dataset}\.(\w+) ", out, re.M)) == sorted(
        expected
    )
    for name, (partition, clustering, columns) in expected.items():
        t = env.table(name)
        assert t.time_partitioning.type_ == "DAY", name
        assert t.time_partitioning.field == partition, name
        assert list(t.clustering_fields or []) == clustering, name
        assert column_names(t) == columns, name
    sync_runs = {f.name: f for f in env.table(run_log.TABLE).schema}
    assert sync_runs["run_id"].mode == "REQUIRED"
    assert sync_runs["tables"].field_type == "JSON"


def test_second_run_changes_nothing(created: Setup) -> None:
    code, out, _ = created.run()

    assert code == 0
    lines = out.splitlines()
    assert lines[:-1] == [f"unchanged table {created.dataset}.{name}" for name in _all_tables()]
    assert lines[-1] == f"{created.project}.{created.dataset}: already up to date"


def test_dry_run_creates_nothing(env: Setup) -> None:
    code, out, _ = env.run("--dry_run")

    assert code == 0
    assert out.count("create table ") == len(_all_tables())
    assert "dry run: nothing changed" in out
    assert env.dataset not in {d.dataset_id for d in env.client.list_datasets(timeout=TIMEOUT)}


def test_adds_a_new_nullable_column_and_keeps_rows_and_the_column_takes_values(
    created: Setup,
) -> None:
    """Issue 25, finding 7: the column is added by DDL (``ALTER TABLE … ADD COLUMN IF
    NOT EXISTS``), which reaches bqemulator's stored rows as BigQuery's, then the
    schema patch sets its description; an ``INSERT`` naming it works on both (after
    the patch alone it failed on the emulator with a Binder Error)."""
    load_one_task(created.dataset, created.project)
    created.edit(
        "tasks",
        lambda raw: raw["fields"].append(
            {"name": "priority", "type": "INT64", "mode": "NULLABLE", "description": "1-5."}
        ),
    )

    code, out, _ = created.run_edited()

    assert code == 0
    assert f"add column {created.dataset}.tasks.priority INT64 NULLABLE" in out
    assert f"unchanged table {created.dataset}.routines" in out
    t = created.table("tasks")
    assert column_names(t)[-1] == "priority"
    assert t.schema[-1].mode == "NULLABLE" and t.schema[-1].description == "1-5."
    assert t.time_partitioning.field == "created_at" and t.clustering_fields == ["user_id"]
    assert created.count("tasks") == 1
    table = f"`{created.project}.{created.dataset}.tasks`"
    bq.run_query(created.client, f"UPDATE {table} SET `priority` = 3 WHERE TRUE")
    rows = list(created.client.query(f"SELECT `priority` FROM {table}").result())
    assert [r["priority"] for r in rows] == [3]
    # And the migrated table is now what the schemas declare.
    code, out, _ = created.run_edited()
    assert code == 0 and "already up to date" in out


def test_updates_descriptions(created: Setup) -> None:
    def describe(raw: dict) -> None:
        raw["description"] = "Tasks, one row each."
        column(raw, "description")["description"] = "What the user has to do."

    created.edit("tasks", describe)

    code, out, _ = created.run_edited()

    assert code == 0
    assert f"update description of column {created.dataset}.tasks.description" in out
    assert f"update description of table {created.dataset}.tasks" in out
    t = created.table("tasks")
    assert t.description == "Tasks, one row each."
    assert {f.name: f.description for f in t.schema}["description"] == "What the user has to do."


def _without(name: str):
    return lambda raw: raw.update(fields=[f for f in raw["fields"] if f["name"] != name])


@pytest.mark.parametrize(
    ("edits", "messages"),
    [
        (
            {"tasks": lambda raw: column(raw, "duration_minutes").update(type="STRING")},
            ["tasks: column duration_minutes would change type INT64 -> STRING"],
        ),
        ({"tasks": _without("origin")}, ["tasks: column origin is no longer in the schema"]),
        (
            {"tasks": lambda raw: column(raw, "description").update(mode="REQUIRED")},
            ["tasks: column description would change mode NULLABLE -> REQUIRED"],
        ),
        (
            {
                "tasks": lambda raw: raw["fields"].append(
                    {"name": "n", "type": "STRING", "mode": "REQUIRED"}
                )
            },
            ["tasks: new column n is REQUIRED"],
        ),
        ({"tasks": lambda raw: raw.update(clustering=["task_id"])}, ["tasks: clustering"]),
        (
            {"tasks": lambda raw: raw.update(partition_column="updated_at")},
            ["tasks: partitioning would change"],
        ),
        (  # every refused table is reported at once
            {
                "tasks": lambda raw: column(raw, "duration_minutes").update(type="FLOAT64"),
                "projects": _without("progress"),
            },
            [
                "tasks: column duration_minutes would change type",
                "projects: column progress is no longer in the schema",
            ],
        ),
    ],
    ids=["type", "removed", "mode", "required", "clustering", "partitioning", "two-tables"],
)
def test_refuses_destructive_changes_and_changes_nothing(
    created: Setup, edits: dict, messages: list[str]
) -> None:
    for name, change in edits.items():
        created.edit(name, change)
    before = {name: created.table(name).schema for name in _all_tables()}
    # An additive change elsewhere in the same run must not be applied either.
    created.edit(
        "routines", lambda raw: raw["fields"].append({"name": "extra_note", "type": "STRING"})
    )

    code, out, err = created.run_edited()

    assert code == 1
    assert out == ""
    assert f"nothing was changed in {created.project}.{created.dataset}" in err
    for message in messages:
        assert f"table {created.dataset}.{message}" in err
    assert {name: created.table(name).schema for name in _all_tables()} == before


def test_refuses_a_dataset_in_another_location(env: Setup) -> None:
    assert env.run("--location", "EU")[0] == 0

    code, out, err = env.run("--location", "US")

    assert code == 1 and out == ""
    assert f"dataset {env.dataset} is in EU, not US" in err


def _all_tables() -> list[str]:
    return [*load_specs(), dead_letters.TABLE, run_log.TABLE, commit_log.TABLE, leases.TABLE]


VIEW_COLUMNS = {
    "daily_user_activity": [
        "user_id", "day", "interactions", "total_tokens", "errors", "avg_duration_ms",
    ],
    "daily_task_completion": ["user_id", "day", "tasks", "completed", "completion_rate"],
    "daily_emotional_valence": ["user_id", "day", "memories", "avg_valence"],
}  # fmt: skip


def view_columns(env: Setup, name: str) -> list[str]:
    sql = f"SELECT * FROM `{env.project}.{env.dataset}.{name}` LIMIT 0"
    return [f.name for f in env.client.query(sql, timeout=60).result(timeout=60).schema]


def test_creates_the_dashboard_views(env: Setup) -> None:
    code, out, _ = env.run()

    assert code == 0
    for name, columns in VIEW_COLUMNS.items():
        assert f"create view {env.dataset}.{name}\n" in out
        t = env.table(name)
        assert t.table_type == "VIEW" and t.description
        assert t.labels == {setup.VIEW_SQL_LABEL: _view_digest(env.project, env.dataset, name)}
        assert view_columns(env, name) == columns
    assert set(VIEW_COLUMNS) == {v.name for v in analytics.VIEWS}


def _view_digest(project: str, dataset: str, name: str) -> str:
    (view,) = [v for v in analytics.VIEWS if v.name == name]
    return setup.ViewPlan(name, view.text(project, dataset), "").digest


def test_a_changed_view_is_rewritten_and_dry_run_only_says_so(created: Setup) -> None:
    old = created.table("daily_task_completion")
    old.view_query = f"SELECT user_id FROM `{created.project}.{created.dataset}.tasks`"
    old.labels = {setup.VIEW_SQL_LABEL: "an-older-definition"}
    created.client.update_table(old, ["view_query", "labels"], timeout=TIMEOUT)

    code, out, _ = created.run("--dry_run")
    assert code == 0 and f"update view {created.dataset}.daily_task_completion\n" in out
    assert view_columns(created, "daily_task_completion") == ["user_id"]

    code, out, _ = created.run()

    assert code == 0
    assert [line for line in out.splitlines() if "view" in line] == [
        f"update view {created.dataset}.daily_task_completion"
    ]
    assert out.endswith(": done\n")
    assert view_columns(created, "daily_task_completion") == VIEW_COLUMNS["daily_task_completion"]
    code, out, _ = created.run()
    assert code == 0 and "view" not in out and "already up to date" in out


def test_refuses_a_table_where_a_view_belongs(created: Setup) -> None:
    created.client.delete_table(
        f"{created.project}.{created.dataset}.daily_user_activity", timeout=TIMEOUT
    )
    bq.ensure_table(created.client, created.dataset, "daily_user_activity", run_log.SCHEMA, None)

    code, out, err = created.run()

    assert code == 1 and out == ""
    assert f"{created.dataset}.daily_user_activity is a TABLE, not a view" in err
    assert created.table("daily_user_activity").table_type == "TABLE"


def test_a_new_column_is_added_by_one_ddl_statement_each() -> None:
    column = bigquery.SchemaField("laps", "INTEGER", mode="REPEATED")
    assert setup.add_column_sql("p", "d", "workouts", column) == (
        "ALTER TABLE `p.d.workouts` ADD COLUMN IF NOT EXISTS `laps` ARRAY<INT64>"
    )
    with pytest.raises(bq.UnsafeIdentifier):
        setup.add_column_sql("p", "d", "t", bigquery.SchemaField("x` INT64; --", "STRING"))


def test_an_apps_own_schemas_get_no_dashboard_view_over_tables_they_lack(env: Setup) -> None:
    """Issue 25, finding 5: with only an adopter's table, the example app's three views
    were created over tables that do not exist. Now each view needs its table."""
    for path in env.schemas.glob("*.json"):
        if path.name != "tasks.json":
            path.unlink()
    code, out, err = env.run_edited()
    assert code == 0, err
    skipped = f"no view {env.dataset}.daily_user_activity: the schemas declare no table "
    assert skipped + "user_interactions" in out
    assert f"create view {env.dataset}.daily_task_completion" in out  # its table is there
    names = {t.table_id for t in env.client.list_tables(env.dataset)}
    assert "daily_task_completion" in names
    assert not {"daily_user_activity", "daily_emotional_valence"} & names
