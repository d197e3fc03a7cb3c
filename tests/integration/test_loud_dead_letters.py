"""Dead letters are loud (issue 25, finding 6), end to end on the emulators.

A schema that turns every document into a dead letter used to print
``workouts  4  0  4  0  ok`` and exit 0. Now the summary adds one line per table
with dead letters (count, top reasons by field, and the ``_dead_letters`` query
that reads them), and ``--max_dead_letter_share`` refuses such a table the way
the shrink guard does: nothing replaced, its verdict ``refused``, exit 1.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from pipelines.firestore_to_bq import main
from tests.support.documents import at
from tests.support.sync_helpers import PROJECT, seed, table_rows, unique_dataset, verdicts

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]


def _schema(folder: Path, heart_rate_type: str) -> Path:
    """An adopter's own table: ``users/{user_id}/workouts``, day-partitioned on ``started_at``."""
    folder.mkdir(parents=True, exist_ok=True)
    schema = {
        "table": "workouts",
        "description": "One row per workout.",
        "source": {"collection": "workouts", "layout": "per_user", "parent_collection": "users"},
        "id_column": "workout_id",
        "partition_column": "started_at",
        "clustering": ["user_id"],
        "fields": [
            {"name": "user_id", "type": "STRING", "mode": "REQUIRED"},
            {"name": "workout_id", "type": "STRING", "mode": "REQUIRED"},
            {"name": "started_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
            {"name": "heart_rate_avg", "type": heart_rate_type, "mode": "NULLABLE"},
        ],
    }
    (folder / "workouts.json").write_text(json.dumps(schema))
    return folder


def _workouts(heart_rate: object) -> dict[str, dict]:
    return {
        f"users/ann/workouts/w{i}": {"started_at": at(day), "heart_rate_avg": heart_rate}
        for i, day in enumerate(DAYS)
    }


def _argv(dataset: str, schemas: Path, *extra: str) -> list[str]:
    return [
        "--project", PROJECT, "--dataset", dataset, "--schemas_dir", str(schemas),
        "--start_date", DAYS[0], "--end_date", DAYS[-1], *extra,
    ]  # fmt: skip


def test_a_schema_that_dead_letters_every_document_says_so_and_where_to_read_them(
    firestore_db, bq_client, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    marker = f"SECRET{uuid.uuid4().hex}"
    docs = _workouts("150")  # the app stores a string; the schema says INTEGER
    docs["users/ann/workouts/odd"] = {"started_at": f"{marker} yesterday", "heart_rate_avg": 1}
    seed(firestore_db, docs)
    dataset = unique_dataset("loud")
    schemas = _schema(tmp_path / "schemas", "INTEGER")
    reasons = (
        "workouts: 5 documents dead-lettered, top reasons: "
        "heart_rate_avg: expected integer, got string (4); "
        'started_at: unparsable timestamp "…" (1); '
    )
    capfd.readouterr()

    # A dry run says so too, from its counters (it writes no dead letters).
    assert main(_argv(dataset, schemas, "--dry_run")) == 0
    out, err = capfd.readouterr()
    assert out.splitlines()[-1] == reasons + "a run that writes records them in _dead_letters"

    code = main(_argv(dataset, schemas))
    out, err = capfd.readouterr()

    assert code == 0, out + err  # dead letters reconcile: the run itself is fine
    assert re.search(r"^workouts\s+5\s+0\s+5\s+0\s+ok$", out, re.MULTILINE), out
    [line] = [ln for ln in out.splitlines() if ln.startswith("workouts: ")]
    assert line.startswith(reasons + "read them: SELECT "), line
    assert f"`{PROJECT}.{dataset}._dead_letters`" in line
    assert marker not in out + err  # reasons are named, values are not

    # The query it prints reads exactly this run's dead letters of the table.
    query = line.split("read them: ", 1)[1]
    rows = list(bq_client.query(query, timeout=60).result(timeout=60))
    assert sorted(r["document_path"] for r in rows) == sorted(docs)
    assert {r["field"] for r in rows} == {"heart_rate_avg", "started_at"}

    # The verdict keeps the reasons (field and kind, no value) for `status` and later reads.
    [verdict] = verdicts(bq_client, dataset)
    [entry] = verdict["tables"]
    assert entry["dead_letter_reasons"] == [
        {"field": "heart_rate_avg", "reason": "expected integer, got string", "count": 4},
        {"field": "started_at", "reason": 'unparsable timestamp "…"', "count": 1},
    ]


def test_max_dead_letter_share_refuses_the_table_and_leaves_it_as_it_was(
    firestore_db, bq_client, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    seed(firestore_db, _workouts(150))
    dataset = unique_dataset("share")
    good = _schema(tmp_path / "good", "INTEGER")
    assert main(_argv(dataset, good, "--max_dead_letter_share", "0.5")) == 0
    before = table_rows(bq_client, dataset, "workouts")
    assert len(before) == len(DAYS)

    # A wrong schema: every document is now a dead letter. Under the shrink
    # guard's 100 rows a day, only the share limit stops it emptying the days.
    wrong = _schema(tmp_path / "wrong", "BOOLEAN")
    capfd.readouterr()
    code = main(_argv(dataset, wrong, "--max_dead_letter_share", "0.5"))
    out, err = capfd.readouterr()

    assert code == 1, out + err
    assert table_rows(bq_client, dataset, "workouts") == before
    [line] = [ln for ln in err.splitlines() if ln.startswith("workouts: NOT replaced")]
    assert (
        "4 of 4 documents read were dead-lettered (100.0%), more than "
        "--max_dead_letter_share 0.5; top reason: heart_rate_avg: expected boolean, "
        "got integer (4); read them in _dead_letters"
    ) in line, line
    assert "error: run failed" in err
    last = verdicts(bq_client, dataset)[-1]
    assert last["status"] == "failed"
    [entry] = last["tables"]
    assert entry["status"] == "refused" and entry["replaced"] is False
    # The dead letters are written all the same: the refusal points at them.
    letters = table_rows(bq_client, dataset, "_dead_letters", keep_run_metadata=True)
    assert {r["document_path"] for r in letters if r["run_id"] == last["run_id"]} == set(
        _workouts(0)
    )
