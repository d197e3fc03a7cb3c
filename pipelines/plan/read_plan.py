"""What an incremental run reads of one table: pure decisions, tested without a server.

The documents a run must see are those on the days it replaces and those
changed since the watermark. The change query finds the second kind (and most
of the first: a document created after the watermark was changed after it);
range queries on the partition field fill in the rest, and a ``count()``
aggregation (one read per 1,000 documents) decides whether a stretch of a day
is already covered by the change query, so a nightly reads each document once.

The drift check compares Firestore's count of each verified day with what
BigQuery will hold after this run's upserts; a day that differs (a hard delete,
a document that left the day without a change field to say so) is re-read
whole and replaced. Changed documents' old rows are looked up in BigQuery only
on the verified days whose count leaves room for one (``plan_incremental``), so
the lookup scans the days the changes touched, not the whole window. What that
cannot see, beyond what the counts never see: a write that does not set the
change field bringing a document onto a day that a changed document left the
same night; the two cancel out and that day is re-read one run late, when the
move's old row is gone and the counts differ (docs/guarantees.md).
"""

from __future__ import annotations

import bisect
import datetime
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pipelines.clock import day_bounds

#: Documents one range query should return before it is worth splitting further.
DOCS_PER_SLICE = 2_000


@dataclass(frozen=True)
class FieldRange:
    """Documents of ``table`` with ``start <= field < end`` (None: open end)."""

    table: str
    field: str
    start: datetime.datetime | None
    end: datetime.datetime | None
    #: The change query: its documents are upserted wherever their day is.
    changed: bool = False


#: BigQuery on-demand bills a query at least 10 MB for each table it references
#: (https://cloud.google.com/bigquery/pricing#on_demand_pricing); 10^6-byte MB,
#: the smaller reading.
MIN_BILLED_BYTES = 10_000_000
#: BigQuery's size of a DATE or TIMESTAMP value, and of a STRING beyond its UTF-8
#: bytes (https://cloud.google.com/bigquery/pricing#data-size-calculation).
FIXED_BYTES = 8
STRING_OVERHEAD = 2


def old_row_days(
    verify: Iterable[datetime.date],
    current: Iterable[datetime.date],
    table_rows: int,
    paths: Sequence[str],
) -> tuple[datetime.date, ...]:
    """The days to look up changed documents' rows in BigQuery, so that only the
    rest need their previous version read from Firestore (one read each).

    Always ``verify``, the verified days the drift check must look at (those
    whose count leaves room for a changed document's row): it needs those rows'
    count, so that query is paid anyway. Also the changed documents' days now, where most old
    rows are (an edit seldom moves a document), when the table's
    ``_document_path`` and partition column, all of its rows, fit under
    BigQuery's 10 MB floor: that query is billed the floor whatever it scans,
    so looking there costs nothing and each document found is a read saved.
    Above the floor those days are left to the Firestore reads: one partition's
    columns of a large table cost more to scan than a few reads.
    """
    days = set(verify)
    mean_path = sum(len(p.encode()) for p in paths) / len(paths) if paths else 0
    if table_rows * (FIXED_BYTES + STRING_OVERHEAD + mean_path) <= MIN_BILLED_BYTES:
        days |= set(current)
    return tuple(sorted(days))


@dataclass(frozen=True)
class IncrementalPlan:
    """One table's incremental run, decided before the window is read."""

    table: str
    days: tuple[datetime.date, ...]  # replaced: the window and drifted days
    drift_days: tuple[datetime.date, ...] = ()
    reads: tuple[FieldRange, ...] = ()
    count_queries: int = 0  # count() aggregations run
    covered_days: tuple[datetime.date, ...] = field(default=())  # no range read needed
    #: The ``[lo, hi)`` partition ranges counted, in the order asked (``counts`` of them);
    #: the benchmark replays exactly these.
    count_spans: tuple[tuple[datetime.datetime, datetime.datetime], ...] = ()
    #: Changed documents whose row BigQuery holds on the days looked at
    #: (:func:`old_row_days`), and that day: their old row is known without
    #: reading their previous version.
    rows_found: Mapping[str, datetime.date] = field(default_factory=dict, compare=False)
    #: The days that lookup scanned (``_document_path`` and the partition column).
    lookup_days: tuple[datetime.date, ...] = ()


def time_slices(
    start: datetime.datetime, end: datetime.datetime, parts: int
) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """``[start, end)`` cut into ``parts`` equal, adjacent slices (whole microseconds)."""
    parts = max(1, parts)
    step = (end - start) / parts
    cuts = sorted({start + step * i for i in range(parts)} | {end})
    return list(zip(cuts, cuts[1:], strict=False))


def slices_for(documents: int, parts: int) -> int:
    """Time slices for a range holding ``documents``: one per ``DOCS_PER_SLICE``,
    at least one, at most ``parts`` (``--num_splits``)."""
    return max(1, min(parts, math.ceil(documents / DOCS_PER_SLICE)))


def change_ranges(
    table: str,
    field_name: str,
    watermark: datetime.datetime,
    read_time: datetime.datetime,
    parts: int,
) -> list[FieldRange]:
    """The change query ``field >= watermark``, split by time for parallel reads.

    The last range is open: a value after the snapshot (a clock ahead of
    Firestore's) is still a change.
    """
    if watermark >= read_time or parts <= 1:
        return [FieldRange(table, field_name, watermark, None, changed=True)]
    slices = time_slices(watermark, read_time, parts)
    ranges = [FieldRange(table, field_name, lo, hi, changed=True) for lo, hi in slices]
    last = ranges[-1]
    ranges[-1] = FieldRange(table, field_name, last.start, None, changed=True)
    return ranges


def _count_between(
    sorted_times: Sequence[datetime.datetime], lo: datetime.datetime, hi: datetime.datetime
) -> int:
    return bisect.bisect_left(sorted_times, hi) - bisect.bisect_left(sorted_times, lo)


def plan_incremental(
    table: str,
    partition_field: str,
    window: Iterable[datetime.date],
    verify: Iterable[datetime.date],
    watermark: datetime.datetime | None,
    changed_times: Iterable[datetime.datetime],
    count_firestore: Callable[
        [Sequence[tuple[datetime.datetime, datetime.datetime]]], Sequence[int]
    ],
    bigquery_rows: Callable[[Sequence[datetime.date]], Mapping[datetime.date, int]],
    changed_rows_before: Callable[[Sequence[datetime.date]], Mapping[datetime.date, int]],
    parts: int = 8,
    lettered: Callable[[Sequence[datetime.date]], Collection[datetime.date]] | None = None,
) -> IncrementalPlan:
    """Decide the range reads and the drifted days of one table.

    ``changed_times``: partition values of the documents the change query
    returned (timestamps only: a range query matches nothing else).
    ``count_firestore(ranges)``: for each ``(lo, hi)``, the documents with
    ``lo <= partition < hi`` at the snapshot. ``bigquery_rows(days)``: rows
    BigQuery holds on those days now; ``changed_rows_before(days)``: how many
    of them belong to changed documents (they are about to move or be rewritten),
    asked only for the verified days whose count leaves room for one.
    ``lettered(days)``: the days on which a recent run dead-lettered a document
    of this table. Such a day is re-read whatever its count says: Firestore counts
    a dead-lettered document and BigQuery holds no row for it, so a hard delete on
    the same day would make the counts agree while the deleted row stays
    (found by tests/unit/plan/test_sequence_model.py).
    """
    times = sorted(changed_times)
    window_days = sorted(set(window))
    verify_days = sorted(set(verify) - set(window_days))
    # Every count this plan needs, asked at once (the caller may run them in parallel).
    splits = {
        day: max(day_bounds(day)[0], watermark)
        for day in window_days
        if watermark is not None and watermark < day_bounds(day)[1]
    }
    ranges = [(splits[day], day_bounds(day)[1]) for day in window_days if day in splits]
    ranges += [day_bounds(day) for day in verify_days]
    counted = dict(zip(ranges, count_firestore(ranges), strict=True)) if ranges else {}

    spans: list[tuple[datetime.datetime, datetime.datetime]] = []
    covered = []
    for day in window_days:
        lo, hi = day_bounds(day)
        split = splits.get(day)
        if split is None:
            spans.append((lo, hi))
        elif counted[(split, hi)] != _count_between(times, split, hi):
            spans.append((lo, hi))
        elif split > lo:
            spans.append((lo, split))
        else:
            covered.append(day)

    drift = []
    if verify_days:
        held = bigquery_rows(verify_days)
        # What BigQuery holds plus the changed documents now on the day, less
        # Firestore's count: each changed document whose row is on the day adds
        # one (its row is about to move or be rewritten), and so does a hard
        # delete. Only a day over by one or more can hold such a row, so only
        # those days are looked up (``changed_rows_before``), not every verified day.
        excess = {}
        for day in verify_days:
            lo, hi = day_bounds(day)
            excess[day] = held.get(day, 0) + _count_between(times, lo, hi) - counted[(lo, hi)]
        leaving = changed_rows_before([day for day in verify_days if excess[day] > 0])
        suspect = set(lettered(verify_days)) if lettered else set()
        for day in verify_days:
            if excess[day] != leaving.get(day, 0) or day in suspect:
                drift.append(day)
                spans.append(day_bounds(day))
    # Size each read from what it will return: Firestore bills a read even for
    # a query that returns nothing, so a small span is one query, not --num_splits.
    unknown = [span for span in spans if span not in counted]
    counted.update(zip(unknown, count_firestore(unknown), strict=True) if unknown else ())
    counts = len(ranges) + len(unknown)
    reads = [
        FieldRange(table, partition_field, a, b)
        for lo, hi in sorted(spans)
        for a, b in time_slices(lo, hi, slices_for(counted[(lo, hi)], parts))
    ]
    return IncrementalPlan(
        table=table,
        days=tuple(sorted(set(window_days) | set(drift))),
        drift_days=tuple(drift),
        reads=tuple(reads),
        count_queries=counts,
        covered_days=tuple(covered),
        count_spans=tuple(ranges) + tuple(unknown),
    )
