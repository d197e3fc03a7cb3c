"""The run's Beam counters: every name in one place, built and parsed here only.

Counters are named ``<table>.<what>`` (``tasks.documents_returned``) or, per
day, ``<table>.<what>@<YYYY-MM-DD>``; the dry-run summary reads them back.
"""

from __future__ import annotations

import datetime
import hashlib
import json

from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

NAMESPACE = "firestore_to_bq"

DOCUMENTS_RETURNED = "documents_returned"  # by Firestore, a duplicate counted again
DOCUMENTS_READ = "documents_read"  # distinct documents
RANGES = "ranges"
COUNT_QUERIES = "count_queries"
PREVIOUS_READS = "previous_reads"  # previous versions read to find moved rows
REJECTED = "rejected"
ROWS = "rows"  # rows planned to be written
ROWS_PER_DAY = "rows"  # per day: rows@YYYY-MM-DD
DEAD_LETTERED = "dead_lettered"
OUTSIDE_WINDOW = "outside_window"
LATE_EDIT_DAYS = "late_edit_days"
ROWS_STAGED = "rows_staged"
COMMIT_FAILED = "commit_failed"
REFUSED = "refused"
DAYS_REPLACED = "days_replaced"
ROWS_WRITTEN = "rows_written"
WRITTEN_PER_DAY = "written"  # per day: written@YYYY-MM-DD
#: Per reason: ``dead_letter_reason#["field", "reason kind"]`` (no value, see
#: ``dead_letters.reason_kind``), for the dry run's summary.
DEAD_LETTER_REASON = "dead_letter_reason"
#: Rows whose ``extra`` holds a field no column declares, for the summary's pointer to
#: ``firestore-to-bq schema drift``.
ROWS_WITH_UNDECLARED = "rows_with_undeclared"
#: Per undeclared field, ``undeclared_field#<digest>``: a field name is document
#: content (docs/guarantees.md: none in logs or output), so the counter carries a
#: digest of it, which lets the summary count the fields without naming them.
UNDECLARED_FIELD = "undeclared_field"
#: Fields counted per table and worker: enough to say "a few" or "many", and the
#: counters stay few whatever maps the app writes.
MAX_UNDECLARED_FIELDS = 20


def name(table: str, what: str, day: datetime.date | None = None) -> str:
    return f"{table}.{what}" if day is None else f"{table}.{what}@{day.isoformat()}"


def counter(table: str, what: str, day: datetime.date | None = None):
    """The Beam counter ``table.what`` (``@day`` when per day)."""
    return Metrics.counter(NAMESPACE, name(table, what, day))


def per_day(values: dict[str, int], table: str, what: str) -> dict[str, int]:
    """``{day: value}`` of the ``table.what@day`` counters in ``values``."""
    prefix = f"{table}.{what}@"
    return {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}


def reason_counter(table: str, field: str, kind: str):
    """The Beam counter of one dead-letter reason of ``table``."""
    return Metrics.counter(NAMESPACE, f"{table}.{DEAD_LETTER_REASON}#{json.dumps([field, kind])}")


def reasons(values: dict[str, int], table: str) -> list[tuple[str, str, int]]:
    """``(field, reason kind, count)`` of ``table``'s reason counters, commonest first."""
    prefix = f"{table}.{DEAD_LETTER_REASON}#"
    found = [(*json.loads(k[len(prefix) :]), v) for k, v in values.items() if k.startswith(prefix)]
    return sorted(found, key=lambda r: (-r[2], r[0], r[1]))


def field_counter(table: str, field: str):
    """The counter of one undeclared field of ``table``, named by a digest of the field."""
    digest = hashlib.blake2b(field.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    return Metrics.counter(NAMESPACE, f"{table}.{UNDECLARED_FIELD}#{digest}")


def undeclared_fields(values: dict[str, int], table: str) -> int:
    """How many distinct undeclared fields of ``table`` the run counted."""
    prefix = f"{table}.{UNDECLARED_FIELD}#"
    return sum(1 for k, v in values.items() if k.startswith(prefix) and v)


def committed(result) -> dict[str, int]:
    """Counter values by name, summed over steps: committed, or attempted where a runner
    reports no committed value (Beam's ``MetricResult.result``)."""
    totals: dict[str, int] = {}
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for found in query["counters"]:
        key = found.key.metric.name
        totals[key] = totals.get(key, 0) + int(found.result or 0)
    return totals
