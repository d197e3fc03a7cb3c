"""``firestore-to-bq schema drift`` after real syncs against the emulators (issue 25).

Documents carry fields the example app's schemas do not declare; the sync's summary
counts them and points at the command, which names each one with its row count, the
JSON type of its values and the column to declare. A declared field arriving with
another type shows as a type change, and the rebuild docs/schemas.md describes (a
type every value fits, the table dropped, ``setup_bigquery.py``, a full run of that
table) clears it.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import pytest

from devtools import setup_bigquery
from pipelines.firestore_to_bq import main
from tests.support import example_app
from tests.support.documents import task
from tests.support.sync_helpers import PROJECT, seed, sync, table_rows, unique_dataset

UTC = datetime.UTC


def days_ago(n: int) -> str:
    """A recent day: the command reads the last ``--days`` days up to today."""
    return (datetime.datetime.now(UTC).date() - datetime.timedelta(days=n)).isoformat()


D1, D2, D3 = days_ago(3), days_ago(2), days_ago(1)


def drift(capsys: pytest.CaptureFixture[str], dataset: str, *args: str) -> tuple[int, str]:
    code = main(["schema", "drift", "--project", PROJECT, "--dataset", dataset, *args])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def block(out: str, table: str) -> list[str]:
    """The report's lines about ``table``."""
    [found] = [b for b in out.split("\n\n") if b.startswith(f"{table}: ")]
    return found.splitlines()


def seeded(firestore_db) -> None:
    docs = {
        f"users/alice/tasks/t{i}": task(day, mood="calm", streakDays=i, snoozed=None)
        for i, day in enumerate((D1, D2, D3))
    }
    docs["users/alice/tasks/plain"] = task(D3)
    docs["users/bob/tasks/t0"] = task(D2, streakDays=2.5)
    # A declared INT64 field now written with a fraction: a dead letter, not a row.
    docs["users/bob/tasks/long"] = task(D2, duration_minutes=2.5)
    seed(firestore_db, docs)


def test_schema_drift_names_undeclared_fields_with_counts_and_types(
    firestore_db, bq_client, capsys
) -> None:
    dataset = unique_dataset("drift")
    seeded(firestore_db)
    summary = sync(dataset, "--start_date", D1, "--end_date", D3).render()
    capsys.readouterr()
    # The run's summary counts them, names none, and points here.
    assert (
        "tasks: 4 rows read hold 3 fields no column declares, kept as JSON in extra; to name "
        f"them and the columns to declare: firestore-to-bq schema drift --project {PROJECT} "
        f"--dataset {dataset}"
    ) in summary.splitlines()
    assert "streakDays" not in summary and "mood" not in summary

    code, out = drift(capsys, dataset)
    assert code == 0  # a report, not a failure
    lines = block(out, "tasks")
    assert lines[0] == "tasks: 5 rows in the window"
    assert lines[1].startswith("  3 undeclared fields in extra (declare them")
    assert lines[2:5] == [  # most rows first
        f"    streakDays: 4 rows, {D1}..{D3}, integer 3, double 1 -> declare "
        '{"name": "streak_days", "type": "FLOAT64"}, field_map "streak_days": "streakDays"',
        f'    mood: 3 rows, {D1}..{D3}, string -> declare {{"name": "mood", "type": "STRING"}}',
        f"    snoozed: 3 rows, {D1}..{D3}, null -> only nulls so far: no type to suggest",
    ]
    assert (
        "    duration_minutes (column duration_minutes INT64): expected integer, got double, "
        f"1 document, {D2}"
    ) in lines
    assert block(out, "projects") == ["projects: 0 rows in the window, no drift"]
    assert out.rstrip().endswith("tasks")
    assert drift(capsys, dataset, "--fail_on_drift")[0] == 1


def test_the_documented_rebuild_clears_a_type_change(
    firestore_db, bq_client, capsys, tmp_path: Path
) -> None:
    dataset = unique_dataset("drift_rebuild")
    seeded(firestore_db)
    sync(dataset, "--start_date", D1, "--end_date", D3)

    # docs/schemas.md#changing-a-columns-type: the new type, the table dropped and
    # created again, then a full run of that table.
    schemas = tmp_path / "schemas"
    shutil.copytree(example_app.SCHEMAS, schemas)
    tasks = json.loads((schemas / "tasks.json").read_text())
    for field in tasks["fields"]:
        if field["name"] == "duration_minutes":
            field["type"] = "FLOAT64"  # takes the old integers and the new decimals
    (schemas / "tasks.json").write_text(json.dumps(tasks))
    bq_client.delete_table(f"{PROJECT}.{dataset}.tasks")
    argv = ["--project", PROJECT, "--dataset", dataset, "--schemas_dir", str(schemas)]
    assert setup_bigquery.main(argv) == 0
    sync(dataset, "--mode", "full", "--collections", "tasks", "--schemas_dir", str(schemas))
    capsys.readouterr()

    rows = {r["task_id"]: r for r in table_rows(bq_client, dataset, "tasks")}
    assert rows["long"]["duration_minutes"] == 2.5
    assert rows["t0"]["duration_minutes"] == 15.0
    code, out = drift(capsys, dataset, "--schemas_dir", str(schemas))
    lines = block(out, "tasks")
    assert lines[0] == "tasks: 6 rows in the window"
    assert not any("another type" in line for line in lines)  # the old letters are history
    assert any(line.startswith("    mood: 3 rows") for line in lines)
