"""Where a TIMESTAMP or DATE column's instant comes from (the ``timestamp_source`` key).

Apps store times three ways: Firestore timestamps (or ISO 8601 strings with an
offset), numbers counting from the Unix epoch (``Date.now()`` in JavaScript is
milliseconds), or not at all, relying on Firestore's own create time. The first
needs no declaration; the others are declared per column, because a number
alone does not say its unit and a wrong guess moves every row by a factor of a
thousand.

The encoding matters twice: converting a value into a row, and bounding a
Firestore range query on the partition or change field, which compares values
of the stored type only (a timestamp bound never matches a number). So range
bounds are encoded here too, and an epoch column is range-read like a
timestamp one. Firestore cannot filter on a document's create time: a table
partitioned by it is read whole every run.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

UTC = datetime.UTC
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)

EPOCH_MILLIS = "epoch_millis"
EPOCH_SECONDS = "epoch_seconds"
CREATE_TIME = "create_time"
#: The values ``timestamp_source`` takes, and what each reads.
SOURCES: dict[str, str] = {
    EPOCH_MILLIS: "a number of milliseconds since 1970-01-01 UTC (JavaScript's Date.now())",
    EPOCH_SECONDS: "a number of seconds since 1970-01-01 UTC (Unix time)",
    CREATE_TIME: "the document's Firestore create time (no field is read)",
}
#: Microseconds per unit of each epoch encoding.
_MICROS = {EPOCH_MILLIS: 1_000, EPOCH_SECONDS: 1_000_000}
_UNIT_WORDS = {EPOCH_MILLIS: "epoch milliseconds", EPOCH_SECONDS: "epoch seconds"}


def is_epoch(source: str) -> bool:
    return source in _MICROS


def from_epoch(value: Any, source: str) -> datetime.datetime:
    """The UTC instant ``value`` (an integer or a double) encodes; microseconds kept.

    Raises TypeError for a value that is not a number (a string of digits too:
    range queries on numbers would not match it) and ValueError for NaN,
    infinities and instants outside 0001..9999."""
    words = _UNIT_WORDS[source]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # Imported here: conversion imports this module (the names are conversion's).
        from pipelines.convert.conversion import _type_name

        raise TypeError(f"expected {words} (a number), got {_type_name(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{words} {value!r} is not a time")
    per_unit = _MICROS[source]
    micros = value * per_unit if isinstance(value, int) else round(value * per_unit)
    try:
        return EPOCH + datetime.timedelta(microseconds=micros)
    except OverflowError:
        raise ValueError(f"{words} {value!r} is outside 0001-01-01..9999-12-31") from None


def to_epoch(instant: datetime.datetime, source: str) -> int | float:
    """``instant`` in the column's unit, as a range query bound: an integer when it
    is a whole number of units (day boundaries always are), else the exact
    fraction as a double. Firestore compares integers and doubles as numbers."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    micros = (instant - EPOCH) // datetime.timedelta(microseconds=1)
    per_unit = _MICROS[source]
    return micros // per_unit if micros % per_unit == 0 else micros / per_unit


def query_value(source: str, instant: datetime.datetime) -> Any:
    """A range query's bound for a field of this encoding: the instant itself for
    Firestore timestamps (``source`` ""), the number for an epoch field."""
    return to_epoch(instant, source) if is_epoch(source) else instant


def instant_of(source: str, value: Any) -> datetime.datetime | None:
    """The instant a stored value holds if a range query on its field can match it:
    a Firestore timestamp (``source`` ""), or a number for an epoch field; else None."""
    if is_epoch(source):
        try:
            return from_epoch(value, source)
        except (TypeError, ValueError):
            return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None
