"""What the read saw of one table, per day: the facts the run's plan is made from.

Conversion keeps one :class:`Tally` per table per bundle; tallies are summed
with a combiner, so counts travel as data (a few small records per bundle), the
same on every runner.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Tally:
    """Counts of one table's documents, by partition day (None: no usable day)."""

    read: int = 0
    rows: Counter = field(default_factory=Counter)  # converted rows per day
    bad: Counter = field(default_factory=Counter)  # dead letters per day (or None)
    edited: set = field(default_factory=set)  # days of documents written in the window

    def merge(self, other: Tally) -> Tally:
        self.read += other.read
        self.rows.update(other.rows)
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

    @property
    def rows(self) -> int:
        return sum(self.rows_per_day.values())


def plan_table(
    table: str,
    tally: Tally,
    required_days: Iterable[datetime.date],
) -> TablePlan:
    """Replace ``required_days`` plus every day holding an edited document.

    A document is written if its day is replaced; dead-lettered if it failed and
    its day is replaced or unknown (no run would ever write it); otherwise it is
    outside this run and its day keeps what an earlier run wrote.
    """
    required = set(required_days)
    late = {d for d in tally.edited if d is not None} - required
    days = required | late
    rows_per_day = {d: tally.rows.get(d, 0) for d in sorted(days)}
    dead = sum(n for d, n in tally.bad.items() if d is None or d in days)
    outside = sum(n for d, n in tally.rows.items() if d not in days) + sum(
        n for d, n in tally.bad.items() if d is not None and d not in days
    )
    return TablePlan(
        table=table,
        days=tuple(sorted(days)),
        late_days=tuple(sorted(late)),
        read=tally.read,
        rows_per_day=rows_per_day,
        dead_lettered=dead,
        outside_window=outside,
    )
