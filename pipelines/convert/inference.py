"""Which column type a field's sampled values call for, and why: ``schema suggest``'s rules.

Pure: a :class:`~pipelines.convert.field_stats.FieldStats` in, a :class:`Choice`
out, with the reason in words for the report. The rules lean towards a file a
sync runs with unedited: where the values disagree, the column is ``JSON``
(which takes any value) rather than a type that would dead-letter the minority.

- One kind of value: its type (geopoint → GEOGRAPHY, bytes → BYTES, reference →
  STRING). Integers → INT64; any double → FLOAT64.
- Strings: all ``YYYY-MM-DD`` → DATE; all ISO 8601 with an offset → TIMESTAMP
  (without an offset they stay STRING: TIMESTAMP would refuse them).
- Numbers in a field named like a time (``…At``, ``…Time``, ``…Date``, ``ts``):
  all within 2000..2100 as epoch milliseconds → TIMESTAMP ``epoch_millis``, as
  seconds → ``epoch_seconds``. Without the name they stay numbers.
- Maps whose keys recur (on average in half the maps or more, at most 60
  keys, most keys names rather than ids: numbers, UUIDs, auto-ids) → RECORD, each key typed by these
  rules; maps keyed by ids → JSON.
- Arrays: of one element type → REPEATED of it (of maps: REPEATED RECORD);
  arrays of arrays, arrays holding null, mixed or only empty arrays → JSON.
- Mixed kinds → JSON, except integers with doubles (FLOAT64) and timestamps with
  ISO strings (TIMESTAMP).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipelines.convert.field_stats import FieldStats
from pipelines.convert.table_spec import MAX_RECORD_DEPTH

#: A map is a RECORD when its keys are, on average, in at least this share of its maps.
RECORD_RECURRENCE = 0.5
#: More distinct keys than this: a map keyed by data, not by names.
MAX_RECORD_KEYS = 60
_TIMEISH = re.compile(r"(^|_)(at|time|date|timestamp|ts|on)$|time|date")
_IDLIKE = re.compile(
    r"^[0-9]+$|^[0-9a-f]{8}-[0-9a-f]{4}-|^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_-]{16,}$", re.I
)


@dataclass
class Choice:
    """A proposed column type for a field, and why."""

    type: str
    why: str
    mode: str = "NULLABLE"
    timestamp_source: str = ""
    #: For RECORD: (map key, its stats, its choice), in key order.
    fields: list[tuple[str, FieldStats, Choice]] = field(default_factory=list)


def snake(name: str) -> str:
    """A Firestore field name as a column name: ``heartRateAvg`` → ``heart_rate_avg``;
    characters BigQuery does not take become ``_``, a leading digit gets ``f_``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    text = re.sub(r"_+", "_", text) or "field"
    if text[0].isdigit():
        text = "f_" + text
    return text[:300]


def timeish(name: str) -> bool:
    """Whether a field's name says it holds a time (``startedAt``, ``ts``, ``birthDate``)."""
    return bool(_TIMEISH.search(snake(name)))


def choose(stats: FieldStats, name: str, depth: int = 1) -> Choice:
    """The column type for a field named ``name`` with these sampled values."""
    kinds = {k: n for k, n in stats.kinds.items() if k != "null"}
    if not kinds:
        return Choice("JSON", "only nulls seen: nothing to type it by, JSON takes any value")
    if "array" in kinds:
        if len(kinds) > 1:
            return _mixed(kinds)
        return _array(stats, name, depth)
    if set(kinds) == {"map"}:
        return _map(stats, name, depth)
    if set(kinds) <= {"integer", "double"}:
        return _number(stats, name)
    if set(kinds) == {"string"}:
        return _string(stats)
    if set(kinds) == {"timestamp", "string"} and stats.iso_with_offset == kinds["string"]:
        return Choice("TIMESTAMP", "timestamps, and ISO 8601 strings with an offset")
    if set(kinds) <= {"string", "reference"}:
        return Choice("STRING", "strings and document references (as their path)")
    single = {
        "timestamp": ("TIMESTAMP", "Firestore timestamps"),
        "boolean": ("BOOL", "booleans"),
        "geopoint": ("GEOGRAPHY", "geopoints, as WKT POINT(lng lat)"),
        "bytes": ("BYTES", "bytes"),
        "reference": ("STRING", "document references, as their path"),
    }
    if len(kinds) == 1 and next(iter(kinds)) in single:
        return Choice(*single[next(iter(kinds))])
    return _mixed(kinds)


def _mixed(kinds: dict[str, int]) -> Choice:
    seen = ", ".join(sorted(kinds))
    return Choice("JSON", f"mixed kinds ({seen}): JSON keeps every value, no dead letter")


def _number(stats: FieldStats, name: str) -> Choice:
    n = stats.non_null
    if timeish(name):
        if stats.epoch_millis == n:
            return Choice(
                "TIMESTAMP",
                "the name says time and every number is 2000..2100 in epoch milliseconds",
                timestamp_source="epoch_millis",
            )
        if stats.epoch_seconds == n:
            return Choice(
                "TIMESTAMP",
                "the name says time and every number is 2000..2100 in epoch seconds",
                timestamp_source="epoch_seconds",
            )
        note = "; the name says time but the numbers are not all epoch times of 2000..2100"
    elif stats.epoch_millis == n or stats.epoch_seconds == n:
        note = "; they look like epoch times, but the name does not say time"
    else:
        note = ""
    if stats.kinds["double"]:
        what = "doubles" if not stats.kinds["integer"] else "integers and doubles"
        return Choice("FLOAT64", what + note)
    return Choice("INT64", "integers" + note)


def _string(stats: FieldStats) -> Choice:
    n = stats.non_null
    if stats.dates == n:
        return Choice("DATE", "every string is a YYYY-MM-DD date")
    if stats.iso_with_offset == n:
        return Choice("TIMESTAMP", "every string is an ISO 8601 time with an offset")
    if stats.iso_without_offset and stats.iso_with_offset + stats.iso_without_offset == n:
        return Choice(
            "STRING", "ISO 8601 times, some without an offset (TIMESTAMP would refuse those)"
        )
    return Choice("STRING", "strings")


def record_keys_recur(stats: FieldStats) -> tuple[bool, str]:
    """Whether maps with these keys are records (named keys that recur) or data
    keyed by ids, and the evidence in words."""
    keys = stats.keys
    if not keys:
        return False, "only empty maps seen"
    recurrence = sum(k.present for k in keys.values()) / (len(keys) * max(stats.maps, 1))
    ids = sum(bool(_IDLIKE.match(key)) for key in keys)
    evidence = f"{len(keys)} distinct keys in {stats.maps} maps, each in {recurrence:.0%} of them"
    if ids * 2 > len(keys):
        return False, f"keys look like ids ({evidence})"
    if len(keys) > MAX_RECORD_KEYS or (stats.maps >= 3 and recurrence < RECORD_RECURRENCE):
        return False, f"keys vary from map to map ({evidence})"
    return True, f"keys recur ({evidence} on average)"


def _map(stats: FieldStats, name: str, depth: int) -> Choice:
    if depth >= MAX_RECORD_DEPTH:
        return Choice("JSON", f"maps nested deeper than {MAX_RECORD_DEPTH} levels")
    recur, evidence = record_keys_recur(stats)
    if not recur:
        return Choice("JSON", f"maps: {evidence}, kept whole as JSON")
    fields = [(key, sub, choose(sub, key, depth + 1)) for key, sub in sorted(stats.keys.items())]
    return Choice("RECORD", f"maps: {evidence}", fields=fields)


def _array(stats: FieldStats, name: str, depth: int) -> Choice:
    elements = stats.elements
    if stats.arrays_of_arrays:
        return Choice("JSON", "arrays of arrays: BigQuery has no nested arrays, kept as JSON")
    if elements is None or not elements.present:
        return Choice("JSON", "only empty arrays seen: nothing to type the elements by")
    if stats.arrays_with_null:
        return Choice("JSON", "arrays holding null (BigQuery arrays cannot), kept as JSON")
    inner = choose(elements, name, depth)
    if inner.type == "JSON":
        return Choice("JSON", f"arrays of {inner.why}")
    return Choice(
        inner.type,
        f"arrays of {inner.why}",
        mode="REPEATED",
        timestamp_source=inner.timestamp_source,
        fields=inner.fields,
    )


def describe_kinds(stats: FieldStats, documents: int) -> str:
    """``integer 118, null 2; in 120 of 120 documents, null 2%``."""
    share = stats.kinds["null"] / stats.present if stats.present else 0.0
    return f"{stats.kinds_text()}; in {stats.present} of {documents}, null {share:.0%}"


def choice_text(choice: Choice) -> str:
    """``REPEATED RECORD``, ``TIMESTAMP from epoch_millis``."""
    text = choice.type if choice.mode != "REPEATED" else f"REPEATED {choice.type}"
    return text + (f" from {choice.timestamp_source}" if choice.timestamp_source else "")


def field_entry(name: str, choice: Choice, description: str = "") -> dict[str, Any]:
    """A schema file's field object for ``choice`` (sub-fields are filled by the caller)."""
    entry: dict[str, Any] = {"name": name, "type": choice.type}
    if choice.mode != "NULLABLE":
        entry["mode"] = choice.mode
    if choice.timestamp_source:
        entry["timestamp_source"] = choice.timestamp_source
    if description:
        entry["description"] = description
    return entry
