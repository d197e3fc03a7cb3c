"""What the read saw of one table, per day: the facts the run's plan is made from.

Conversion keeps one :class:`Tally` per table per bundle; tallies are summed
with a combiner, so counts travel as data (a few small records per bundle), the
same on every runner.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from pipelines.plan.read_plan import IncrementalPlan
from pipelines.plan.windows import TableWindow
from pipelines.state.dead_letters import Answered, top_reasons


@dataclass
class Tally:
    """Counts of one table's documents, by partition day (None: no usable day)."""

    read: int = 0  # distinct documents
    returned: int = 0  # documents Firestore returned (a duplicate counts again)
    rows: Counter = field(default_factory=Counter)  # converted rows per day
    changed: Counter = field(default_factory=Counter)  # rows of changed documents per day
    bad: Counter = field(default_factory=Counter)  # dead letters per day (or None)
    edited: set = field(default_factory=set)  # days of documents written in the window
    #: Days changed documents were on at the snapshot the table's rows hold
    #: (``TableWindow.located_at``), and the previous versions read to know them.
    previous: set = field(default_factory=set)
    previous_reads: int = 0
    #: Dead letters by ``(day, field, reason kind)``: declared field names and
    #: ``dead_letters.reason_kind``, never a value.
    reasons: Counter = field(default_factory=Counter)

    def merge(self, other: Tally) -> Tally:
        self.reasons.update(other.reasons)
        self.previous |= other.previous
        self.previous_reads += other.previous_reads
        self.read += other.read
        self.returned += other.returned
        self.rows.update(other.rows)
        self.changed.update(other.changed)
        self.bad.update(other.bad)
        self.edited |= other.edited
        return self


def add_tallies(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total


@dataclass(frozen=True)
class TablePlan:
    """The days a run replaces in one table, and what that means for each document."""

    table: str
    days: tuple[datetime.date, ...]
    late_days: tuple[datetime.date, ...]
    read: int
    rows_per_day: dict  # rows to be written, per replaced day (0 for emptied days)
    dead_lettered: int
    outside_window: int
    mode: str = "full"
    returned: int = 0
    #: Rows of changed documents written on days not replaced (upserts).
    late_rows: int = 0
    drift_days: tuple[datetime.date, ...] = ()
    #: Full rebuild: every day up to here is replaced.
    through: datetime.date | None = None
    #: Incremental: every staged row up to here is written.
    upsert_through: datetime.date | None = None
    count_queries: int = 0
    #: Incremental: the only days a staged or dead-lettered document can have an
    #: old row on (their days now, and before they changed); the delete of old
    #: rows names them. None: it scans the table (no located snapshot).
    located_days: tuple[datetime.date, ...] | None = None
    #: The commonest ``(field, reason kind, count)`` of the dead letters counted
    #: in ``dead_lettered`` (``dead_letters.top_reasons``).
    dead_letter_reasons: tuple[tuple[str, str, int], ...] = ()
    #: Incremental: the days the drift check verified by count, and those on which
    #: it looked up the changed documents' rows (``read_plan.old_row_days``).
    verified_days: tuple[datetime.date, ...] = ()
    lookup_days: tuple[datetime.date, ...] = ()
    previous_reads: int = 0

    @property
    def rows(self) -> int:
        return sum(self.rows_per_day.values())

    @property
    def answered(self) -> Answered:
        """The dead letters this run reports for the table."""
        return Answered(self.table, self.days, every=self.incremental)

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"


def plan_table(
    table: str,
    tally: Tally,
    required_days: Iterable[datetime.date],
    horizon: datetime.date | None = None,
) -> TablePlan:
    """Replace ``required_days`` plus every day holding an edited document.

    ``horizon`` (yesterday): an edited document's day after it is left to the
    run that replaces that day once it is over, as a full rebuild would.

    A document is written if its day is replaced; dead-lettered if it failed and
    its day is replaced or unknown (no run would ever write it); otherwise it is
    outside this run and its day keeps what an earlier run wrote.
    """
    required = set(required_days)
    late = {d for d in tally.edited if d is not None and (horizon is None or d <= horizon)}
    late -= required
    return _plan(table, tally, required | late, tuple(sorted(late)))


def plan_full_rebuild(
    table: str, tally: Tally, through: datetime.date, last: datetime.date | None = None
) -> TablePlan:
    """Replace every day up to ``through``: the whole table as the snapshot has it.

    ``last``: the newest complete day (yesterday), replaced even when empty so the
    run records it; ``through`` may be today after intraday runs wrote today's
    rows (``windows.wrote_today``), a day that is not complete yet."""
    days = {d for d in (*tally.rows, *tally.bad) if d is not None and d <= through}
    plan = _plan(table, tally, days | {through, last or through}, ())
    return replace(plan, through=through)


def plan_incremental_table(
    table: str,
    tally: Tally,
    days: Iterable[datetime.date],
    drift_days: Iterable[datetime.date],
    upsert_through: datetime.date,
    count_queries: int = 0,
    located: bool = False,
) -> TablePlan:
    """Replace ``days``; upsert every changed document up to ``upsert_through``.

    Everything an incremental run reads is answered for: a document is written
    (on a replaced day, or upserted), dead-lettered, or changed onto a day past
    ``upsert_through`` (outside: its day's own run will write it).

    ``located``: the tally's ``previous`` days are known (its window has a
    ``located_at``), so a document's old row can only be on its day now or on
    one of those: the plan's ``located_days``.
    """
    replaced = set(days)
    late_rows = sum(
        n for d, n in tally.changed.items() if d not in replaced and d <= upsert_through
    )
    outside = sum(n for d, n in tally.rows.items() if d not in replaced) - late_rows
    return TablePlan(
        table=table,
        days=tuple(sorted(replaced)),
        late_days=(),
        read=tally.read,
        returned=tally.returned,
        rows_per_day={d: tally.rows.get(d, 0) for d in sorted(replaced)},
        dead_lettered=sum(tally.bad.values()),  # Answered(every=True): all of them
        outside_window=outside,
        mode="incremental",
        late_rows=late_rows,
        drift_days=tuple(sorted(drift_days)),
        upsert_through=upsert_through,
        count_queries=count_queries,
        located_days=(
            tuple(sorted({d for d in (*tally.rows, *tally.bad, *tally.previous) if d is not None}))
            if located
            else None
        ),
        previous_reads=tally.previous_reads,
        dead_letter_reasons=top_reasons(tally.reasons, Answered(table, every=True)),
    )


def _plan(
    table: str, tally: Tally, days: set[datetime.date], late: tuple[datetime.date, ...]
) -> TablePlan:
    rows_per_day = {d: tally.rows.get(d, 0) for d in sorted(days)}
    answered = Answered(table, tuple(sorted(days)))
    dead = sum(n for d, n in tally.bad.items() if answered.covers(d))
    outside = sum(n for d, n in tally.rows.items() if d not in days) + sum(
        n for d, n in tally.bad.items() if not answered.covers(d)
    )
    return TablePlan(
        table=table,
        days=tuple(sorted(days)),
        late_days=late,
        read=tally.read,
        returned=tally.returned,
        rows_per_day=rows_per_day,
        dead_lettered=dead,
        outside_window=outside,
        dead_letter_reasons=top_reasons(tally.reasons, answered),
    )


def table_days(
    window: TableWindow,
    tally: Tally,
    read_plan: IncrementalPlan | None,
    required_days: Iterable[datetime.date],
    yesterday: datetime.date | None,
) -> TablePlan:
    """Which days this table replaces tonight, and what becomes of each document read:
    the one answer, from the table's window and what the read saw.

    Incremental: the days its read plan chose (the window and the drifted days),
    plus an upsert of every changed document up to the window's horizon; with a
    located snapshot, the old rows the drift query found are on known days.
    Full without dates: every day up to the horizon. Full with dates: the
    ``required_days`` (the window and its look-back) and every day an edited
    document is on, up to ``yesterday``.
    """
    if window.incremental:
        assert read_plan is not None, f"{window.table}: an incremental window has a read plan"
        located = window.located_at is not None
        if located:  # old rows the drift query found
            tally.previous |= set(read_plan.rows_found.values())
        plan = plan_incremental_table(
            window.table,
            tally,
            read_plan.days,
            read_plan.drift_days,
            window.horizon or window.end,
            read_plan.count_queries,
            located=located,
        )
        return replace(plan, verified_days=tuple(window.verify), lookup_days=read_plan.lookup_days)
    if window.all_days:
        return plan_full_rebuild(window.table, tally, window.horizon or window.end, window.end)
    return plan_table(window.table, tally, required_days, yesterday)

