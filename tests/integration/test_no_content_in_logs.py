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
from tests.support.documents import at, interaction, memory, task
from tests.support.sync_helpers import PROJECT, seed, table_rows, unique_dataset

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


def _retype_column(bq_client, dataset: str, table: str, column: str, new_type: str) -> None:
    """Recreate ``table`` empty with ``column`` of another type: the commit's INSERT
    then fails casting the staged values, and errors of that kind quote the value."""
    from google.cloud import bigquery

    from pipelines.convert.table_spec import load_specs

    spec = load_specs()[table]
    ref = f"{bq_client.project}.{dataset}.{table}"
    bq_client.delete_table(ref, timeout=60)
    schema = [
        bigquery.SchemaField.from_api_repr({**f, "type": new_type} if f["name"] == column else f)
        for f in spec.bigquery_schema()
    ]
    broken = bigquery.Table(ref, schema=schema)
    broken.time_partitioning = bigquery.TimePartitioning(field=spec.partition_column)
    bq_client.create_table(broken, timeout=60)


def test_failure_paths_carry_no_document_content(
    firestore_db, bq_client, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A commit that fails on a value, reported by the commit step, the audit row's
    per-table errors on the console and the run's root cause: paths and reasons, no values."""
    marker = f"SECRET{uuid.uuid4().hex}"
    docs, _ = marked_documents(marker)
    seed(firestore_db, docs)
    dataset = unique_dataset("nologfail")
    argv = ["--project", PROJECT, "--dataset", dataset, "--start_date", DAYS[0]]
    argv += ["--end_date", DAYS[-1]]
    assert main(argv) == 0
    _retype_column(bq_client, dataset, "tasks", "description", "INT64")
    caplog.set_level(logging.DEBUG, logger="pipelines")
    caplog.set_level(logging.DEBUG, logger="firestore_to_bq")
    capfd.readouterr()

    code = main(argv)
    out, err = capfd.readouterr()
    assert code == 1, out + err
    assert "tasks: NOT replaced" in err
    assert "error: run failed: " in err
    messages = [r.getMessage() for r in caplog.records]
    assert any("commit of tasks failed" in m for m in messages), "the commit did not fail"
    leaks = [r.getMessage() for r in caplog.records if marker in r.getMessage()]
    assert not leaks, leaks
    assert marker not in caplog.text
    assert marker not in out
    assert marker not in err


# --------------------------------------------------------------------------------------
# Error messages that quote values (*unit*): BigQuery's and the emulator's wordings
# --------------------------------------------------------------------------------------

SECRET = "SECRET value of a document"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f"Bad int64 value: {SECRET}", "Bad int64 value: …"),
        (f"Bad double value: {SECRET}; in column x", "Bad double value: …; in column x"),
        (f"Could not convert string '{SECRET}' to INT64", "Could not convert string '…' to INT64"),
        (f'Invalid timestamp string "{SECRET}"', 'Invalid timestamp string "…"'),
        ("Could not convert string 'SECRETabc' to INT64", "Could not convert string '…' to INT64"),
        ("Column 'extra' of tasks not found", "Column 'extra' of tasks not found"),
        ('Referenced column "created_at" not found', 'Referenced column "created_at" not found'),
        ("Unrecognized name: `extra` at [3:5]", "Unrecognized name: `extra` at [3:5]"),
        (
            "failed [while running 'RecordRun/RecordRun']",
            "failed [while running 'RecordRun/RecordRun']",
        ),
    ],
)
def test_scrub_redacts_quoted_values_and_keeps_declared_names(message: str, expected: str) -> None:
    from pipelines.convert.table_spec import load_specs
    from pipelines.services.error_text import names, scrub

    assert scrub(message, names(load_specs().values())) == expected


def test_a_commit_error_quoting_a_value_is_logged_and_recorded_without_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from apache_beam.options.pipeline_options import PipelineOptions
    from google.api_core.exceptions import BadRequest

    from pipelines.cli.options import resolve
    from pipelines.transforms import write_bigquery

    config = resolve(PipelineOptions(["--project", "p", "--dataset", "d", "--date", DAYS[0]]))
    fn = write_bigquery._CommitFn(
        config.target, config.tables, {w.table: w for w in config.windows}, config.stamp,
        write_bigquery.Guards(),
    )  # fmt: skip
    fn._client = None

    def fails(*_args, **_kwargs):
        raise BadRequest(f"Bad int64 value: {SECRET}\nat row 3: {SECRET}")

    monkeypatch.setattr(fn, "_replace_days", fails)
    monkeypatch.setattr(write_bigquery, "drop_staging_of", lambda *_args: None)
    caplog.set_level(logging.DEBUG, logger="pipelines")
    [result] = fn.process(("tasks", {"staged": [1]}), {})
    assert result["replaced"] is False
    assert result["error"] == "BadRequest: Bad int64 value: …"
    assert "commit of tasks failed: BadRequest: Bad int64 value: …" in caplog.text
    assert "SECRET" not in caplog.text


def test_the_root_cause_line_carries_no_value() -> None:
    from google.api_core.exceptions import BadRequest

    from pipelines.firestore_to_bq import _root_cause

    try:
        try:
            raise BadRequest(f"Could not convert string '{SECRET}' to INT64")
        except BadRequest as exc:
            raise RuntimeError("step failed [while running 'Commit']") from exc
    except RuntimeError as wrapped:
        line = _root_cause(wrapped)
    assert line == "BadRequest: Could not convert string '…' to INT64"


def test_a_retried_read_error_quoting_a_value_is_logged_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from google.api_core.exceptions import ServiceUnavailable

    from pipelines.services.firestore import _RetryLog

    log = _RetryLog("tasks")
    log.last_path = "users/alice/tasks/t1"
    caplog.set_level(logging.WARNING, logger="pipelines")
    assert log.retryable(ServiceUnavailable(f"stream broke at value '{SECRET}'"))
    assert "resuming after users/alice/tasks/t1: attempt 1 failed" in caplog.text
    assert "(ServiceUnavailable: stream broke at value '…')" in caplog.text
    assert "SECRET" not in caplog.text
