"""Document content never reaches logs or the console, on the row path or the dead-letter path.

Every string a document holds (values, unknown field names, nested maps, array
elements, and the bad values dead-letter reasons quote) carries a unique marker.
A sync through the CLI entry point runs with the ``pipelines`` and
``firestore_to_bq`` loggers at DEBUG and the process's stdout/stderr captured;
the marker must appear in neither, while the run's counts do. The marker does
reach BigQuery (rows, ``extra``, dead-letter reasons and raw documents), which
proves the content went through the pipeline rather than around it.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import pytest

from pipelines.firestore_to_bq import main
from tests.sync_helpers import (
    PROJECT,
    at,
    interaction,
    memory,
    seed,
    table_rows,
    task,
    unique_dataset,
)

pytestmark = pytest.mark.integration
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


def marked_documents(m: str) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Good and bad documents with the marker in every field that can hold text.

    Returns the documents and the paths that must be dead-lettered. Paths and
    ids never hold the marker: paths are what logs may name.
    """
    unknown = {
        f"{m}_field": f"{m} unknown value",
        "nested": {f"{m}_key": [f"{m} in array", {"deep": f"{m} deep"}]},
    }
    docs: dict[str, dict[str, Any]] = {}
    for i, day in enumerate(DAYS):
        docs[f"users/alice/tasks/t{i}"] = task(
            day,
            description=f"{m} task {i}",
            routine_item_id=f"{m} routine",
            google_calendar_event_id=f"{m} event",
            **unknown,
        )
        docs[f"users/alice/interactions/i{i}"] = interaction(
            day,
            message_in=f"{m} in",
            message_out=f"{m} out",
            intent=f"{m} intent",
            language=f"{m} lang",
            model_used=f"{m} model",
            error_code=f"{m} error",
            **unknown,
        )
        docs[f"users/alice/memories/m{i}"] = memory(
            day, description=f"{m} desc", trigger=f"{m} trig", context=f"{m} ctx", **unknown
        )
    docs["users/alice/projects/p0"] = {
        "name": f"{m} project",
        "description": f"{m} about",
        "task_ids": [f"{m} t0"],
        "created_at": at(DAYS[0]),
        **unknown,
    }
    docs["users/alice/routines/r0"] = {
        "name": f"{m} routine",
        "items": [{"routine_item_id": f"{m} item", "note": f"{m} note"}],
        "created_at": at(DAYS[1]),
        **unknown,
    }
    # Bad values whose dead-letter reasons quote them back.
    bad = {
        "users/alice/tasks/bad_date": task(DAYS[0], date=f"{m} date", description=f"{m} d"),
        "users/alice/tasks/bad_origin": task(DAYS[1], origin=f"{m} origin"),
        "users/alice/tasks/bad_user": task(DAYS[1], user_id=f"{m} user"),
        "users/alice/tasks/bad_created": {"created_at": f"{m} created", **unknown},
        "users/alice/interactions/bad_tokens": interaction(DAYS[2], tokens_in=f"{m} many"),
        "users/alice/memories/bad_time": memory(DAYS[2], timestamp=f"{m}"),
        "users/alice/projects/bad_status": {
            "status": f"{m} status",
            "name": f"{m} name",
            "created_at": at(DAYS[2]),
        },
        "users/alice/routines/bad_days": {
            "days_of_week": [1, f"{m} day"],
            "created_at": at(DAYS[2]),
        },
        "other/place/tasks/outside_layout": task(DAYS[0], description=f"{m} stray"),
    }
    docs.update(bad)
    return docs, set(bad)


def test_document_content_never_reaches_logs_or_console(
    firestore_db, bq_client, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    marker = f"SECRET{uuid.uuid4().hex}"
    docs, dead_paths = marked_documents(marker)
    seed(firestore_db, docs)
    dataset = unique_dataset("nolog")
    caplog.set_level(logging.DEBUG, logger="pipelines")
    caplog.set_level(logging.DEBUG, logger="firestore_to_bq")
    capfd.readouterr()  # drop anything printed while seeding

    argv = ["--project", PROJECT, "--dataset", dataset, "--start_date", DAYS[0]]
    argv += ["--end_date", DAYS[-1], "--run_id", "nolog_run"]
    code = main(argv)
    out, err = capfd.readouterr()
    assert code == 0, out + err

    # The marker went through the pipeline into BigQuery...
    tasks = table_rows(bq_client, dataset, "tasks")
    assert any(marker in (r["description"] or "") for r in tasks)
    assert any(marker in str(r["extra"]) for r in tasks)
    dead = {r["document_path"]: r for r in table_rows(bq_client, dataset, "_dead_letters")}
    assert set(dead) == dead_paths
    assert marker in dead["users/alice/tasks/bad_origin"]["reason"]
    assert all(marker in r["raw_document"] for r in dead.values())

    # ...but not into any log record or console line.
    records = [r for r in caplog.records if r.name.startswith(("pipelines", "firestore_to_bq"))]
    assert records, "no log record captured from the pipeline's loggers"
    assert any("replaced" in r.getMessage() for r in records)
    leaks = [r.getMessage() for r in caplog.records if marker in r.getMessage()]
    assert not leaks, leaks
    assert marker not in caplog.text
    assert marker not in out
    assert marker not in err

    # What the console does say: the run, each table and its counts.
    assert "nolog_run" in out
    expected = {  # table: (read, written, dead-lettered)
        "tasks": (8, 3, 5),
        "user_interactions": (4, 3, 1),
        "emotional_memories": (4, 3, 1),
        "projects": (2, 1, 1),
        "routines": (2, 1, 1),
    }
    for table, (read, written, dead_lettered) in expected.items():
        pattern = rf"^{table}\s+{read}\s+{written}\s+{dead_lettered}\s+0\s+ok$"
        assert re.search(pattern, out, re.MULTILINE), (table, out)
    assert "reconciled" in out
