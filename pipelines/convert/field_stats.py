"""What a sample of documents holds, field by field: the facts ``schema suggest`` decides from.

Pure: documents in, counts out. Each field (and each key of its maps, and of the
maps inside its arrays) gets the Firestore value kinds seen with their counts,
how many documents hold it, and a few facts about its values that a type choice
needs (numbers in an epoch range, strings that parse as ISO 8601, e-mail-like
strings). Values themselves are not kept: the report may be pasted anywhere.
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.convert.conversion import type_name

#: Epoch numbers between 2000-01-01 and 2100-01-01, in seconds and milliseconds.
EPOCH_SECONDS_RANGE = (946_684_800, 4_102_444_800)
EPOCH_MILLIS_RANGE = (946_684_800_000, 4_102_444_800_000)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{6,18}[0-9]$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class FieldStats:
    """One field (or map key) over the sample. ``present``: values seen (nulls
    included); ``kinds``: Firestore kinds of those values (``null`` too)."""

    present: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    #: Strings: how many parse as ISO 8601 with an offset, as dates, as e-mail, as phone.
    iso_with_offset: int = 0
    iso_without_offset: int = 0
    dates: int = 0
    emails: int = 0
    phones: int = 0
    #: Strings with a space and longer than 40 characters: free text.
    long_text: int = 0
    #: Numbers inside the epoch-seconds and epoch-milliseconds ranges; doubles with a fraction.
    epoch_seconds: int = 0
    epoch_millis: int = 0
    fractional: int = 0
    #: Timestamps (or parsed strings) outside BigQuery's partitionable days.
    unpartitionable: int = 0
    #: Maps seen here: their keys, as fields of their own.
    keys: dict[str, FieldStats] = field(default_factory=dict)
    maps: int = 0
    #: Arrays seen here: how many, their elements' stats, arrays holding a null or an array.
    arrays: int = 0
    elements: FieldStats | None = None
    arrays_with_null: int = 0
    arrays_of_arrays: int = 0

    @property
    def non_null(self) -> int:
        return self.present - self.kinds["null"]

    def add(self, value: Any) -> None:
        self.present += 1
        kind = type_name(value)
        self.kinds[kind] += 1
        if kind == "string":
            self._string(value)
        elif kind in ("integer", "double"):
            self._number(value)
        elif kind == "timestamp":
            self._day(value)
        elif kind == "map":
            self.maps += 1
            for key, item in value.items():
                self.keys.setdefault(str(key), FieldStats()).add(item)
        elif kind == "array":
            self.arrays += 1
            if self.elements is None:
                self.elements = FieldStats()
            for item in value:
                if item is None:
                    self.arrays_with_null += 1
                elif isinstance(item, (list, tuple)):
                    self.arrays_of_arrays += 1
                self.elements.add(item)

    def _string(self, value: str) -> None:
        text = value.strip()
        if _DATE.match(text):
            self.dates += 1
        elif len(text) >= 16 and text[4:5] == "-" and "T" in text[8:12]:
            try:
                parsed = datetime.datetime.fromisoformat(text)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is not None:
                self.iso_with_offset += 1
                self._day(parsed)
            elif parsed is not None:
                self.iso_without_offset += 1
        if _EMAIL.match(text):
            self.emails += 1
        elif _PHONE.match(text) and sum(c.isdigit() for c in text) >= 7:
            self.phones += 1
        if len(text) > 40 and " " in text:
            self.long_text += 1

    def _number(self, value: float) -> None:
        if isinstance(value, float) and value != value.__trunc__():
            self.fractional += 1
        if EPOCH_SECONDS_RANGE[0] <= value < EPOCH_SECONDS_RANGE[1]:
            self.epoch_seconds += 1
        if EPOCH_MILLIS_RANGE[0] <= value < EPOCH_MILLIS_RANGE[1]:
            self.epoch_millis += 1

    def _day(self, value: datetime.datetime) -> None:
        try:
            day = value.astimezone(datetime.UTC).date().isoformat()
        except (OverflowError, ValueError):
            day = "0000"
        if not "1960-01-01" <= day <= "2159-12-31":
            self.unpartitionable += 1

    def kinds_text(self) -> str:
        """``integer 118, null 2`` (commonest first)."""
        return ", ".join(f"{kind} {n}" for kind, n in self.kinds.most_common())


def collect(documents: Iterable[Mapping[str, Any]]) -> tuple[int, dict[str, FieldStats]]:
    """The number of documents and each top-level field's stats, in first-seen order."""
    count = 0
    fields: dict[str, FieldStats] = {}
    for data in documents:
        count += 1
        for key, value in data.items():
            fields.setdefault(str(key), FieldStats()).add(value)
    return count, fields
