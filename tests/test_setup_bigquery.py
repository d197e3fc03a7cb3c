"""scripts/setup_bigquery.py against the BigQuery emulator: create, re-run, migrate, refuse."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from google.cloud import bigquery

from devtools import REPO_ROOT
from devtools import setup_bigquery as setup
from pipelines import analytics, audit, dead_letters
from pipelines import bigquery as bq
from pipelines.table_spec import load_specs

if TYPE_CHECKING:
    from devtools.emulators import Emulators

pytestmark = pytest.mark.integration

TIMEOUT = 30


@pytest.fixture
def dataset(emulators: Emulators) -> str:
    return f"setup_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    """An editable copy of schemas/."""
    copy = tmp_path / "schemas"
    copy.mkdir()
    for path in (REPO_ROOT / "schemas").glob("*.json"):
        shutil.copy(path, copy / path.name)
    return copy


def edit(schemas: Path, table: str, change) -> None:
    path = schemas / f"{table}.json"
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


def column(raw: dict, name: str) -> dict:
    return next(f for f in raw["fields"] if f["name"] == name)


def run(
    emulators: Emulators, dataset: str, *extra: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = setup.main(["--project", emulators.project, "--dataset", dataset, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def table(client: bigquery.Client, dataset: str, name: str) -> bigquery.Table:
    return client.get_table(f"{client.project}.{dataset}.{name}", timeout=TIMEOUT)


def count(client: bigquery.Client, dataset: str, name: str) -> int:
    sql = f"SELECT COUNT(*) AS n FROM `{client.project}.{dataset}.{name}`"
    return next(iter(client.query(sql, timeout=TIMEOUT).result(timeout=60)))["n"]


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


def test_creates_dataset_and_every_table_partitioned_and_clustered(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(emulators, dataset, "--location", "EU", capsys=capsys)

    assert code == 0
    assert f"create dataset {emulators.project}.{dataset} in EU" in out
    assert bq_client.get_dataset(f"{emulators.project}.{dataset}", timeout=TIMEOUT).location == (
        "EU"
    )
    expected = {
        spec.name: (spec.partition_column, list(spec.clustering), list(spec.column_names))
        for spec in load_specs().values()
    }
    expected[dead_letters.TABLE] = (
        dead_letters.PARTITION_COLUMN,
        list(dead_letters.CLUSTERING),
        [f["name"] for f in dead_letters.SCHEMA],
    )
    expected[audit.TABLE] = (audit.PARTITION_COLUMN, [], [f["name"] for f in audit.SCHEMA])
    assert len(expected) == 7
    for name, (partition, clustering, columns) in expected.items():
        t = table(bq_client, dataset, name)
        assert t.time_partitioning.type_ == "DAY", name
        assert t.time_partitioning.field == partition, name
        assert list(t.clustering_fields or []) == clustering, name
        assert column_names(t) == columns, name
        assert f"create table {dataset}.{name} " in out
    sync_runs = {f.name: f for f in table(bq_client, dataset, audit.TABLE).schema}
    assert sync_runs["run_id"].mode == "REQUIRED"
    assert sync_runs["tables"].field_type == "JSON"


def test_second_run_changes_nothing(
    emulators: Emulators, dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(emulators, dataset, capsys=capsys)[0] == 0

    code, out, _ = run(emulators, dataset, capsys=capsys)

    assert code == 0
    lines = out.splitlines()
    assert lines[:-1] == [f"unchanged table {dataset}.{name}" for name in _all_tables()]
    assert lines[-1] == f"{emulators.project}.{dataset}: already up to date"


def test_dry_run_creates_nothing(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(emulators, dataset, "--dry_run", capsys=capsys)

    assert code == 0
    assert out.count("create table ") == 7
    assert "dry run: nothing changed" in out
    assert dataset not in {d.dataset_id for d in bq_client.list_datasets(timeout=TIMEOUT)}


def test_adds_a_new_nullable_column_and_keeps_rows_emulator_cannot_query_it(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    schemas: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """bqemulator adds the column to the table's schema but not to its stored data,
    so selecting it fails there; on BigQuery it is queryable at once. The test
    checks the schema and the kept rows, which both honour."""
    assert run(emulators, dataset, capsys=capsys)[0] == 0
    load_one_task(dataset, emulators.project)
    edit(
        schemas,
        "tasks",
        lambda raw: raw["fields"].append(
            {"name": "priority", "type": "INT64", "mode": "NULLABLE", "description": "1-5."}
        ),
    )

    code, out, _ = run(emulators, dataset, "--schemas_dir", str(schemas), capsys=capsys)

    assert code == 0
    assert f"add column {dataset}.tasks.priority INT64 NULLABLE" in out
    assert f"unchanged table {dataset}.routines" in out
    t = table(bq_client, dataset, "tasks")
    assert column_names(t)[-1] == "priority"
    assert t.schema[-1].mode == "NULLABLE" and t.schema[-1].description == "1-5."
    assert t.time_partitioning.field == "created_at" and t.clustering_fields == ["user_id"]
    assert count(bq_client, dataset, "tasks") == 1
    # And the migrated table is now what the schemas declare.
    code, out, _ = run(emulators, dataset, "--schemas_dir", str(schemas), capsys=capsys)
    assert code == 0 and "already up to date" in out


def test_updates_descriptions(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    schemas: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(emulators, dataset, capsys=capsys)[0] == 0

    def describe(raw: dict) -> None:
        raw["description"] = "Tasks, one row each."
        column(raw, "description")["description"] = "What the user has to do."

    edit(schemas, "tasks", describe)

    code, out, _ = run(emulators, dataset, "--schemas_dir", str(schemas), capsys=capsys)

    assert code == 0
    assert f"update description of column {dataset}.tasks.description" in out
    assert f"update description of table {dataset}.tasks" in out
    t = table(bq_client, dataset, "tasks")
    assert t.description == "Tasks, one row each."
    assert {f.name: f.description for f in t.schema}["description"] == "What the user has to do."


def _refused(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    schemas: Path,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """Run with the edited schemas, expect a refusal, and check that nothing changed."""
    before = {name: table(bq_client, dataset, name).schema for name in _all_tables()}
    # An additive change elsewhere in the same run must not be applied either.
    edit(
        schemas,
        "routines",
        lambda raw: raw["fields"].append({"name": "extra_note", "type": "STRING"}),
    )

    code, out, err = run(emulators, dataset, "--schemas_dir", str(schemas), capsys=capsys)

    assert code == 1
    assert out == ""
    assert f"nothing was changed in {emulators.project}.{dataset}" in err
    after = {name: table(bq_client, dataset, name).schema for name in _all_tables()}
    assert after == before
    return err


def test_refuses_a_type_change(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    schemas: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(emulators, dataset, capsys=capsys)[0] == 0

    edit(schemas, "tasks", lambda raw: column(raw, "duration_minutes").update(type="STRING"))

    err = _refused(emulators, bq_client, dataset, schemas, capsys)
    assert f"table {dataset}.tasks: column duration_minutes would change type INT64 -> STRING" in (
        err
    )


def test_refuses_a_removed_column(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    schemas: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(emulators, dataset, capsys=capsys)[0] == 0
    edit(
        schemas,
        "tasks",
        lambda raw: raw.update(fields=[f for f in raw["fields"] if f["name"] != "origin"]),
    )

    err = _refused(emulators, bq_client, dataset, schemas, capsys)
    assert f"table {dataset}.tasks: column origin is no longer in the schema" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda raw: column(raw, "description").update(mode="REQUIRED"),
            "column description would change mode NULLABLE -> REQUIRED",
        ),
        (
            lambda raw: raw["fields"].append({"name": "n", "type": "STRING", "mode": "REQUIRED"}),
            "new column n is REQUIRED",
        ),
        (lambda raw: raw.update(clustering=["task_id"]), "clustering would change"),
        (lambda raw: raw.update(partition_column="updated_at"), "partitioning would change"),
    ],
)
def test_refuses_other_destructive_changes(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    schemas: Path,
    capsys: pytest.CaptureFixture[str],
    change,
    message: str,
) -> None:
    assert run(emulators, dataset, capsys=capsys)[0] == 0
    edit(schemas, "tasks", change)

    err = _refused(emulators, bq_client, dataset, schemas, capsys)
    assert f"table {dataset}.tasks: " in err and message in err


def test_refuses_a_dataset_in_another_location(
    emulators: Emulators, dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(emulators, dataset, "--location", "EU", capsys=capsys)[0] == 0

    code, out, err = run(emulators, dataset, "--location", "US", capsys=capsys)

    assert code == 1 and out == ""
    assert f"dataset {dataset} is in EU, not US" in err


def _all_tables() -> list[str]:
    return [*load_specs(), dead_letters.TABLE, audit.TABLE]


def test_reports_every_refused_table_at_once(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    schemas: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(emulators, dataset, capsys=capsys)[0] == 0
    edit(schemas, "tasks", lambda raw: column(raw, "duration_minutes").update(type="FLOAT64"))
    edit(
        schemas,
        "projects",
        lambda raw: raw.update(fields=[f for f in raw["fields"] if f["name"] != "progress"]),
    )

    err = _refused(emulators, bq_client, dataset, schemas, capsys)
    assert f"table {dataset}.tasks: column duration_minutes would change type" in err
    assert f"table {dataset}.projects: column progress is no longer in the schema" in err


VIEW_COLUMNS = {
    "daily_user_activity": [
        "user_id", "day", "interactions", "total_tokens", "errors", "avg_duration_ms",
    ],
    "daily_task_completion": ["user_id", "day", "tasks", "completed", "completion_rate"],
    "daily_emotional_valence": ["user_id", "day", "memories", "avg_valence"],
}  # fmt: skip


def view_columns(client: bigquery.Client, dataset: str, name: str) -> list[str]:
    job = client.query(f"SELECT * FROM `{client.project}.{dataset}.{name}` LIMIT 0", timeout=60)
    return [f.name for f in job.result(timeout=60).schema]


def test_creates_the_dashboard_views(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(emulators, dataset, capsys=capsys)

    assert code == 0
    for name, columns in VIEW_COLUMNS.items():
        assert f"create view {dataset}.{name}\n" in out
        t = table(bq_client, dataset, name)
        assert t.table_type == "VIEW" and t.description
        assert t.labels == {setup.VIEW_SQL_LABEL: _view_digest(emulators.project, dataset, name)}
        assert view_columns(bq_client, dataset, name) == columns
    assert set(VIEW_COLUMNS) == {v.name for v in analytics.VIEWS}


def _view_digest(project: str, dataset: str, name: str) -> str:
    (view,) = [v for v in analytics.VIEWS if v.name == name]
    return setup.ViewPlan(name, view.text(project, dataset), "").digest


def test_a_changed_view_is_rewritten_and_dry_run_only_says_so(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(emulators, dataset, capsys=capsys)[0] == 0
    old = table(bq_client, dataset, "daily_task_completion")
    old.view_query = f"SELECT user_id FROM `{bq_client.project}.{dataset}.tasks`"
    old.labels = {setup.VIEW_SQL_LABEL: "an-older-definition"}
    bq_client.update_table(old, ["view_query", "labels"], timeout=TIMEOUT)

    code, out, _ = run(emulators, dataset, "--dry_run", capsys=capsys)
    assert code == 0 and f"update view {dataset}.daily_task_completion\n" in out
    assert view_columns(bq_client, dataset, "daily_task_completion") == ["user_id"]

    code, out, _ = run(emulators, dataset, capsys=capsys)

    assert code == 0
    assert [line for line in out.splitlines() if "view" in line] == [
        f"update view {dataset}.daily_task_completion"
    ]
    assert out.endswith(": done\n")
    assert (
        view_columns(bq_client, dataset, "daily_task_completion")
        == (VIEW_COLUMNS["daily_task_completion"])
    )
    code, out, _ = run(emulators, dataset, capsys=capsys)
    assert code == 0 and "view" not in out and "already up to date" in out


def test_refuses_a_table_where_a_view_belongs(
    emulators: Emulators,
    bq_client: bigquery.Client,
    dataset: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(emulators, dataset, capsys=capsys)[0] == 0
    bq_client.delete_table(f"{bq_client.project}.{dataset}.daily_user_activity", timeout=TIMEOUT)
    bq.ensure_table(bq_client, dataset, "daily_user_activity", audit.SCHEMA, None)

    code, out, err = run(emulators, dataset, capsys=capsys)

    assert code == 1 and out == ""
    assert f"{dataset}.daily_user_activity is a TABLE, not a view" in err
    assert table(bq_client, dataset, "daily_user_activity").table_type == "TABLE"
