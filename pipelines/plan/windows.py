"""Which days each table's run replaces, in which mode, and from which watermark.

Pure functions over what ``_sync_runs`` says of each table (:class:`TableState`),
so the nightly's catch-up rules are unit-tested without a server:

* with dates, every table gets exactly those days (full mode unless asked);
* without dates (the nightly), an incremental table's window runs from the day
  after the newest day it ever had replaced up to yesterday, capped by
  ``--max_catchup_days``; its change watermark is the snapshot of its last run
  that saw every change; the ``--verify_days`` before yesterday are drift-checked;
* a table with no successful run yet, whose partition cannot be range-queried,
  or which has a change field but no change watermark yet (only dated runs have
  replaced it, and they do not see every edit), gets a full run that replaces
  every day up to yesterday: the first run without dates after any history sees
  every edit;
* ``--mode reconcile`` (the weekly job) is the nightly with its drift check
  widened to every day from the table's first day (``first_days``) to
  yesterday: ``count()`` per day, one read per 1,000 documents, and only the
  days that differ are re-read (see :func:`reconcile_verify`).
* an intraday run (:func:`plan_intraday`) replaces no day as a matter of course:
  it upserts every change since the watermark up to today and drift-checks today
  and the ``--verify_days`` before it, so a day is replaced whole only when its
  count says rows are missing or extra.
* once an intraday run has written today's rows of a table, a later run that
  day that reads changes or the whole history (the nightly, reconcile, a full
  run without dates, a dated incremental run) treats today as an intraday run
  does (:func:`wrote_today`): it upserts changes up to today and drift-checks
  today too, so today stays as of its snapshot; a day it replaces is still
  complete only once it is over (``audit``).

:class:`RunPlan` is the result: one typed value the launcher hands to the
transforms, separate from the options it was derived from.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipelines.clock import ONE_DAY, day_range, midnight
from pipelines.convert.table_spec import TableSpec
from pipelines.refusals import CatchUpTooLong, IntradayRefused, backfill_command, sync_command

#: Edits are looked for from a little before the watermark: the app's clock
#: (which writes ``updated_at``) may run behind Firestore's. Re-reading a few
#: documents is harmless; every write is an upsert.
CLOCK_SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class TableState:
    """One table's history, as recorded in ``_sync_runs``."""

    table: str
    #: Newest day ever replaced by a successful commit of this table.
    newest_day: datetime.date | None = None
    #: Last successful run of this table, and its Firestore snapshot.
    last_success_run_id: str | None = None
    last_success_read_time: datetime.datetime | None = None
    #: Snapshot of the last successful run that saw every change up to it
    #: (an incremental or whole-history run): the change watermark.
    watermark: datetime.datetime | None = None
    #: Snapshot of the last successful intraday run. From today (UTC): today has
    #: rows, which later runs that day keep up to date too (:func:`wrote_today`).
    intraday_read_time: datetime.datetime | None = None
    #: Snapshot of the last successful run that left every day it answers for
    #: as of that snapshot (not a dated run): ``status``'s "fresh as of".
    fresh_read_time: datetime.datetime | None = None
    last_failure_run_id: str | None = None
    last_failure_at: datetime.datetime | None = None
    last_failure_error: str | None = None
    #: Rows the last successful run wrote (for a full run: the table's size), an
    #: estimate of what the next full run loads (see ``pipelines.plan.quotas``).
    last_rows: int | None = None
    #: Successful dated runs of the table (backfill chunks): (first day, last day,
    #: snapshot) each. Before its first watermark, the nightly starts from these
    #: when they cover the table from its first day (:func:`backfill_watermark`).
    dated_windows: tuple[tuple[datetime.date, datetime.date, datetime.datetime], ...] = ()


@dataclass(frozen=True)
class TableWindow:
    """What one table's run does."""

    table: str
    mode: str  # "incremental" or "full"
    start: datetime.date
    end: datetime.date  # inclusive; start > end is an empty window
    #: Documents whose change field is at or after this are read (incremental);
    #: set only for tables that declare a change field.
    watermark: datetime.datetime | None = None
    #: Full mode without dates: every day up to ``end`` that holds data is replaced.
    all_days: bool = False
    #: Days before the window whose counts are compared (the drift check).
    verify: tuple[datetime.date, ...] = ()
    #: Yesterday: late edits are written on days up to here; later days wait
    #: for the run whose window holds them, as a full rebuild leaves them out.
    #: Today once an intraday run has written today's rows (:func:`wrote_today`):
    #: the run then upserts today and ``verify`` ends with it.
    horizon: datetime.date | None = None
    #: ``--mode reconcile``: ``verify`` covers the table's whole history.
    reconcile: bool = False
    #: An intraday run: upserts up to today, declares no day complete.
    intraday: bool = False
    #: The change query runs on the partition field: a table without a change
    #: field whose new documents carry a partition value of about now.
    change_by_partition: bool = False
    #: The snapshot whose versions the table's rows hold (see :func:`located_at`):
    #: a document changed since is looked up there, so the delete of its old row
    #: names that day instead of scanning the table. None: the delete scans it.
    located_at: datetime.datetime | None = None
    #: The run was given its days (``--date``, ``--start_date``): it answers for
    #: those, so a success does not make the whole table fresh as of its snapshot.
    dated: bool = False

    @property
    def days(self) -> list[datetime.date]:
        return day_range(self.start, self.end)

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"

    @property
    def advances_watermark(self) -> bool:
        """Whether this run sees every change up to its snapshot: a whole-history
        read, or a change query from an earlier watermark (on the change field:
        a partition-field range sees new documents, not edits)."""
        if self.change_by_partition:
            return False
        return self.all_days or (self.incremental and self.watermark is not None)

    @property
    def makes_fresh(self) -> bool:
        """Whether a success leaves every day it answers for (up to yesterday,
        or today for an intraday run) as of its snapshot: ``status``'s "fresh
        as of", a run not given dates. A dated run brings its own days up to
        date, not the rest, even one that advances the watermark (a dated
        incremental run): a day after the newest replaced one that is not in
        its window lacks the documents written on it before the last run's
        snapshot (it was today then) until the nightly's window replaces it."""
        return self.intraday or not self.dated

    @property
    def empty(self) -> bool:
        """No day to replace (a caught-up nightly still reads changes and verifies)."""
        return self.start > self.end


@dataclass(frozen=True)
class RunPlan:
    """What one run does to each table, decided before anything is read."""

    windows: tuple[TableWindow, ...]
    #: The run's yesterday (UTC): no window, upsert or edit goes past it
    #: (an intraday run's upserts go up to the day after: today).
    yesterday: datetime.date
    intraday: bool = False

    def __iter__(self):
        return iter(self.windows)

    def window(self, table: str) -> TableWindow:
        for window in self.windows:
            if window.table == table:
                return window
        raise KeyError(f"no window planned for {table}")

    @property
    def start(self) -> datetime.date:
        return min(w.start for w in self.windows)

    @property
    def end(self) -> datetime.date:
        return max(w.end for w in self.windows)

    def describe(self) -> str:
        """The window for people: a backwards range reads as nothing to replace."""
        if self.intraday:
            return f"intraday: {self.yesterday + ONE_DAY} (UTC) up to the snapshot"
        return window_text(self.start, self.end)


def window_text(start: datetime.date, end: datetime.date) -> str:
    if start > end:
        return f"window: nothing to replace (up to date through {end})"
    return f"window {start}..{end}"


def change_query_field(spec: TableSpec, window: TableWindow) -> str | None:
    """The Firestore field a window's change query ranges over from its watermark:
    the change field, or for an intraday run of a table without one its partition
    field (new documents carry a value of about now); None: no change query."""
    if window.watermark is None:
        return None
    column = spec.partition_column if window.change_by_partition else spec.change_field
    return spec.column(column).source[0]


def located_at(spec: TableSpec, state: TableState) -> datetime.datetime | None:
    """The snapshot an incremental run can find a changed document's old row from.

    After a run that saw every change up to its snapshot (the watermark), each
    row of the table is its document's version at that snapshot; a later run
    finds a document changed since on its current day or, if it moved, on its
    day at that snapshot, so its delete names days instead of scanning the
    table (the DML cost item of docs/performance.md). When a later run that did
    not see every change (a dated run) replaced the table, rows may be of other
    versions: None, and the delete scans the table as before. A table without a
    change field is never seen whole between full runs (in-place edits are its
    documented blind spot); its last snapshot is used, which finds every move
    made since.
    """
    if state.last_success_read_time is None:
        return None
    if spec.change_field and state.watermark != state.last_success_read_time:
        return None
    return state.last_success_read_time


def wrote_today(state: TableState, today: datetime.date) -> bool:
    """Whether an intraday run has written the table's rows of ``today`` (UTC).

    A later run that reads changes must then bring today up to its snapshot too:
    upsert what changed through today and drift-check today (a hard delete since
    the last intraday run), and a table without a change field reads today's new
    documents by partition from that run's snapshot, as the next intraday run
    would (the count alone misses a delete and a create on the same day). A
    changed document now on today would otherwise lose
    the row an intraday run wrote there and not be written back, while the
    watermark moves past it and ``status`` calls the table fresh. Before the
    first intraday run of the day today has no rows and stays out, as ever.
    """
    recent = state.intraday_read_time
    return recent is not None and recent >= midnight(today)


def backfill_watermark(
    dated: Iterable[tuple[datetime.date, datetime.date, datetime.datetime]],
    first_day: datetime.date,
) -> tuple[datetime.datetime, datetime.date] | None:
    """The change watermark and first uncovered day that successful dated runs
    (backfill chunks) give a table that has no watermark yet, or None.

    The runs must cover every day from ``first_day`` (the table's oldest
    partition day in Firestore) without a gap; then every document on those days
    was written as of the snapshot of the run that covered its day, and any
    change since is after the oldest of those snapshots: the watermark. The
    first nightly reads the changes since it and replaces the days from the first
    uncovered one to yesterday: one night, not the history. A document changed
    after its chunk's snapshot, moved between chunks, or created on a covered day
    since, carries a change-field value after the watermark and is upserted, its
    old row deleted wherever it is. None (the nightly rebuilds the whole table,
    as before): no dated run, or none covers ``first_day``. What only a
    whole-collection read finds (documents with no usable partition value) is
    left to the scheduled full run, as after any incremental run.
    """
    chain = sorted(dated)
    covered_to = first_day - ONE_DAY
    snapshots = []
    for start, end, snapshot in chain:
        if start > covered_to + ONE_DAY:
            break  # a gap: the days after it are re-read by the nightly
        if end > covered_to:
            covered_to = end
            snapshots.append(snapshot)
        elif end >= first_day:  # inside the covered stretch already: it rewrote days
            snapshots.append(snapshot)
    if covered_to < first_day or not snapshots:
        return None
    return min(snapshots), covered_to + ONE_DAY


def plan_windows(
    specs: Iterable[TableSpec],
    states: Mapping[str, TableState],
    *,
    today: datetime.date,
    mode: str | None = None,
    dates: tuple[datetime.date, datetime.date] | None = None,
    max_catchup_days: int = 7,
    verify_days: int = 35,
    backfill_hint: str = "",
    first_days: Mapping[str, datetime.date] | None = None,
) -> RunPlan:
    """One :class:`TableWindow` per spec; raises :class:`CatchUpTooLong`.

    ``dates`` after yesterday are the caller's to refuse (see ``options.resolve``):
    today is a partial day. ``first_days``: each table's oldest day (in BigQuery
    or Firestore), which ``mode="reconcile"`` verifies from, and from which a
    table's backfill chunks must cover it to give it a watermark
    (:func:`backfill_watermark`)."""
    yesterday = today - ONE_DAY
    reconcile = mode == "reconcile"
    if reconcile:
        mode = "incremental"
    windows = []
    behind = []
    for spec in specs:
        state = states.get(spec.name) or TableState(spec.name)
        watermark = state.watermark - CLOCK_SKEW if state.watermark and spec.change_field else None
        # After intraday runs today, today is upserted and verified too (wrote_today);
        # a table without a change field reads today's new documents as they do.
        today_too = wrote_today(state, today)
        horizon = today if today_too else yesterday
        also = (today,) if today_too else ()
        by_partition = today_too and not spec.change_field
        if by_partition:
            watermark = state.intraday_read_time - CLOCK_SKEW
        if dates is not None:
            chosen = mode or "full"
            if chosen == "incremental" and spec.supports_incremental:
                windows.append(
                    TableWindow(
                        spec.name, chosen, *dates, watermark=watermark, verify=also,
                        horizon=horizon, change_by_partition=by_partition,
                        located_at=located_at(spec, state), dated=True,
                    )  # fmt: skip
                )
            else:
                windows.append(TableWindow(spec.name, "full", *dates, dated=True))
            continue
        start = state.newest_day + ONE_DAY if state.newest_day else None
        first = (first_days or {}).get(spec.name)  # unknown: no watermark from chunks
        if (
            spec.change_field
            and state.watermark is None
            and state.newest_day is not None
            and (mode or "incremental") != "full"
            and spec.supports_incremental
            and first is not None
        ):
            backfilled = backfill_watermark(state.dated_windows, first)
            if backfilled is not None:  # the chunks' snapshots stand for a watermark
                watermark, start = backfilled[0] - CLOCK_SKEW, backfilled[1]
        if (
            (mode or "incremental") == "full"
            or state.newest_day is None
            or not spec.supports_incremental
            or (spec.change_field and watermark is None)
        ):
            windows.append(
                TableWindow(spec.name, "full", yesterday, yesterday, all_days=True, horizon=horizon)
            )
            continue
        if (yesterday - start).days + 1 > max_catchup_days:
            behind.append((spec.name, start - ONE_DAY, start))
            continue
        window_days = set(day_range(start, yesterday))
        verify = tuple(
            day
            for day in (yesterday - ONE_DAY * i for i in range(verify_days - 1, -1, -1))
            if day not in window_days
        )
        if reconcile and first is not None:
            verify = reconcile_verify(first, yesterday, window_days)
        windows.append(
            TableWindow(
                spec.name,
                "incremental",
                start,
                yesterday,
                watermark,
                verify=verify + also,
                horizon=horizon,
                reconcile=reconcile,
                change_by_partition=by_partition,
                located_at=located_at(spec, state),
            )
        )
    if behind:
        first = min(start for _, _, start in behind)
        names = ", ".join(f"{t} (last replaced {d})" for t, d, _ in behind)
        tables = ",".join(t for t, _, _ in behind)
        backfill = backfill_command(first, yesterday, f"{backfill_hint}--collections {tables}")
        raise CatchUpTooLong(
            f"{names} more than {max_catchup_days} day(s) behind; backfill first: {backfill} "
            "(or raise --max_catchup_days)",
            instead=backfill,
        )
    return RunPlan(tuple(windows), yesterday)


def reconcile_verify(
    first: datetime.date, yesterday: datetime.date, window_days: Iterable[datetime.date]
) -> tuple[datetime.date, ...]:
    """Every day from ``first`` to ``yesterday`` outside the window: a reconcile
    counts each of them and re-reads the ones whose counts differ."""
    skip = set(window_days)
    return tuple(
        day
        for day in day_range(first, yesterday)
        if day not in skip
    )


def plan_intraday(
    specs: Iterable[TableSpec],
    states: Mapping[str, TableState],
    *,
    today: datetime.date,
    verify_days: int = 35,
    nightly_hint: str = "",
) -> RunPlan:
    """Windows of an intraday run: bring each table up to the snapshot, today included.

    Each table gets an empty window (no day replaced whole as a matter of course),
    a change query up to ``horizon`` = today, and the drift check of today and the
    ``verify_days`` before it: a day whose count differs (a hard delete, documents
    the change query cannot see) is replaced whole, like the nightly's drifted days.

    The change query starts from the watermark, or from the last intraday run's
    snapshot if that was today and is older (a nightly in between also wrote
    today's changes, see :func:`wrote_today`: starting there only re-reads
    them). A table without a change field is read by partition range from the
    last intraday run's snapshot (today), else from the start of today: its new
    documents carry a partition value of about now.
    Both less ``CLOCK_SKEW``. Raises :class:`IntradayRefused` for a table no
    run without dates has synced yet.
    """
    start_of_today = midnight(today)
    verify = tuple(today - ONE_DAY * i for i in range(max(verify_days, 0), -1, -1))
    windows, refused = [], []
    for spec in specs:
        state = states.get(spec.name) or TableState(spec.name)
        recent = state.intraday_read_time if wrote_today(state, today) else None
        if not spec.supports_incremental:
            refused.append(f"{spec.name} (its partition field cannot be range-queried)")
            continue
        if state.newest_day is None or (spec.change_field and state.watermark is None):
            refused.append(f"{spec.name} (no run without dates has synced it yet)")
            continue
        if spec.change_field:
            since = min(state.watermark, recent) if recent else state.watermark
            since -= CLOCK_SKEW
        else:
            since = recent - CLOCK_SKEW if recent else start_of_today
        windows.append(
            TableWindow(
                spec.name,
                "incremental",
                today,
                today - ONE_DAY,
                since,
                verify=verify,
                horizon=today,
                intraday=True,
                change_by_partition=not spec.change_field,
                located_at=located_at(spec, state),
            )
        )
    if refused:
        nightly = sync_command(nightly_hint)
        raise IntradayRefused(
            f"--intraday cannot start: {', '.join(refused)}; run the nightly first: {nightly}",
            instead=nightly,
        )
    return RunPlan(tuple(windows), today - ONE_DAY, intraday=True)
