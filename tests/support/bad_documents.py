"""A corpus of malformed and hostile Firestore documents, with what the sync must do with each.

Every entry is a :class:`BadDoc`: a document path under one of the five shipped
collections, its data, and the expected outcome:

* ``("dead", field)``: the document cannot become a row; it must land in
  ``_dead_letters`` with ``field`` named as the offender.
* ``("written", None)``: hostile but valid; it must be written as a row.

``check`` optionally lists column values the written row must hold, in the
JSON-ready form :func:`pipelines.convert.conversion.document_to_row` produces (RFC 3339
timestamps, ``"NaN"`` for a NaN double, parsed JSON for JSON columns).

Every partition value that should be valid falls inside the fixed window
:data:`DAYS` (2026-11-01..2026-11-05), so a sync over that window must account
for every document as written or dead-lettered, never as outside the window.

Values that need a Firestore client (document references) are written as
:class:`Ref` and turned into real references by :func:`materialize`. This module
imports nothing heavier than the Firestore types, so unit tests stay fast.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.cloud.firestore_v1 import GeoPoint

from tests.support import documents
from tests.support.documents import at

UTC = datetime.UTC
DAYS = ("2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05")
START, END = DAYS[0], DAYS[-1]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Firestore caps a document at 1 MiB (1,048,576 bytes) including field names;
#: this leaves room for the rest of the document.
BIG_STRING_CHARS = 1_000_000 - 2_000
#: Firestore accepts maps (or arrays) nested this deep inside a top-level field, not one more.
MAX_FIRESTORE_NESTING = 20

#: Every character class that tends to break text handling: NUL and other C0
#: controls, DEL, an ANSI escape, zero-width and bidi controls, a BOM, CR/LF/TAB.
CONTROL_CHARS = "a\x00b\x01\x07\x08\x0b\x0c\x1b[31mred\x1b[0m\x7f\u200b\u202e\u2066\ufeff\r\n\tend"
UNICODE_TEXT = "Ünïcödé 日本語 العربية עברית ελληνικά 한국어 — “quotes” ‘single’ … ﬁ"
EMOJI_TEXT = "😀 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 👍🏽 🧠 \U0001f9ff"
SQL_TEXT = "'; DROP TABLE tasks; -- \"); DELETE FROM x WHERE TRUE; -- `x`"


@dataclass(frozen=True)
class Ref:
    """A DocumentReference to ``path``, made real by :func:`materialize`."""

    path: str


@dataclass(frozen=True)
class BadDoc:
    path: str
    data: dict[str, Any]
    expect: tuple[str, str | None]
    check: Mapping[str, Any] = field(default_factory=dict)

    @property
    def collection(self) -> str:
        return self.path.split("/")[-2]

    @property
    def dead(self) -> bool:
        return self.expect[0] == "dead"

    @property
    def expected_field(self) -> str | None:
        return self.expect[1]


def nested(levels: int, leaf: Any = "leaf") -> dict[str, Any]:
    """``{"l0": {"l1": … {"l<levels-1>": leaf}}}``: ``levels`` maps deep."""
    value: Any = leaf
    for i in reversed(range(levels)):
        value = {f"l{i}": value}
    return value


def materialize(value: Any, client: Any) -> Any:
    """``value`` with every :class:`Ref` replaced by ``client.document(path)``."""
    if isinstance(value, Ref):
        return client.document(value.path)
    if isinstance(value, dict):
        return {k: materialize(v, client) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v, client) for v in value]
    return value


# Valid documents (tests/support/documents.py), one per collection and day of the window; each
# corpus entry breaks (or stresses) one thing.


def interaction(day: str = DAYS[0], hour: int = 12, **fields: Any) -> dict[str, Any]:
    return documents.interaction(day, hour, **fields)


def task(day: str = DAYS[1], hour: int = 12, **fields: Any) -> dict[str, Any]:
    return documents.task(day, hour, **fields)


def memory(day: str = DAYS[2], hour: int = 12, **fields: Any) -> dict[str, Any]:
    return documents.memory(day, hour, **fields)


def project(day: str = DAYS[3], hour: int = 12, **fields: Any) -> dict[str, Any]:
    return documents.project(day, hour, **fields)


def routine(day: str = DAYS[4], hour: int = 12, **fields: Any) -> dict[str, Any]:
    return documents.routine(day, hour, **fields)


def _without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


U = "users/mallory"
HOSTILE_FIELD_NAMES = {
    "a.b": 1,
    "with space": 2,
    "back`tick": 3,
    "`; DROP TABLE x; --": 4,
    "tab\tname": 5,
    "emoji👋": 6,
}
MIXED_ARRAY = [1, "two", 3.5, True, None, {"k": ["v"]}, b"\x00\xff"]

CORPUS: list[BadDoc] = [
    # ---------------------------------------------------------------- interactions
    BadDoc(f"{U}/interactions/string_in_int64", interaction(tokens_in="many"),
           ("dead", "tokens_in")),
    BadDoc(f"{U}/interactions/map_in_string", interaction(message_in={"text": "hi", "n": 1}),
           ("dead", "message_in")),
    BadDoc(f"{U}/interactions/nan_in_int64", interaction(tokens_in=math.nan),
           ("dead", "tokens_in")),
    BadDoc(f"{U}/interactions/inf_in_int64", interaction(tokens_out=math.inf),
           ("dead", "tokens_out")),
    BadDoc(f"{U}/interactions/neg_inf_in_int64", interaction(duration_ms=-math.inf),
           ("dead", "duration_ms")),
    BadDoc(f"{U}/interactions/geopoint_in_int64", interaction(duration_ms=GeoPoint(1.0, 2.0)),
           ("dead", "duration_ms")),
    BadDoc(f"{U}/interactions/bytes_in_string", interaction(language=b"en"),
           ("dead", "language")),
    BadDoc(f"{U}/interactions/partition_after_9999",
           interaction(timestamp="10000-01-01T00:00:00Z"), ("dead", "timestamp")),
    BadDoc(f"{U}/interactions/partition_without_offset",
           interaction(timestamp="2026-11-02T10:00:00"), ("dead", "timestamp")),
    BadDoc(f"{U}/interactions/missing_partition", _without(interaction(), "timestamp"),
           ("dead", "timestamp")),
    BadDoc(f"{U}/interactions/id_disagrees_with_path",
           interaction(interaction_id="someone_else"), ("dead", "interaction_id")),
    BadDoc(f"{U}/interactions/int64_extremes",
           interaction(tokens_in=INT64_MAX, tokens_out=INT64_MIN, duration_ms=0),
           ("written", None),
           {"tokens_in": INT64_MAX, "tokens_out": INT64_MIN, "duration_ms": 0}),
    BadDoc(f"{U}/interactions/sql_in_values",
           interaction(message_in=SQL_TEXT, intent="x' OR '1'='1"), ("written", None),
           {"message_in": SQL_TEXT, "intent": "x' OR '1'='1"}),
    BadDoc(f"{U}/interactions/unknown_fields",
           interaction(client={"os": "ios", "build": 17}, experiment=True),
           ("written", None),
           {"extra": {"client": {"os": "ios", "build": 17}, "experiment": True}}),
    BadDoc(f"{U}/interactions/partition_string_with_offset",
           interaction(timestamp="2026-11-02T23:30:00-05:00"), ("written", None),
           {"timestamp": "2026-11-03T04:30:00.000000Z"}),
    BadDoc(f"{U}/interactions/one_mebibyte_string",
           interaction(message_in="x" * BIG_STRING_CHARS), ("written", None),
           {"message_in": "x" * BIG_STRING_CHARS}),
    BadDoc(f"{U}/interactions/emoji_and_unicode",
           interaction(message_in=EMOJI_TEXT, message_out=UNICODE_TEXT), ("written", None),
           {"message_in": EMOJI_TEXT, "message_out": UNICODE_TEXT}),
    # ---------------------------------------------------------------- tasks
    BadDoc(f"{U}/tasks/int_in_bool", task(completed=1), ("dead", "completed")),
    BadDoc(f"{U}/tasks/array_in_timestamp", task(updated_at=[1, 2]), ("dead", "updated_at")),
    BadDoc(f"{U}/tasks/int_in_string", task(description=42), ("dead", "description")),
    BadDoc(f"{U}/tasks/missing_partition", _without(task(), "created_at"),
           ("dead", "created_at")),
    BadDoc(f"{U}/tasks/null_partition", task(created_at=None), ("dead", "created_at")),
    BadDoc(f"{U}/tasks/date_dd_mm_yyyy", task(date="24/11/2026"), ("dead", "date")),
    BadDoc(f"{U}/tasks/date_tomorrow", task(date="tomorrow"), ("dead", "date")),
    BadDoc(f"{U}/tasks/origin_not_allowed", task(origin="email"), ("dead", "origin")),
    BadDoc(f"{U}/tasks/user_id_disagrees_with_path", task(user_id="alice"),
           ("dead", "user_id")),
    BadDoc(f"{U}/tasks/reference_in_timestamp",
           task(updated_at=Ref(f"{U}/routines/missing")), ("dead", "updated_at")),
    BadDoc(f"{U}/tasks/geopoint_in_string", task(google_calendar_event_id=GeoPoint(0.0, 0.0)),
           ("dead", "google_calendar_event_id")),
    BadDoc(f"{U}/tasks/empty", {}, ("dead", "created_at")),
    BadDoc("other/x/tasks/outside_layout", task(), ("dead", "__name__")),
    BadDoc("tasks/top_level_task", task(), ("dead", "__name__")),
    BadDoc(f"{U}/projects/p/tasks/nested_too_deep", task(), ("dead", "__name__")),
    BadDoc(f"{U}/tasks/reference_to_missing_doc_in_string",
           task(routine_item_id=Ref(f"{U}/routines/missing")), ("written", None),
           {"routine_item_id": f"{U}/routines/missing"}),
    BadDoc(f"{U}/tasks/pre_1970_timestamp",
           task(updated_at=datetime.datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC)),
           ("written", None), {"updated_at": "1969-07-20T20:17:40.000000Z"}),
    BadDoc(f"{U}/tasks/mixed_array_in_unknown_field", task(tags=MIXED_ARRAY), ("written", None),
           {"extra": {"tags": [1, "two", 3.5, True, None, {"k": ["v"]},
                               {"bytes_base64": "AP8="}]}}),
    BadDoc(f"{U}/tasks/hostile_field_names",
           task(**HOSTILE_FIELD_NAMES, extra="not the column", _document_path="users/x/tasks/y"),
           ("written", None),
           {"extra": {**HOSTILE_FIELD_NAMES, "extra": "not the column",
                      "_document_path": "users/x/tasks/y"}}),
    BadDoc("users/ünï-😀/tasks/tâche-日本-😀", task(), ("written", None),
           {"user_id": "ünï-😀", "task_id": "tâche-日本-😀"}),
    BadDoc(f"{U}/tasks/it's \"quoted\" `id`; --", task(), ("written", None),
           {"task_id": "it's \"quoted\" `id`; --"}),
    BadDoc(f"{U}/tasks/control_characters", task(description=CONTROL_CHARS, note=CONTROL_CHARS),
           ("written", None), {"description": CONTROL_CHARS, "extra": {"note": CONTROL_CHARS}}),
    BadDoc(f"{U}/tasks/nested_20_levels_in_unknown_field",
           task(deep=nested(MAX_FIRESTORE_NESTING)), ("written", None),
           {"extra": {"deep": nested(MAX_FIRESTORE_NESTING)}}),
    # ---------------------------------------------------------------- memories
    BadDoc(f"{U}/memories/bool_in_float64", memory(emotional_valence=True),
           ("dead", "emotional_valence")),
    BadDoc(f"{U}/memories/array_in_string", memory(trigger=["a", "b"]), ("dead", "trigger")),
    BadDoc(f"{U}/memories/bytes_in_string", memory(context=b"raw"), ("dead", "context")),
    BadDoc(f"{U}/memories/partition_in_1900",
           memory(timestamp=datetime.datetime(1900, 1, 1, 12, tzinfo=UTC)),
           ("dead", "timestamp")),
    BadDoc(f"{U}/memories/user_id_disagrees_with_path", memory(user_id="bob"),
           ("dead", "user_id")),
    BadDoc(f"{U}/memories/nan_in_float64", memory(emotional_valence=math.nan),
           ("written", None), {"emotional_valence": "NaN"}),
    BadDoc(f"{U}/memories/infinity_in_float64", memory(emotional_valence=math.inf),
           ("written", None), {"emotional_valence": "Infinity"}),
    BadDoc(f"{U}/memories/geopoint_and_bytes_in_unknown_fields",
           memory(where=GeoPoint(48.85, 2.35), blob=b"\x00\xffbin"), ("written", None),
           {"extra": {"where": {"latitude": 48.85, "longitude": 2.35},
                      "blob": {"bytes_base64": "AP9iaW4="}}}),
    BadDoc(f"{U}/memories/記憶-🧠", memory(memory_id="記憶-🧠", description=UNICODE_TEXT),
           ("written", None),
           {"memory_id": "記憶-🧠", "description": UNICODE_TEXT, "extra": None}),
    # ---------------------------------------------------------------- projects
    BadDoc(f"{U}/projects/number_in_date", project(due_date=20261103), ("dead", "due_date")),
    BadDoc(f"{U}/projects/double_in_int64", project(priority=2.5), ("dead", "priority")),
    BadDoc(f"{U}/projects/string_in_float64", project(progress="half"), ("dead", "progress")),
    BadDoc(f"{U}/projects/map_in_repeated_string", project(task_ids={"a": 1}),
           ("dead", "task_ids")),
    BadDoc(f"{U}/projects/mixed_array_in_repeated", project(task_ids=["t1", 2, True]),
           ("dead", "task_ids")),
    BadDoc(f"{U}/projects/status_not_allowed", project(status="Active"), ("dead", "status")),
    BadDoc(f"{U}/projects/partition_date_without_time", project(created_at="2026-11-03"),
           ("dead", "created_at")),
    BadDoc(f"{U}/projects/one_mebibyte_string_and_bad_status",
           project(description="y" * BIG_STRING_CHARS, status="deleted"), ("dead", "status")),
    BadDoc(f"{U}/projects/negative_infinity_in_float64", project(progress=-math.inf),
           ("written", None), {"progress": "-Infinity"}),
    BadDoc(f"{U}/projects/int64_min", project(priority=INT64_MIN), ("written", None),
           {"priority": INT64_MIN}),
    BadDoc(f"{U}/projects/pre_1970_date", project(due_date="1901-12-13"), ("written", None),
           {"due_date": "1901-12-13"}),
    BadDoc(f"{U}/projects/null_repeated", project(task_ids=None), ("written", None),
           {"task_ids": []}),
    # ---------------------------------------------------------------- routines
    BadDoc(f"{U}/routines/int_in_time", routine(start_time=730), ("dead", "start_time")),
    BadDoc(f"{U}/routines/string_in_bool", routine(active="yes"), ("dead", "active")),
    BadDoc(f"{U}/routines/string_in_repeated_int64", routine(days_of_week="mon"),
           ("dead", "days_of_week")),
    BadDoc(f"{U}/routines/mixed_array_in_repeated_int64", routine(days_of_week=[1, "2", 3]),
           ("dead", "days_of_week")),
    BadDoc(f"{U}/routines/frequency_not_allowed", routine(frequency="hourly"),
           ("dead", "frequency")),
    BadDoc(f"{U}/routines/empty", {}, ("dead", "created_at")),
    # No updated_at: the partition day alone decides where the document goes.
    BadDoc(f"{U}/routines/partition_in_2160",
           _without(routine(created_at="2160-01-01T00:00:00Z"), "updated_at"),
           ("dead", "created_at")),
    BadDoc(f"{U}/routines/nested_20_levels_in_json_column",
           routine(items=nested(MAX_FIRESTORE_NESTING, 7)), ("written", None),
           {"items": nested(MAX_FIRESTORE_NESTING, 7)}),
    BadDoc(f"{U}/routines/reference_in_json_column",
           routine(items=[{"ref": Ref(f"{U}/routines/gone"), "at": at(DAYS[4])}]),
           ("written", None),
           {"items": [{"ref": {"reference": f"{U}/routines/gone"},
                       "at": "2026-11-05T12:00:00.000000Z"}]}),
]  # fmt: skip

DEAD = [d for d in CORPUS if d.dead]
WRITTEN = [d for d in CORPUS if not d.dead]
#: Dead documents whose partition day parses but lies outside 1960..2159.
OUT_OF_RANGE_PARTITION = [f"{U}/memories/partition_in_1900", f"{U}/routines/partition_in_2160"]

#: Collection id → shipped table name.
TABLES = {
    "interactions": "user_interactions",
    "tasks": "tasks",
    "memories": "emotional_memories",
    "projects": "projects",
    "routines": "routines",
}


def table_of(doc: BadDoc) -> str:
    return TABLES[doc.collection]
