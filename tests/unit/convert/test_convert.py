"""Unit tests of pipelines.convert.conversion: every Firestore value type into every column type.

Pure: no emulator, no network. Values are built exactly as google-cloud-firestore
returns them (DatetimeWithNanoseconds, GeoPoint, DocumentReference, bytes, …).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import math
from typing import Any

import google.auth.credentials
import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud import firestore
from google.cloud.firestore_v1 import GeoPoint

from pipelines.convert import conversion
from pipelines.convert.conversion import (
    INT64_MAX,
    INT64_MIN,
    MAX_RAW_DOCUMENT_CHARS,
    ConversionError,
    convert_value,
    document_day,
    document_to_row,
    format_timestamp,
    hmac_hasher,
    parse_timestamp,
    partition_day,
    raw_document_json,
    to_json_value,
)
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import Column, TableSpec, load_specs, parse_spec

UTC = datetime.UTC
SPECS = load_specs()
TASKS = SPECS["tasks"]
INTERACTIONS = SPECS["user_interactions"]
MEMORIES = SPECS["emotional_memories"]
RUN_ID = "run_1"
READ_TIME = "2026-11-25T02:00:00.000000Z"

#: A Firestore timestamp as the client returns it: nanosecond precision.
TS = DatetimeWithNanoseconds(2026, 11, 24, 10, 30, 15, nanosecond=123456789, tzinfo=UTC)
TS_TEXT = "2026-11-24T10:30:15.123456Z"
REF = firestore.Client(
    project="p", credentials=google.auth.credentials.AnonymousCredentials()
).document("users/u/tasks/t")
GEO = GeoPoint(48.8566, 2.3522)

#: One value of every Firestore type, as the client library hands it over.
VALUES: dict[str, Any] = {
    "timestamp": TS,
    "integer": 42,
    "double": 1.5,
    "boolean": True,
    "string": "hi",
    "bytes": b"\x00\xffraw",
    "null": None,
    "map": {"k": 1, "nested": {"ts": TS}},
    "array": [1, 2],
    "geopoint": GEO,
    "reference": REF,
}
JSON_FORMS: dict[str, Any] = {
    "timestamp": TS_TEXT,
    "integer": 42,
    "double": 1.5,
    "boolean": True,
    "string": "hi",
    "bytes": {"bytes_base64": "AP9yYXc="},
    "null": None,
    "map": {"k": 1, "nested": {"ts": TS_TEXT}},
    "array": [1, 2],
    "geopoint": {"latitude": 48.8566, "longitude": 2.3522},
    "reference": {"reference": "users/u/tasks/t"},
}


def make_spec(fields: list[dict[str, Any]], **overrides: Any) -> TableSpec:
    """A per-user ``probe`` table with the given extra columns."""
    raw: dict[str, Any] = {
        "table": "probe",
        "source": {"collection": "probe"},
        "id_column": "probe_id",
        "partition_column": "created_at",
        "fields": [
            {"name": "user_id", "type": "STRING", "mode": "REQUIRED"},
            {"name": "probe_id", "type": "STRING", "mode": "REQUIRED"},
            {"name": "created_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
            *fields,
        ],
    }
    raw.update(overrides)
    return parse_spec(raw, "probe.json")


#: One column of every type the converter knows.
PROBE = make_spec(
    [
        {"name": "c_string", "type": "STRING"},
        {"name": "c_int64", "type": "INT64"},
        {"name": "c_float64", "type": "FLOAT64"},
        {"name": "c_bool", "type": "BOOL"},
        {"name": "c_timestamp", "type": "TIMESTAMP"},
        {"name": "c_date", "type": "DATE"},
        {"name": "c_time", "type": "TIME"},
        {"name": "c_json", "type": "JSON"},
        {"name": "c_repeated", "type": "INT64", "mode": "REPEATED"},
        {"name": "c_repeated_float", "type": "FLOAT64", "mode": "REPEATED"},
        {"name": "c_repeated_string", "type": "STRING", "mode": "REPEATED"},
        {"name": "c_required", "type": "STRING", "mode": "REQUIRED"},
    ]
)


def probe_doc(**fields: Any) -> FirestoreDocument:
    data = {"created_at": TS, "c_required": "present", **fields}
    return FirestoreDocument("probe", "users/u1/probe/p1", data)


def task_doc(path: str = "users/u1/tasks/t1", **fields: Any) -> FirestoreDocument:
    return FirestoreDocument("tasks", path, {"created_at": TS, **fields})


def to_row(spec: TableSpec, doc: FirestoreDocument, hasher=None) -> dict[str, Any]:
    return document_to_row(spec, doc, RUN_ID, READ_TIME, hasher)


def rejection(spec: TableSpec, doc: FirestoreDocument, hasher=None) -> ConversionError:
    with pytest.raises(ConversionError) as info:
        to_row(spec, doc, hasher)
    error = info.value
    assert str(error) == f"{error.field}: {error.reason}"
    assert error.reason and "Traceback" not in error.reason and len(error.reason) < 300
    return error


# --------------------------------------------------------------------------------------
# The type matrix: every Firestore value type into every column type.
# --------------------------------------------------------------------------------------

WORDS = {
    "c_string": "string",
    "c_int64": "integer",
    "c_float64": "double",
    "c_bool": "boolean",
    "c_timestamp": "timestamp",
    "c_date": "date",
    "c_time": "time",
    "c_repeated": "array",
    "c_repeated_float": "array",
    "c_repeated_string": "array",
}
ACCEPTED: dict[tuple[str, str], Any] = {
    ("c_string", "string"): "hi",
    ("c_string", "reference"): "users/u/tasks/t",
    ("c_int64", "integer"): 42,
    ("c_float64", "integer"): 42.0,
    ("c_float64", "double"): 1.5,
    ("c_bool", "boolean"): True,
    ("c_timestamp", "timestamp"): TS_TEXT,
    ("c_date", "timestamp"): "2026-11-24",
    ("c_time", "timestamp"): "10:30:15.123456",
    ("c_repeated", "array"): [1, 2],
    ("c_repeated_float", "array"): [1.0, 2.0],
    **{("c_json", kind): JSON_FORMS[kind] for kind in VALUES},
    **{(col, "null"): None for col in WORDS},
}
for _col in ("c_repeated", "c_repeated_float", "c_repeated_string"):
    ACCEPTED[(_col, "null")] = []  # a missing array is an empty array in BigQuery
#: Rejections whose reason is not "expected <column type>, got <value type>".
SPECIAL_REASONS = {
    ("c_int64", "double"): "double 1.5 is not a whole INT64",
    ("c_timestamp", "string"): 'unparsable timestamp "hi"',
    ("c_date", "string"): 'unparsable date "hi" (expected YYYY-MM-DD)',
    ("c_time", "string"): 'unparsable time "hi" (expected HH:MM[:SS])',
    ("c_repeated_string", "array"): "array element 0: expected string, got integer",
}
MATRIX = [(col, kind) for col in [*WORDS, "c_json"] for kind in VALUES]


@pytest.mark.parametrize(("column", "kind"), [m for m in MATRIX if m in ACCEPTED])
def test_value_type_accepted_by_column(column: str, kind: str) -> None:
    row = to_row(PROBE, probe_doc(**{column: VALUES[kind]}))
    assert row[column] == ACCEPTED[(column, kind)]
    assert row["extra"] is None  # the field went to its column, nowhere else


@pytest.mark.parametrize(("column", "kind"), [m for m in MATRIX if m not in ACCEPTED])
def test_value_type_rejected_by_column(column: str, kind: str) -> None:
    error = rejection(PROBE, probe_doc(**{column: VALUES[kind]}))
    assert error.field == column
    expected = SPECIAL_REASONS.get((column, kind), f"expected {WORDS[column]}, got {kind}")
    assert expected in error.reason


def test_matrix_covers_every_column_and_value_type() -> None:
    assert {c.type for c in PROBE.columns} == set(conversion.SCALAR_CONVERTERS)
    assert set(VALUES) == {
        "timestamp",
        "integer",
        "double",
        "boolean",
        "string",
        "bytes",
        "null",
        "map",
        "array",
        "geopoint",
        "reference",
    }
    # Every probed column meets every value kind: nothing in the matrix is skipped.
    probed = {c.name for c in PROBE.columns if c.name.startswith("c_")} - {"c_required"}
    assert set(MATRIX) == {(c, k) for c in probed for k in VALUES}


# --------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(TS, TS_TEXT, id="nanoseconds-truncated"),
        pytest.param(
            DatetimeWithNanoseconds.from_rfc3339("2026-11-24T10:30:15.999999999Z"),
            "2026-11-24T10:30:15.999999Z",
            id="truncated-not-rounded",
        ),
        pytest.param(
            DatetimeWithNanoseconds(2026, 11, 24, 10, 30, 15, nanosecond=999, tzinfo=UTC),
            "2026-11-24T10:30:15.000000Z",
            id="sub-microsecond-lost",
        ),
        pytest.param(
            DatetimeWithNanoseconds(2026, 11, 24, tzinfo=UTC), "2026-11-24T00:00:00.000000Z"
        ),
        pytest.param(
            datetime.datetime(2026, 11, 24, 10, 30, 15), "2026-11-24T10:30:15.000000Z", id="naive"
        ),
        pytest.param(
            datetime.datetime(
                2026, 11, 24, 12, 30, 15, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            "2026-11-24T10:30:15.000000Z",
            id="aware-plus-2h",
        ),
        pytest.param(
            datetime.datetime(
                2026, 11, 24, 23, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
            ),
            "2026-11-25T04:30:00.000000Z",
            id="aware-minus-5h-crosses-day",
        ),
        pytest.param(
            DatetimeWithNanoseconds.from_rfc3339("1969-12-31T23:59:59.999999999Z"),
            "1969-12-31T23:59:59.999999Z",
            id="pre-epoch",
        ),
        pytest.param(
            datetime.datetime(1900, 1, 1, tzinfo=UTC), "1900-01-01T00:00:00.000000Z", id="1900"
        ),
        pytest.param(
            datetime.datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000000Z", id="min"
        ),
        pytest.param(
            datetime.datetime(999, 3, 4, 5, 6, 7, tzinfo=UTC),
            "0999-03-04T05:06:07.000000Z",
            id="three-digit-year",
        ),
        pytest.param(
            DatetimeWithNanoseconds(9999, 12, 31, 23, 59, 59, nanosecond=999999999, tzinfo=UTC),
            "9999-12-31T23:59:59.999999Z",
            id="max",
        ),
        pytest.param("2026-11-24T10:30:15Z", "2026-11-24T10:30:15.000000Z", id="iso-z"),
        pytest.param("2026-11-24T12:30:15+02:00", "2026-11-24T10:30:15.000000Z", id="iso-offset"),
        pytest.param(" 2026-11-24T10:30:15.123456789+00:00 ", TS_TEXT, id="iso-nanos-whitespace"),
        pytest.param("1960-01-01T00:00:00-01:00", "1960-01-01T01:00:00.000000Z", id="iso-1960"),
    ],
)
def test_timestamp_column(value: Any, expected: str) -> None:
    row = to_row(PROBE, probe_doc(c_timestamp=value))
    assert row["c_timestamp"] == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-11-24T10:30:15", 'timestamp "2026-11-24T10:30:15" has no UTC offset'),
        ("2026-11-24", 'timestamp "2026-11-24" has no UTC offset'),
        ("yesterday", 'unparsable timestamp "yesterday"'),
        ("", 'unparsable timestamp ""'),
        ("24/11/2026 10:00", "unparsable timestamp"),
        ("0001-01-01T00:00:00+01:00", "is out of range"),
        ("9999-12-31T23:59:59-01:00", "is out of range"),
        (1764000000, "expected timestamp, got integer"),
        (1764000000.5, "expected timestamp, got double"),
    ],
)
def test_timestamp_column_rejects(value: Any, reason: str) -> None:
    error = rejection(PROBE, probe_doc(c_timestamp=value))
    assert error.field == "c_timestamp"
    assert reason in error.reason


def test_parse_timestamp_keeps_nanosecond_type_and_assumes_utc_for_naive() -> None:
    assert parse_timestamp(TS) is TS
    naive = datetime.datetime(2026, 1, 2, 3, 4, 5)
    assert parse_timestamp(naive) == naive.replace(tzinfo=UTC)
    with pytest.raises(TypeError, match="expected timestamp, got boolean"):
        parse_timestamp(True)


def test_format_timestamp_is_rfc3339_utc_microseconds() -> None:
    text = format_timestamp(TS)
    assert text == TS_TEXT
    assert datetime.datetime.fromisoformat(text) == TS.replace(microsecond=123456)


# --------------------------------------------------------------------------------------
# Integers and doubles
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (-1, -1),
        (INT64_MAX, 9223372036854775807),
        (INT64_MIN, -9223372036854775808),
        (12.0, 12),
        (-0.0, 0),
        (-(2.0**63), INT64_MIN),
        (2.0**53, 2**53),
    ],
)
def test_int64_column(value: Any, expected: int) -> None:
    row = to_row(PROBE, probe_doc(c_int64=value))
    assert row["c_int64"] == expected
    assert type(row["c_int64"]) is int


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (2**63, "integer 9223372036854775808 is outside INT64"),
        (-(2**63) - 1, "integer -9223372036854775809 is outside INT64"),
        (10**30, "is outside INT64"),
        (1.5, "double 1.5 is not a whole INT64"),
        (-0.001, "is not a whole INT64"),
        (2.0**63, "double 9.223372036854776e+18 is not a whole INT64"),
        (float("nan"), "double nan is not a whole INT64"),
        (float("inf"), "double inf is not a whole INT64"),
        (True, "expected integer, got boolean"),
        (False, "expected integer, got boolean"),
        ("12", "expected integer, got string"),
    ],
)
def test_int64_column_rejects(value: Any, reason: str) -> None:
    error = rejection(PROBE, probe_doc(c_int64=value))
    assert error.field == "c_int64"
    assert reason in error.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (1.5, 1.5),
        (-0.0, -0.0),
        (1e308, 1e308),
        (5e-324, 5e-324),
        (3, 3.0),
        (INT64_MAX, float(INT64_MAX)),
    ],
)
def test_float64_column(value: Any, expected: Any) -> None:
    row = to_row(PROBE, probe_doc(c_float64=value))
    assert row["c_float64"] == expected
    assert type(row["c_float64"]) is type(expected)
    # The row is valid strict JSON, the way load_rows serialises it.
    json.dumps(row, allow_nan=False)


@pytest.mark.parametrize("value", [True, "1.5", "NaN", b"1"])
def test_float64_column_rejects(value: Any) -> None:
    error = rejection(PROBE, probe_doc(c_float64=value))
    assert error.field == "c_float64"
    assert error.reason.startswith("expected double, got ")


def test_emotional_valence_nan_becomes_the_nan_string() -> None:
    doc = FirestoreDocument(
        "emotional_memories",
        "users/u1/memories/m1",
        {"timestamp": TS, "emotional_valence": float("nan")},
    )
    assert to_row(MEMORIES, doc)["emotional_valence"] == "NaN"


def test_repeated_float_keeps_nan_and_infinity_as_strings() -> None:
    row = to_row(PROBE, probe_doc(c_repeated_float=[float("nan"), float("inf"), -math.inf, 2]))
    assert row["c_repeated_float"] == ["NaN", "Infinity", "-Infinity", 2.0]


# --------------------------------------------------------------------------------------
# Booleans, strings, bytes, null
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_bool_column(value: bool) -> None:
    assert to_row(PROBE, probe_doc(c_bool=value))["c_bool"] is value


@pytest.mark.parametrize(
    ("value", "kind"), [(1, "integer"), (0, "integer"), ("true", "string"), (1.0, "double")]
)
def test_bool_column_rejects_truthy_non_booleans(value: Any, kind: str) -> None:
    error = rejection(PROBE, probe_doc(c_bool=value))
    assert (error.field, error.reason) == ("c_bool", f"expected boolean, got {kind}")


TRICKY_STRINGS = [
    "",
    "héllo wörld",
    "emoji 👋🏽👨‍👩‍👧 and 中文 and العربية",
    "control \x00\x01\x07\x1b\x7f chars",
    "new\nline\ttab\r\n",
    "bidi \u202e override \u200b zero-width",
    "quotes ' \" ` backslash \\",
    "x" * 100_000,
]


@pytest.mark.parametrize("value", TRICKY_STRINGS, ids=range(len(TRICKY_STRINGS)))
def test_unicode_and_control_characters_survive(value: str) -> None:
    doc = task_doc(description=value, note=value)
    row = to_row(TASKS, doc)
    assert row["description"] == value
    assert row["extra"] == {"note": value}
    # Round-trips through the NDJSON the load job receives.
    assert json.loads(json.dumps(row, ensure_ascii=False, allow_nan=False)) == row


def test_string_column_rejects_bytes() -> None:
    error = rejection(TASKS, task_doc(description=b"\x00\x01"))
    assert (error.field, error.reason) == ("description", "expected string, got bytes")


def test_reference_into_string_column_is_its_path() -> None:
    row = to_row(TASKS, task_doc(routine_item_id=REF))
    assert row["routine_item_id"] == "users/u/tasks/t"


def test_null_and_missing_nullable_fields_are_null() -> None:
    row = to_row(TASKS, task_doc(description=None, date=None, time=None, completed=None))
    for name in ("description", "date", "time", "completed", "duration_minutes", "updated_at"):
        assert row[name] is None
    assert row["extra"] is None


def test_null_required_field_is_rejected() -> None:
    error = rejection(PROBE, probe_doc(c_required=None))
    assert (error.field, error.reason) == ("c_required", "required value is null")


def test_missing_required_field_is_rejected() -> None:
    doc = FirestoreDocument("probe", "users/u1/probe/p1", {"created_at": TS})
    error = rejection(PROBE, doc)
    assert (error.field, error.reason) == ("c_required", "missing required field")


# --------------------------------------------------------------------------------------
# Maps, arrays, geopoints, references in JSON and REPEATED columns
# --------------------------------------------------------------------------------------


def test_json_column_takes_any_value_nested() -> None:
    value = {
        "when": TS,
        "where": GEO,
        "who": REF,
        "blob": b"\x01",
        "bad": float("nan"),
        "list": [1, "a", None, {"x": [True]}],
    }
    row = to_row(PROBE, probe_doc(c_json=value))
    assert row["c_json"] == {
        "when": TS_TEXT,
        "where": {"latitude": 48.8566, "longitude": 2.3522},
        "who": {"reference": "users/u/tasks/t"},
        "blob": {"bytes_base64": "AQ=="},
        "bad": "NaN",
        "list": [1, "a", None, {"x": [True]}],
    }
    json.dumps(row, allow_nan=False)


def test_json_column_in_shipped_routines_schema() -> None:
    items = [{"routine_item_id": "ri1", "description": "stretch", "duration_minutes": 10}]
    doc = FirestoreDocument(
        "routines",
        "users/u1/routines/r1",
        {"created_at": TS, "items": items, "days_of_week": [1, 3, 5], "start_time": "07:15"},
    )
    row = to_row(SPECS["routines"], doc)
    assert row["items"] == items
    assert row["days_of_week"] == [1, 3, 5]
    assert row["start_time"] == "07:15:00"


@pytest.mark.parametrize(
    ("value", "expected"),
    [([], []), ((7,), [7]), ([1, 2.0, INT64_MAX], [1, 2, INT64_MAX]), (None, [])],
)
def test_repeated_int64_column(value: Any, expected: list[int]) -> None:
    assert to_row(PROBE, probe_doc(c_repeated=value))["c_repeated"] == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([1, None, 3], "array element 1 is null; BigQuery arrays cannot hold NULL"),
        ([1, "2"], "array element 1: expected integer, got string"),
        ([1, True], "array element 1: expected integer, got boolean"),
        ([1, 2.5], "array element 1: double 2.5 is not a whole INT64"),
        ([2**63], "array element 0: integer 9223372036854775808 is outside INT64"),
        ([[1]], "array element 0: expected integer, got array"),
        ({"0": 1}, "expected array, got map"),
        (5, "expected array, got integer"),
        ("1,2", "expected array, got string"),
    ],
)
def test_repeated_int64_column_rejects(value: Any, reason: str) -> None:
    error = rejection(PROBE, probe_doc(c_repeated=value))
    assert (error.field, error.reason) == ("c_repeated", reason)


def test_repeated_string_takes_references() -> None:
    row = to_row(PROBE, probe_doc(c_repeated_string=["a", REF]))
    assert row["c_repeated_string"] == ["a", "users/u/tasks/t"]


# --------------------------------------------------------------------------------------
# DATE and TIME columns of the tasks schema
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-24", "2026-11-24"),
        (" 2026-11-24 ", "2026-11-24"),
        ("2026-02-28", "2026-02-28"),
        ("2024-02-29", "2024-02-29"),
        ("1969-07-20", "1969-07-20"),
        (TS, "2026-11-24"),
        (datetime.datetime(2026, 11, 24, 23, 59), "2026-11-24"),
        ("2026-11-24T10:00:00+02:00", "2026-11-24"),
        ("2026-11-24T10:00:00Z", "2026-11-24"),
        # Offsets are folded into UTC, like every other day this sync computes.
        ("2026-11-24T23:30:00-05:00", "2026-11-25"),
        ("2026-11-24T00:30:00+02:00", "2026-11-23"),
    ],
)
def test_task_date(value: Any, expected: str) -> None:
    assert to_row(TASKS, task_doc(date=value))["date"] == expected


@pytest.mark.parametrize(
    "value",
    ["24/11/2026", "tomorrow", "2026-13-01", "2026-02-30", "", "2026-11-24T10:00:00", "11-24"],
)
def test_task_date_rejects_unparsable(value: str) -> None:
    error = rejection(TASKS, task_doc(date=value))
    assert error.field == "date"
    assert error.reason == f"unparsable date {json.dumps(value)} (expected YYYY-MM-DD)"


@pytest.mark.parametrize(
    ("value", "kind"), [(20261124, "integer"), (True, "boolean"), ({"y": 2026}, "map")]
)
def test_task_date_rejects_wrong_type(value: Any, kind: str) -> None:
    error = rejection(TASKS, task_doc(date=value))
    assert (error.field, error.reason) == ("date", f"expected date, got {kind}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("14:30", "14:30:00"),
        ("14:30:00", "14:30:00"),
        ("09:05:07", "09:05:07"),
        ("00:00", "00:00:00"),
        ("23:59:59.250", "23:59:59.250000"),
        (TS, "10:30:15.123456"),
        (datetime.datetime(2026, 11, 24, 14, 30), "14:30:00"),
        ("2026-11-24T14:30:00+02:00", "12:30:00"),
        ("2026-11-24T14:30:00Z", "14:30:00"),
    ],
)
def test_task_time(value: Any, expected: str) -> None:
    assert to_row(TASKS, task_doc(time=value))["time"] == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("25:00", 'unparsable time "25:00" (expected HH:MM[:SS])'),
        ("14:60", 'unparsable time "14:60" (expected HH:MM[:SS])'),
        ("2:30 PM", 'unparsable time "2:30 PM" (expected HH:MM[:SS])'),
        ("noon", 'unparsable time "noon" (expected HH:MM[:SS])'),
        ("", 'unparsable time "" (expected HH:MM[:SS])'),
        ("2026-11-24T14:30:00", 'unparsable time "2026-11-24T14:30:00" (expected HH:MM[:SS])'),
        ("14:30:00+02:00", 'time "14:30:00+02:00" carries an offset; TIME has none'),
        (1430, "expected time, got integer"),
        (14.5, "expected time, got double"),
    ],
)
def test_task_time_rejects(value: Any, reason: str) -> None:
    error = rejection(TASKS, task_doc(time=value))
    assert (error.field, error.reason) == ("time", reason)


# --------------------------------------------------------------------------------------
# Allowed values, paths, partition values
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["user_added", "routine", "google_calendar", None])
def test_task_origin_allowed(origin: str | None) -> None:
    assert to_row(TASKS, task_doc(origin=origin))["origin"] == origin


@pytest.mark.parametrize("origin", ["ROUTINE", "manual", "", " routine", "x" * 500])
def test_task_origin_not_allowed(origin: str) -> None:
    error = rejection(TASKS, task_doc(origin=origin))
    assert error.field == "origin"
    assert "is not one of ['user_added', 'routine', 'google_calendar']" in error.reason


def test_allowed_values_apply_to_each_array_element() -> None:
    spec = make_spec(
        [{"name": "tags", "type": "STRING", "mode": "REPEATED", "allowed_values": ["a", "b"]}]
    )
    assert to_row(spec, probe_doc(tags=["a", "b", "a"]))["tags"] == ["a", "b", "a"]
    error = rejection(spec, probe_doc(tags=["a", "z"]))
    assert error.field == "tags"
    assert error.reason == "array element 1: \"z\" is not one of ['a', 'b']"


@pytest.mark.parametrize(
    "path",
    [
        "tasks/t1",
        "users/u1",
        "users/u1/tasks",
        "users/u1/projects/p1/tasks/t1",
        "orgs/o1/tasks/t1",
        "users/u1/notes/t1",
    ],
)
def test_path_outside_per_user_layout(path: str) -> None:
    error = rejection(TASKS, task_doc(path=path))
    assert (error.field, error.reason) == (
        "__name__",
        "path is outside the layout users/{user_id}/tasks",
    )


def test_ids_come_from_the_path() -> None:
    row = to_row(TASKS, task_doc(path="users/alice 👋/tasks/t-42"))
    assert (row["user_id"], row["task_id"]) == ("alice 👋", "t-42")
    assert row["_document_path"] == "users/alice 👋/tasks/t-42"


@pytest.mark.parametrize("field", ["user_id", "task_id"])
def test_id_field_agreeing_with_path_is_consumed(field: str) -> None:
    value = {"user_id": "u1", "task_id": "t1"}[field]
    row = to_row(TASKS, task_doc(**{field: value}))
    assert row[field] == value
    assert row["extra"] is None


@pytest.mark.parametrize(
    ("field", "value"), [("user_id", "mallory"), ("task_id", "t2"), ("user_id", 1)]
)
def test_id_field_disagreeing_with_path(field: str, value: Any) -> None:
    error = rejection(TASKS, task_doc(**{field: value}))
    assert error.field == field
    assert error.reason == f"field disagrees with the document path ({json.dumps(str(value))})"


def test_null_id_field_is_ignored() -> None:
    assert to_row(TASKS, task_doc(user_id=None))["user_id"] == "u1"


def test_missing_partition_value() -> None:
    doc = FirestoreDocument("tasks", "users/u1/tasks/t1", {"description": "x"})
    error = rejection(TASKS, doc)
    assert (error.field, error.reason) == ("created_at", "missing partition value")


def test_null_partition_value() -> None:
    error = rejection(TASKS, task_doc(created_at=None))
    assert (error.field, error.reason) == ("created_at", "required value is null")


def test_partition_error_reported_before_other_fields() -> None:
    doc = FirestoreDocument("tasks", "users/u1/tasks/t1", {"completed": "yes", "created_at": "?"})
    assert rejection(TASKS, doc).field == "created_at"


def test_nullable_partition_column_still_needs_a_value() -> None:
    raw = {
        "table": "loose",
        "id_column": "loose_id",
        "partition_column": "day",
        "fields": [
            {"name": "user_id", "type": "STRING"},
            {"name": "loose_id", "type": "STRING"},
            {"name": "day", "type": "DATE", "mode": "NULLABLE"},
        ],
    }
    spec = parse_spec(raw)
    path = "users/u1/loose/l1"
    missing = rejection(spec, FirestoreDocument("loose", path, {}))
    assert (missing.field, missing.reason) == ("day", "missing partition value")
    null = rejection(spec, FirestoreDocument("loose", path, {"day": None}))
    assert (null.field, null.reason) == ("day", "partition value is null")
    row = to_row(spec, FirestoreDocument("loose", path, {"day": "2026-11-24"}))
    assert partition_day(spec, row) == datetime.date(2026, 11, 24)


# --------------------------------------------------------------------------------------
# The extra column
# --------------------------------------------------------------------------------------


def test_every_value_type_goes_to_extra() -> None:
    row = to_row(TASKS, task_doc(**{f"x_{kind}": value for kind, value in VALUES.items()}))
    assert row["extra"] == {f"x_{kind}": form for kind, form in JSON_FORMS.items()}
    json.dumps(row, allow_nan=False)


@pytest.mark.parametrize(
    ("value", "form"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (INT64_MAX, INT64_MAX),
        (INT64_MIN, INT64_MIN),
        (b"", {"bytes_base64": ""}),
        (
            [GEO, REF],
            [{"latitude": 48.8566, "longitude": 2.3522}, {"reference": "users/u/tasks/t"}],
        ),
    ],
)
def test_extra_values(value: Any, form: Any) -> None:
    row = to_row(TASKS, task_doc(other=value))
    assert row["extra"] == {"other": form}
    json.dumps(row, allow_nan=False)


def test_extra_keeps_a_map_nested_20_levels() -> None:
    value: Any = TS
    for i in range(20):
        value = {f"level{19 - i}": value}
    row = to_row(TASKS, task_doc(deep=value))
    node = row["extra"]["deep"]
    for i in range(20):
        node = node[f"level{i}"]
    assert node == TS_TEXT


def test_extra_nested_beyond_the_limit_is_a_conversion_error() -> None:
    value: Any = 1
    for _ in range(150):
        value = {"d": value}
    error = rejection(TASKS, task_doc(deep=value))
    assert (error.field, error.reason) == ("extra", "nested deeper than 100 levels")


@pytest.mark.parametrize(
    "name",
    ["a.b", "with space", "back`tick", "`; DROP TABLE x; --", "emoji👋", "__name__", "", "\x00"],
)
def test_extra_keeps_hostile_field_names(name: str) -> None:
    row = to_row(TASKS, task_doc(**{name: {name: 1}}))
    assert row["extra"] == {name: {name: 1}}


def test_extra_is_null_when_every_field_has_a_column() -> None:
    assert to_row(TASKS, task_doc(description="x"))["extra"] is None


def test_extra_does_not_shadow_a_column_with_a_dotted_name() -> None:
    row = to_row(TASKS, task_doc(**{"description.x": 1, "description": "d"}))
    assert row["description"] == "d"
    assert row["extra"] == {"description.x": 1}


# --------------------------------------------------------------------------------------
# Whole rows of the seed tables and the sync columns
# --------------------------------------------------------------------------------------


def test_interaction_row() -> None:
    update = DatetimeWithNanoseconds(2026, 11, 24, 11, 0, 0, nanosecond=1, tzinfo=UTC)
    data = {
        "timestamp": TS,
        "message_in": "what's on today?",
        "message_out": "two tasks",
        "intent": "list_tasks",
        "language": "en",
        "duration_ms": 812,
        "model_used": "m-1",
        "tokens_in": 30,
        "tokens_out": 12.0,
        "error_code": None,
        "client": "ios",
    }
    doc = FirestoreDocument("user_interactions", "users/u1/interactions/i1", data, update)
    row = to_row(INTERACTIONS, doc)
    assert row == {
        "user_id": "u1",
        "interaction_id": "i1",
        "timestamp": TS_TEXT,
        "message_in": "what's on today?",
        "message_out": "two tasks",
        "intent": "list_tasks",
        "language": "en",
        "duration_ms": 812,
        "model_used": "m-1",
        "tokens_in": 30,
        "tokens_out": 12,
        "error_code": None,
        "extra": {"client": "ios"},
        "_document_path": "users/u1/interactions/i1",
        "_update_time": "2026-11-24T11:00:00.000000Z",
        "_run_id": RUN_ID,
        "_read_time": READ_TIME,
    }
    assert set(row) == set(INTERACTIONS.column_names)


@pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))
def test_minimal_document_of_every_shipped_table(spec: TableSpec) -> None:
    path = f"{spec.parent_collection}/u1/{spec.collection}/d1"
    doc = FirestoreDocument(spec.name, path, {spec.partition_column: TS})
    row = to_row(spec, doc)
    assert set(row) == set(spec.column_names)
    assert row[spec.id_column] == "d1"
    assert row["user_id"] == "u1"
    assert row["_update_time"] is None
    assert partition_day(spec, row) == datetime.date(2026, 11, 24)


# --------------------------------------------------------------------------------------
# document_day, partition_day
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "day"),
    [
        ({"created_at": TS}, datetime.date(2026, 11, 24)),
        ({"created_at": "2026-11-24T23:30:00-05:00"}, datetime.date(2026, 11, 25)),
        ({"created_at": datetime.datetime(1969, 12, 31, 23, 59)}, datetime.date(1969, 12, 31)),
        ({"created_at": datetime.datetime(5, 1, 1, tzinfo=UTC)}, datetime.date(5, 1, 1)),
        ({}, None),
        ({"created_at": None}, None),
        ({"created_at": "not a time"}, None),
        ({"created_at": "2026-11-24T10:00:00"}, None),
        ({"created_at": 1764000000}, None),
    ],
)
def test_document_day(data: dict[str, Any], day: datetime.date | None) -> None:
    # A document whose other fields are broken still has a day.
    doc = task_doc(**data, completed="broken")
    if "created_at" not in data:
        doc = FirestoreDocument("tasks", doc.path, {"completed": "broken"})
    assert document_day(TASKS, doc) == day


def test_document_day_of_a_date_partitioned_nested_source() -> None:
    raw = {
        "table": "daily",
        "id_column": "daily_id",
        "partition_column": "day",
        "field_map": {"day": ["meta", "day"]},
        "fields": [
            {"name": "user_id", "type": "STRING"},
            {"name": "daily_id", "type": "STRING"},
            {"name": "day", "type": "DATE", "mode": "REQUIRED"},
        ],
    }
    spec = parse_spec(raw)
    doc = FirestoreDocument("daily", "users/u/daily/d", {"meta": {"day": "2026-11-24"}})
    assert document_day(spec, doc) == datetime.date(2026, 11, 24)
    row = to_row(spec, doc)
    assert row["day"] == "2026-11-24"
    assert partition_day(spec, row) == datetime.date(2026, 11, 24)


@pytest.mark.parametrize(
    ("value", "day"),
    [(TS, datetime.date(2026, 11, 24)), (datetime.datetime(1960, 1, 1), datetime.date(1960, 1, 1))],
)
def test_partition_day_of_a_converted_row(value: Any, day: datetime.date) -> None:
    assert partition_day(TASKS, to_row(TASKS, task_doc(created_at=value))) == day


@pytest.mark.parametrize(
    "value",
    [datetime.datetime(1, 1, 1), datetime.datetime(1959, 12, 31, 23), "2160-01-01T00:00:00Z"],
)
def test_partition_day_outside_bigquerys_range_is_dead_lettered(value: Any) -> None:
    with pytest.raises(ConversionError) as info:
        to_row(TASKS, task_doc(created_at=value))
    assert info.value.field == "created_at"
    assert "outside BigQuery's partitionable range" in info.value.reason


# --------------------------------------------------------------------------------------
# raw_document_json (dead letters)
# --------------------------------------------------------------------------------------


def test_raw_document_json_of_a_hostile_document() -> None:
    data = {
        "nan": float("nan"),
        "inf": [float("inf"), float("-inf")],
        "blob": b"\x00\xff",
        "when": TS,
        "where": GEO,
        "who": REF,
        "text": "héllo 👋 \x00",
        "a.b`c d": {"deep": [None, True, 1, 2.5]},
        "big": INT64_MAX,
    }
    text = raw_document_json(FirestoreDocument("tasks", "users/u/tasks/t", data))
    parsed = json.loads(text)
    assert parsed == {
        "nan": "NaN",
        "inf": ["Infinity", "-Infinity"],
        "blob": {"bytes_base64": "AP8="},
        "when": TS_TEXT,
        "where": {"latitude": 48.8566, "longitude": 2.3522},
        "who": {"reference": "users/u/tasks/t"},
        "text": "héllo 👋 \x00",
        "a.b`c d": {"deep": [None, True, 1, 2.5]},
        "big": INT64_MAX,
    }
    assert "NaN" not in text.replace('"NaN"', "")  # no bare NaN token
    assert "héllo 👋" in text  # not \u-escaped
    assert list(parsed) == sorted(parsed)


def test_raw_document_json_of_a_one_mebibyte_string() -> None:
    big = "é" * (1 << 20)
    text = raw_document_json(FirestoreDocument("tasks", "users/u/tasks/t", {"s": big}))
    assert json.loads(text) == {"s": big}
    assert len(text) <= MAX_RAW_DOCUMENT_CHARS


def test_raw_document_json_is_cut_above_the_limit() -> None:
    big = "x" * (MAX_RAW_DOCUMENT_CHARS + 10)
    text = raw_document_json(FirestoreDocument("tasks", "users/u/tasks/t", {"s": big}))
    assert len(text) == MAX_RAW_DOCUMENT_CHARS + len("…[truncated]")
    assert text.startswith('{"s": "xxx')
    assert text.endswith("x…[truncated]")


def test_raw_document_json_exactly_at_the_limit_is_whole(monkeypatch) -> None:
    monkeypatch.setattr(conversion, "MAX_RAW_DOCUMENT_CHARS", 20)
    doc = FirestoreDocument("tasks", "users/u/tasks/t", {"s": "x" * 11})  # {"s": "xxxxxxxxxxx"}
    assert raw_document_json(doc) == '{"s": "' + "x" * 11 + '"}'
    doc = FirestoreDocument("tasks", "users/u/tasks/t", {"s": "x" * 12})
    assert raw_document_json(doc) == '{"s": "' + "x" * 12 + '"' + "…[truncated]"


def test_raw_document_json_of_an_unrepresentable_document() -> None:
    value: Any = 1
    for _ in range(150):
        value = [value]
    text = raw_document_json(FirestoreDocument("tasks", "users/u/tasks/t", {"deep": value}))
    assert json.loads(text) == {"unrepresentable": "nested deeper than 100 levels"}


def test_to_json_value_rejects_unknown_types() -> None:
    with pytest.raises(TypeError, match="unsupported Firestore value object"):
        to_json_value(object())


# --------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------

POLICY_SPEC = make_spec(
    [
        {"name": "secret", "type": "STRING", "policy": "drop"},
        {"name": "email", "type": "STRING", "policy": "hash"},
        {"name": "emails", "type": "STRING", "mode": "REPEATED", "policy": "hash"},
        {"name": "note", "type": "STRING", "policy": "keep"},
    ]
)
HASHER = hmac_hasher(b"k3y")


def policy_doc(**fields: Any) -> FirestoreDocument:
    return FirestoreDocument("probe", "users/u1/probe/p1", {"created_at": TS, **fields})


def _hmac(value: str, key: bytes = b"k3y") -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def test_hmac_hasher_is_keyed_sha256() -> None:
    assert HASHER("a@b.c") == _hmac("a@b.c")
    assert HASHER("a@b.c") == hmac_hasher(b"k3y")("a@b.c")
    assert HASHER("a@b.c") != hmac_hasher(b"other")("a@b.c")
    assert HASHER("a@b.c") != hashlib.sha256(b"a@b.c").hexdigest()
    assert len(HASHER("é👋")) == 64 and int(HASHER("é👋"), 16) >= 0


def test_policies_drop_hash_keep() -> None:
    doc = policy_doc(secret="s3cret", email="a@b.c", emails=["x", "y"], note="n")
    row = to_row(POLICY_SPEC, doc, HASHER)
    assert row["secret"] is None
    assert row["email"] == _hmac("a@b.c")
    assert row["emails"] == [_hmac("x"), _hmac("y")]
    assert row["note"] == "n"
    assert row["extra"] is None  # a dropped field does not leak through extra
    assert "s3cret" not in json.dumps(row) and "a@b.c" not in json.dumps(row)


@pytest.mark.parametrize(("field", "value"), [("email", "a@b.c"), ("emails", ["x"])])
def test_hash_policy_needs_a_hasher(field: str, value: Any) -> None:
    error = rejection(POLICY_SPEC, policy_doc(**{field: value}))
    assert (error.field, error.reason) == (field, "policy 'hash' needs a hash key")


def test_hash_policy_without_a_value_needs_no_hasher() -> None:
    row = to_row(POLICY_SPEC, policy_doc(email=None, secret=None))
    assert (row["email"], row["secret"], row["emails"]) == (None, None, [])


def test_policies_still_type_check() -> None:
    error = rejection(POLICY_SPEC, policy_doc(secret=1), HASHER)
    assert (error.field, error.reason) == ("secret", "expected string, got integer")
    error = rejection(POLICY_SPEC, policy_doc(email=b"x"), HASHER)
    assert (error.field, error.reason) == ("email", "expected string, got bytes")


# --------------------------------------------------------------------------------------
# field_map and the top-level layout
# --------------------------------------------------------------------------------------


def _chat_spec(layout: str = "per_user", **field_map: Any) -> TableSpec:
    raw = json.loads(json.dumps(_INTERACTIONS_RAW))
    raw["field_map"] = field_map
    if layout == "top_level":
        raw["source"] = {"collection": "chat_log", "layout": "top_level"}
    return parse_spec(raw, "chat.json")


_INTERACTIONS_RAW = {
    "table": "user_interactions",
    "source": {"collection": "interactions", "layout": "per_user", "parent_collection": "users"},
    "id_column": "interaction_id",
    "partition_column": "timestamp",
    "clustering": ["user_id", "intent"],
    "fields": [
        {"name": "user_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "interaction_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "timestamp", "type": "TIMESTAMP", "mode": "REQUIRED"},
        {"name": "message_in", "type": "STRING"},
        {"name": "intent", "type": "STRING"},
        {"name": "language", "type": "STRING"},
        {"name": "duration_ms", "type": "INT64"},
    ],
}


def test_field_map_renames_top_level_and_nested_fields() -> None:
    spec = _chat_spec(
        message_in="text", timestamp=["meta", "sent_at"], language=["meta", "locale", "lang"]
    )
    assert spec.column("message_in").source == ("text",)
    assert spec.column("timestamp").source == ("meta", "sent_at")
    data = {
        "text": "hello",
        "message_in": "a field with the column's own name is not the source",
        "meta": {"sent_at": TS, "locale": {"lang": "fr", "region": "CA"}, "client": "ios"},
        "intent": "greet",
    }
    row = to_row(spec, FirestoreDocument("user_interactions", "users/u/interactions/i", data))
    assert row["message_in"] == "hello"
    assert row["timestamp"] == TS_TEXT
    assert row["language"] == "fr"
    assert row["intent"] == "greet"
    assert row["extra"] == {
        "message_in": "a field with the column's own name is not the source",
        "meta": {"locale": {"region": "CA"}, "client": "ios"},
    }


def test_field_map_nested_source_consuming_the_whole_map_leaves_nothing() -> None:
    spec = _chat_spec(timestamp=["meta", "sent_at"])
    data = {"meta": {"sent_at": TS}}
    row = to_row(spec, FirestoreDocument("user_interactions", "users/u/interactions/i", data))
    assert row["extra"] is None


def test_field_map_nested_source_missing_or_not_a_map() -> None:
    spec = _chat_spec(language=["meta", "lang"])
    path = "users/u/interactions/i"
    row = to_row(spec, FirestoreDocument("user_interactions", path, {"timestamp": TS}))
    assert row["language"] is None
    row = to_row(
        spec, FirestoreDocument("user_interactions", path, {"timestamp": TS, "meta": "flat"})
    )
    assert row["language"] is None
    assert row["extra"] == {"meta": "flat"}


def test_field_map_errors_name_the_source_path() -> None:
    spec = _chat_spec(timestamp=["meta", "sent_at"], duration_ms="took")
    path = "users/u/interactions/i"
    missing = rejection(spec, FirestoreDocument("user_interactions", path, {"timestamp": TS}))
    assert (missing.field, missing.reason) == ("meta.sent_at", "missing partition value")
    bad = rejection(
        spec,
        FirestoreDocument("user_interactions", path, {"meta": {"sent_at": TS}, "took": "1s"}),
    )
    assert (bad.field, bad.reason) == ("took", "expected integer, got string")


def test_field_map_can_source_the_user_id_from_a_field() -> None:
    spec = _chat_spec(user_id="owner")
    data = {"timestamp": TS, "owner": "bob"}
    row = to_row(spec, FirestoreDocument("user_interactions", "users/u/interactions/i", data))
    assert row["user_id"] == "bob"  # the field wins over the path when mapped explicitly


def test_top_level_layout_takes_user_id_from_a_field() -> None:
    spec = _chat_spec("top_level")
    data = {"timestamp": TS, "user_id": "carol", "intent": "x", "source": "web"}
    row = to_row(spec, FirestoreDocument("user_interactions", "chat_log/c1", data))
    assert (row["user_id"], row["interaction_id"]) == ("carol", "c1")
    assert row["extra"] == {"source": "web"}
    assert row["_document_path"] == "chat_log/c1"


@pytest.mark.parametrize("path", ["users/u/chat_log/c1", "other/c1", "chat_log"])
def test_top_level_layout_rejects_other_paths(path: str) -> None:
    spec = _chat_spec("top_level")
    doc = FirestoreDocument("user_interactions", path, {"timestamp": TS, "user_id": "c"})
    error = rejection(spec, doc)
    assert (error.field, error.reason) == (
        "__name__",
        "path is outside the top-level collection chat_log",
    )


def test_top_level_layout_needs_the_user_id_field() -> None:
    spec = _chat_spec("top_level")
    doc = FirestoreDocument("user_interactions", "chat_log/c1", {"timestamp": TS})
    error = rejection(spec, doc)
    assert (error.field, error.reason) == ("user_id", "missing required field")
    doc = FirestoreDocument("user_interactions", "chat_log/c1", {"timestamp": TS, "user_id": 7})
    error = rejection(spec, doc)
    assert (error.field, error.reason) == ("user_id", "expected string, got integer")


# --------------------------------------------------------------------------------------
# convert_value directly
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        (Column("c", "STRING", source=("c",)), None, None),
        (Column("c", "STRING", mode="REPEATED", source=("c",)), None, []),
        (Column("c", "STRING", allowed_values=("a",), source=("c",)), None, None),
        (Column("c", "INT64", allowed_values=(1, 2), source=("c",)), 2.0, 2),
        (Column("c", "JSON", source=("c",)), [float("nan")], ["NaN"]),
    ],
)
def test_convert_value(column: Column, value: Any, expected: Any) -> None:
    assert convert_value(column, value) == expected


def test_convert_value_required_null() -> None:
    with pytest.raises(ValueError, match="required value is null"):
        convert_value(Column("c", "STRING", mode="REQUIRED", source=("c",)), None)
