"""The end-of-run summary's undeclared-fields line (issue 25), without a server.

``ConvertDocuments`` counts, per table, the rows whose ``extra`` holds fields no
column declares and (by a digest, never the name) how many distinct fields; the
summary turns that into one line pointing at ``firestore-to-bq schema drift``. The
same line after a real sync: ``tests/integration/test_schema_drift.py``.
"""

from __future__ import annotations

import datetime
from typing import Any

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipelines.cli.options import SyncConfig, resolve
from pipelines.cli.summary import from_audit, summarize, with_undeclared
from pipelines.convert.document import FirestoreDocument
from pipelines.firestore_to_bq import parse_options
from pipelines.transforms import metrics
from pipelines.transforms.convert_documents import ConvertDocuments
from tests.support.documents import at, task

DAY = "2026-11-02"
NOW = datetime.datetime(2026, 11, 3, 3, tzinfo=datetime.UTC)
SECRET = "private_field_name"


def _config(*args: str, dry_run: bool = False) -> SyncConfig:
    argv = ["--project", "demo-project", "--dataset", "app", "--collections", "tasks", *args]
    return resolve(parse_options([*argv, "--date", DAY]), dry_run=dry_run, now=NOW)


def _converted(config: SyncConfig, datas: list[dict[str, Any]]) -> dict[str, int]:
    """The counters of converting ``datas`` as tasks of one user."""
    docs = [
        FirestoreDocument("tasks", f"users/a/tasks/t{i}", data, update_time=at(DAY))
        for i, data in enumerate(datas)
    ]
    pipeline = beam.Pipeline(runner=FnApiRunner())
    convert = ConvertDocuments(config.tables, config.stamp, config.edit_window)
    _ = pipeline | beam.Create(docs) | convert
    result = pipeline.run()
    result.wait_until_finish()
    return metrics.committed(result)


def test_rows_with_undeclared_fields_and_the_fields_are_counted() -> None:
    config = _config()
    values = _converted(
        config,
        [
            task(DAY, mood="calm", **{SECRET: 1}),
            task(DAY, mood="tense"),
            task(DAY),  # nothing undeclared
            task(DAY, duration_minutes="long", mood="x"),  # a dead letter, not a row
        ],
    )
    assert values[metrics.name("tasks", metrics.ROWS_WITH_UNDECLARED)] == 2
    assert metrics.undeclared_fields(values, "tasks") == 2
    assert not any(SECRET in name or "mood" in name for name in values)  # digests only


def test_fields_are_counted_up_to_a_bound_per_worker() -> None:
    config = _config()
    many = {f"f{i}": i for i in range(3 * metrics.MAX_UNDECLARED_FIELDS)}
    values = _converted(config, [task(DAY, **many)])
    assert metrics.undeclared_fields(values, "tasks") == metrics.MAX_UNDECLARED_FIELDS
    summary = summarize(config, values)
    assert "tasks: 1 row read hold 20 or more fields no column declares" in summary.render()


def test_the_summary_says_how_many_and_where_to_look_never_which() -> None:
    config = _config()
    values = _converted(config, [task(DAY, mood="calm", **{SECRET: 1}), task(DAY, mood="x")])
    line = summarize(config, values).render().splitlines()[-1]
    assert line == (
        "tasks: 2 rows read hold 2 fields no column declares, kept as JSON in extra; to name "
        "them and the columns to declare: firestore-to-bq schema drift --project demo-project "
        "--dataset app"
    )
    assert SECRET not in summarize(config, values).render()


def test_a_run_that_wrote_adds_the_line_to_its_audit_summary() -> None:
    config = _config()
    verdict = {
        "run_id": "r1",
        "status": "succeeded",
        "tables": [
            {"table": "tasks", "status": "succeeded", "documents_read": 3, "rows_written": 3}
        ],
    }
    values = {
        metrics.name("tasks", metrics.ROWS_WITH_UNDECLARED): 1,
        f"tasks.{metrics.UNDECLARED_FIELD}#0123456789ab": 1,
    }
    text = with_undeclared(from_audit(config, verdict), values).render()
    assert text.splitlines()[-1].startswith("tasks: 1 row read hold 1 field no column declares")
    # No counters (a launch handed over, or none kept): no line.
    assert "no column declares" not in from_audit(config, verdict).render()


def test_a_dry_run_says_the_command_helps_once_a_run_has_written() -> None:
    config = _config(dry_run=True)
    values = {metrics.name("tasks", metrics.ROWS_WITH_UNDECLARED): 4}
    line = summarize(config, values).render().splitlines()[-1]
    assert line.startswith("tasks: 4 rows read hold fields no column declares")  # how many: unknown
    assert line.endswith(
        "to name them and the columns to declare once a run has written them: "
        "firestore-to-bq schema drift --project demo-project --dataset app"
    )


def test_no_undeclared_fields_no_line() -> None:
    config = _config()
    values = _converted(config, [task(DAY)])
    assert metrics.name("tasks", metrics.ROWS_WITH_UNDECLARED) not in values
    assert "no column declares" not in summarize(config, values).render()
