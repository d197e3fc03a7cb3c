"""The dead-letter table: every document that could not become a row, and why."""

from __future__ import annotations

import datetime
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.convert.conversion import ConversionError, raw_document_json
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import POLICIES
from pipelines.services import error_text

TABLE = "_dead_letters"
PARTITION_COLUMN = "dead_lettered_at"
CLUSTERING = ("table_name",)
DESCRIPTION = "Documents the sync could not turn into rows, and why."
SCHEMA: list[dict[str, str]] = [
    {"name": "run_id", "type": "STRING", "mode": "REQUIRED", "description": "Sync run."},
    {
        "name": "table_name",
        "type": "STRING",
        "mode": "REQUIRED",
        "description": "Destination table.",
    },
    {
        "name": "document_path",
        "type": "STRING",
        "mode": "REQUIRED",
        "description": "Firestore path.",
    },
    {"name": "field", "type": "STRING", "mode": "NULLABLE", "description": "Offending field."},
    {"name": "reason", "type": "STRING", "mode": "REQUIRED", "description": "Why it was rejected."},
    {
        "name": "partition_day",
        "type": "DATE",
        "mode": "NULLABLE",
        "description": "Its day, if known.",
    },
    {
        "name": "raw_document",
        "type": "STRING",
        "mode": "NULLABLE",
        "description": "Document as JSON.",
    },
    {"name": "read_time", "type": "TIMESTAMP", "mode": "REQUIRED", "description": "Snapshot time."},
    {
        "name": PARTITION_COLUMN,
        "type": "TIMESTAMP",
        "mode": "REQUIRED",
        "description": "Run start.",
    },
]
KEY_COLUMNS = ("table_name", "document_path")


@dataclass(frozen=True)
class Answered:
    """Which of a table's dead letters a run reports: the one rule, used both to
    count them (``pipelines.plan.day_plan``) and to copy them (``bigquery.dead_letters_sql``).

    A broken document with no usable day is always reported; one on a day the
    run replaces, too; one on a day the run leaves alone was reported when its day
    was last replaced, and reporting it every night would drown the new ones. An
    incremental run answers for every document it read (``every``).
    """

    table: str
    days: tuple[datetime.date, ...] = ()
    every: bool = False

    def covers(self, day: datetime.date | None) -> bool:
        return day is None or self.every or day in self.days


#: How many of a table's reasons the verdict and the summary name.
TOP_REASONS = 3
#: A number, date or time in a reason (``integer 12 is outside INT64``): a value.
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d(?:[\w.:+-]*\w)?")


def reason_kind(reason: str, keep: Iterable[str] = (), limit: int = 120) -> str:
    """``reason`` without the document's values: what the summary and ``_sync_runs`` show.

    A reason may quote the value that failed (``unparsable timestamp "…"``,
    ``integer 9223372036854775808 is outside INT64``); quoted strings and numbers
    become ``…`` (see :mod:`pipelines.services.error_text`), so documents that failed the
    same way share one kind and no content leaves ``_dead_letters``. ``keep``:
    quoted words the schema declares (a column's ``allowed_values``), which stay.
    """
    lines = (reason or "").strip().splitlines()
    keep = {*POLICIES, *keep}
    text = _NUMBER.sub(error_text.REDACTED, error_text.scrub(lines[0] if lines else "", keep))
    return text if len(text) <= limit else text[:limit] + error_text.REDACTED


def top_reasons(
    reasons: Mapping[tuple[datetime.date | None, str, str], int],
    answered: Answered,
    n: int = TOP_REASONS,
) -> tuple[tuple[str, str, int], ...]:
    """The ``n`` commonest ``(field, reason kind, count)`` of the letters ``answered`` covers.

    ``reasons``: counts by ``(day, field, reason kind)``, as ``Tally.reasons`` keeps them.
    """
    total: Counter = Counter()
    for (day, field, kind), count in reasons.items():
        if answered.covers(day):
            total[(field, kind)] += count
    ranked = sorted(total.items(), key=lambda item: (-item[1], item[0]))
    return tuple((field, kind, count) for (field, kind), count in ranked[:n])


def reasons_text(reasons: Iterable[Sequence[object]]) -> str:
    """``created_at: expected timestamp, got integer (5); …`` from ``(field, kind, count)``."""
    return "; ".join(f"{field}: {kind} ({count})" for field, kind, count in reasons)


def query_sql(
    project: str, dataset: str, table: str, run_id: str, run_started: datetime.datetime
) -> str:
    """The query that reads one run's dead letters of ``table``: pruned to the run's
    partition (``dead_lettered_at`` is the run's start) and its clustering column."""
    from pipelines.services import bigquery as bq
    from pipelines.state import commit_log

    return (
        f"SELECT document_path, field, reason, partition_day FROM "
        f"{bq.table_sql(project, dataset, TABLE)} "
        f"WHERE {PARTITION_COLUMN} = {commit_log.timestamp_literal(run_started)} "
        f"AND table_name = '{bq.check_identifier(table, 'table')}' "
        f"AND run_id = '{commit_log.check_run_id(run_id)}'"
    )


def dead_letter_row(
    doc: FirestoreDocument,
    error: ConversionError,
    day: datetime.date | None,
    run_id: str,
    read_time: str,
    run_started: str,
    raw_data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``raw_data``: the document with column policies applied (see ``convert.protected``)."""
    return {
        "run_id": run_id,
        "table_name": doc.table,
        "document_path": doc.path,
        "field": error.field,
        "reason": error.reason,
        "partition_day": day.isoformat() if day else None,
        "raw_document": raw_document_json(doc, raw_data),
        "read_time": read_time,
        PARTITION_COLUMN: run_started,
    }


def days_with_letters(
    client: Any,
    dataset: str,
    table: str,
    days: Sequence[datetime.date],
    since: datetime.datetime,
) -> set[datetime.date]:
    """Days of ``days`` on which a run since ``since`` dead-lettered a document of ``table``.

    The drift check re-reads them whatever the counts say (see
    ``read_plan.plan_incremental``). Pruned by the partition column and the
    clustering column; nothing to read before the first dead letter.
    """
    if not days:
        return set()
    from google.api_core import exceptions as api_exceptions
    from google.cloud import bigquery

    from pipelines.services import bigquery as bq

    try:
        job = bq.run_query(
            client,
            f"SELECT DISTINCT partition_day FROM {bq.table_sql(client.project, dataset, TABLE)} "
            f"WHERE {PARTITION_COLUMN} >= @since AND table_name = @table "
            "AND partition_day IN UNNEST(@days)",
            query_parameters=[
                bigquery.ScalarQueryParameter("since", "TIMESTAMP", since),
                bigquery.ScalarQueryParameter("table", "STRING", table),
                bigquery.ArrayQueryParameter("days", "DATE", list(days)),
            ],
        )
    except api_exceptions.NotFound:
        return set()
    return {row["partition_day"] for row in job.result()}
