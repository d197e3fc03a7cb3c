"""The sync's calendar: UTC days, and the one spelling of each time constant they share.

A table's partitions are UTC days, and a run's window, its drift check, its
change queries and ``status`` all count in them. The planners, the options,
the conversion and ``status`` each kept their own ``UTC``, ``ONE_DAY`` and
"midnight of a day"; one home keeps them from drifting apart. Beam-free, and
shipped to the workers with the rest of ``pipelines``.
"""

from __future__ import annotations

import datetime

UTC = datetime.UTC
ONE_DAY = datetime.timedelta(days=1)


def midnight(day: datetime.date) -> datetime.datetime:
    """The moment ``day`` starts, in UTC: where its partition's documents begin."""
    return datetime.datetime.combine(day, datetime.time(), UTC)


def day_bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """``[start, end)`` of ``day`` in UTC: the times a document on that day holds."""
    start = midnight(day)
    return start, start + ONE_DAY


def day_range(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    """Every day from ``first`` to ``last``, inclusive (none when ``last`` is earlier)."""
    return [first + ONE_DAY * i for i in range((last - first).days + 1)]
