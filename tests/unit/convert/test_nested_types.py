"""RECORD, REPEATED RECORD, GEOGRAPHY, BYTES and timestamp sources (issue 25, Types).

Pure: documents are built as google-cloud-firestore returns them and turned into
rows by :func:`document_to_row`; no server.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud.firestore_v1 import GeoPoint

from pipelines.convert import time_source
from pipelines.convert.conversion import (
    CREATE_TIME_FIELD,
    ConversionError,
    convert_value,
    dead_letter_day,
    document_to_row,
    hmac_hasher,
    protected,
)
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import TableSpec, parse_spec
from pipelines.services import bigquery as bq

UTC = datetime.UTC
TS = DatetimeWithNanoseconds(2026, 11, 24, 10, 30, 15, nanosecond=123456789, tzinfo=UTC)
#: 2026-11-24T10:30:15.123Z in milliseconds and seconds since the epoch.
MILLIS = 1795516215123
SECONDS = 1795516215
CREATED = datetime.datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def workouts(*fields: dict[str, Any], **overrides: Any) -> TableSpec:
    """A per-user ``workouts`` table, camelCase in Firestore, with extra columns."""
    raw: dict[str, Any] = {
        "table": "workouts",
        "id_column": "workout_id",
        "partition_column": "started_at",
        "field_map": {"started_at": "startedAt"},
        "fields": [
            {"name": "user_id", "type": "STRING", "mode": "REQUIRED"},
            {"name": "workout_id", "type": "STRING", "mode": "REQUIRED"},
            {"name": "started_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
            *fields,
        ],
    }
    for key, value in overrides.items():
        if key == "field_map":
            raw["field_map"].update(value)
        else:
            raw[key] = value
    return parse_spec(raw, "workouts.json")


STATS = {
    "name": "stats",
    "type": "RECORD",
    "fields": [
        {"name": "heart_rate_avg", "type": "INT64"},
        {"name": "max_hr", "type": "INT64", "mode": "REQUIRED"},
        {"name": "zones", "type": "RECORD", "fields": [{"name": "z1", "type": "FLOAT64"}]},
        {"name": "labels", "type": "STRING", "mode": "REPEATED"},
    ],
}
LAPS = {
    "name": "laps",
    "type": "STRUCT",
    "mode": "REPEATED",
    "fields": [
        {"name": "distance_m", "type": "FLOAT64"},
        {"name": "ended_at", "type": "TIMESTAMP", "timestamp_source": "epoch_millis"},
    ],
}
SPEC = workouts(
    STATS,
    LAPS,
    {"name": "place", "type": "GEOGRAPHY"},
    {"name": "route", "type": "GEOGRAPHY", "mode": "REPEATED"},
    {"name": "photo", "type": "BYTES"},
    field_map={
        "stats.heart_rate_avg": "heartRateAvg",
        "stats.max_hr": "maxHr",
        "laps.distance_m": "distanceM",
        "laps.ended_at": ["times", "end"],
    },
)


def doc(data: dict[str, Any], create_time: datetime.datetime | None = None) -> FirestoreDocument:
    return FirestoreDocument(
        "workouts", "users/u1/workouts/w1", {"startedAt": TS, **data}, create_time=create_time
    )


def row_of(spec: TableSpec, document: FirestoreDocument, hasher=None) -> dict[str, Any]:
    row = document_to_row(spec, document, "run_1", "2026-11-25T02:00:00.000000Z", hasher)
    bq.encode_row(row)  # every row must be loadable as newline-delimited JSON
    return row


def rejection(spec: TableSpec, document: FirestoreDocument) -> tuple[str, str]:
    with pytest.raises(ConversionError) as info:
        row_of(spec, document)
    return info.value.field, info.value.reason


# --------------------------------------------------------------------------------------
# RECORD: a map's keys as sub-fields
# --------------------------------------------------------------------------------------


def test_a_map_becomes_a_record_and_its_undeclared_keys_stay_in_extra() -> None:
    row = row_of(
        SPEC,
        doc({"stats": {"heartRateAvg": 150.0, "maxHr": 180, "zones": {"z1": 3, "z9": 1},
                       "labels": ["easy"], "cadence": 88}}),
    )  # fmt: skip
    assert row["stats"] == {
        "heart_rate_avg": 150, "max_hr": 180, "zones": {"z1": 3.0}, "labels": ["easy"]
    }  # fmt: skip
    assert row["extra"] == {"stats": {"cadence": 88, "zones": {"z9": 1}}}


def test_a_missing_or_null_map_is_a_null_record_and_missing_keys_are_null() -> None:
    assert row_of(SPEC, doc({}))["stats"] is None
    assert row_of(SPEC, doc({"stats": None}))["stats"] is None
    assert row_of(SPEC, doc({"stats": {"maxHr": 1}}))["stats"] == {
        "heart_rate_avg": None, "max_hr": 1, "zones": None, "labels": []
    }  # fmt: skip


@pytest.mark.parametrize(
    ("stats", "field", "reason"),
    [
        ("fast", "stats", "expected map, got string"),
        ([{"maxHr": 1}], "stats", "expected map, got array"),
        ({"heartRateAvg": 1}, "stats.maxHr", "missing required field"),
        ({"maxHr": None}, "stats.maxHr", "required value is null"),
        ({"maxHr": "180"}, "stats.maxHr", "expected integer, got string"),
        ({"maxHr": 1, "zones": {"z1": "hot"}}, "stats.zones.z1", "expected double, got string"),
        ({"maxHr": 1, "zones": 3}, "stats.zones", "expected map, got integer"),
        ({"maxHr": 1, "labels": ["a", None]}, "stats.labels",
         "array element 1 is null; BigQuery arrays cannot hold NULL"),
    ],
)  # fmt: skip
def test_a_bad_sub_field_is_a_dead_letter_naming_its_firestore_path(
    stats: Any, field: str, reason: str
) -> None:
    assert rejection(SPEC, doc({"stats": stats})) == (field, reason)


# --------------------------------------------------------------------------------------
# REPEATED RECORD: arrays of maps; arrays of arrays are not representable
# --------------------------------------------------------------------------------------


def test_an_array_of_maps_becomes_a_repeated_record_and_leftovers_keep_their_place() -> None:
    laps = [
        {"distanceM": 400, "times": {"end": MILLIS, "start": 1}},
        {"distanceM": 1.5, "note": "windy"},
        {},
    ]
    row = row_of(SPEC, doc({"laps": laps}))
    assert row["laps"] == [
        {"distance_m": 400.0, "ended_at": "2026-11-24T10:30:15.123000Z"},
        {"distance_m": 1.5, "ended_at": None},
        {"distance_m": None, "ended_at": None},
    ]
    assert row["extra"] == {"laps": [{"times": {"start": 1}}, {"note": "windy"}, {}]}
    assert row_of(SPEC, doc({"laps": []}))["laps"] == []
    assert row_of(SPEC, doc({"laps": None}))["laps"] == []


@pytest.mark.parametrize(
    ("laps", "field", "reason"),
    [
        ([[{"distanceM": 1}]], "laps", "array element 0: expected map, got array"),
        ([{}, None], "laps", "array element 1 is null; BigQuery arrays cannot hold NULL"),
        ({"0": {}}, "laps", "expected array, got map"),
        ([{}, {"distanceM": "far"}], "laps.distanceM",
         "array element 1: expected double, got string"),
        ([{"times": {"end": "soon"}}], "laps.times.end",
         "array element 0: expected epoch milliseconds (a number), got string"),
    ],
)  # fmt: skip
def test_bad_elements_of_an_array_of_maps_are_dead_letters_naming_the_path(
    laps: Any, field: str, reason: str
) -> None:
    assert rejection(SPEC, doc({"laps": laps})) == (field, reason)


def test_an_array_of_arrays_in_a_repeated_scalar_column_names_the_field() -> None:
    spec = workouts({"name": "splits", "type": "FLOAT64", "mode": "REPEATED"})
    assert rejection(spec, doc({"splits": [1.0, [2.0, 3.0]]})) == (
        "splits", "array element 1: expected double, got array"
    )  # fmt: skip
    # Declared JSON, the same array is kept whole.
    spec = workouts({"name": "splits", "type": "JSON"})
    assert row_of(spec, doc({"splits": [1.0, [2.0, 3.0]]}))["splits"] == [1.0, [2.0, 3.0]]


# --------------------------------------------------------------------------------------
# GEOGRAPHY and BYTES
# --------------------------------------------------------------------------------------


def test_a_geopoint_becomes_wkt_longitude_first() -> None:
    row = row_of(SPEC, doc({"place": GeoPoint(48.8566, 2.3522),
                            "route": [GeoPoint(0.0, -0.5), GeoPoint(-33.9, 151.2)]}))  # fmt: skip
    assert row["place"] == "POINT(2.3522 48.8566)"
    assert row["route"] == ["POINT(-0.5 0.0)", "POINT(151.2 -33.9)"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"latitude": 1.0, "longitude": 2.0}, "expected geopoint, got map"),
        ("POINT(1 2)", "expected geopoint, got string"),
        ([1.0, 2.0], "expected geopoint, got array"),
    ],
)
def test_geography_takes_geopoints_only(value: Any, reason: str) -> None:
    assert rejection(SPEC, doc({"place": value})) == ("place", reason)


def test_bytes_become_base64() -> None:
    assert row_of(SPEC, doc({"photo": b"\x00\xffhi"}))["photo"] == "AP9oaQ=="
    assert row_of(SPEC, doc({"photo": b""}))["photo"] == ""
    assert rejection(SPEC, doc({"photo": "aGk="})) == ("photo", "expected bytes, got string")


# --------------------------------------------------------------------------------------
# Timestamp sources
# --------------------------------------------------------------------------------------

EPOCHS = workouts(
    {"name": "updated_at", "type": "TIMESTAMP", "timestamp_source": "epoch_seconds"},
    {"name": "born_on", "type": "DATE", "timestamp_source": "epoch_millis"},
    field_map={"updated_at": "updatedAt", "born_on": "bornOn"},
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MILLIS, "2026-11-24T10:30:15.123000Z"),
        (float(MILLIS), "2026-11-24T10:30:15.123000Z"),
        (MILLIS + 0.5, "2026-11-24T10:30:15.123500Z"),
        (0, "1970-01-01T00:00:00.000000Z"),
        (-1, "1969-12-31T23:59:59.999000Z"),
    ],
)
def test_epoch_millis_partition_column(value: Any, expected: str) -> None:
    spec = workouts(
        fields=[
            {"name": "user_id", "type": "STRING", "mode": "REQUIRED"},
            {"name": "workout_id", "type": "STRING", "mode": "REQUIRED"},
            {"name": "started_at", "type": "TIMESTAMP", "mode": "REQUIRED",
             "timestamp_source": "epoch_millis"},
        ],
    )  # fmt: skip
    assert spec.supports_incremental and spec.range_fields == ("startedAt",)
    row = row_of(spec, doc({"startedAt": value}))
    assert row["started_at"] == expected
    day = datetime.date.fromisoformat(expected[:10])
    if day.year >= 1960:
        assert dead_letter_day(spec, doc({"startedAt": value})) == day


def test_epoch_seconds_and_a_date_from_epoch_millis() -> None:
    row = row_of(EPOCHS, doc({"updatedAt": SECONDS, "bornOn": MILLIS}))
    assert row["updated_at"] == "2026-11-24T10:30:15.000000Z"
    assert row["born_on"] == "2026-11-24"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (TS, "expected epoch seconds (a number), got timestamp"),
        ("1795516215", "expected epoch seconds (a number), got string"),
        (True, "expected epoch seconds (a number), got boolean"),
        (float("nan"), "epoch seconds nan is not a time"),
        (10**18, "epoch seconds 1000000000000000000 is outside 0001-01-01..9999-12-31"),
    ],
)
def test_an_epoch_column_takes_numbers_only(value: Any, reason: str) -> None:
    assert rejection(EPOCHS, doc({"updatedAt": value})) == ("updatedAt", reason)


def test_query_bounds_are_encoded_in_the_columns_unit() -> None:
    day = datetime.datetime(2026, 11, 24, tzinfo=UTC)
    assert time_source.query_value("epoch_millis", day) == 1795478400000
    assert time_source.query_value("epoch_seconds", day) == 1795478400
    assert time_source.query_value("", day) is day
    odd = day + datetime.timedelta(microseconds=1500)
    assert time_source.query_value("epoch_millis", odd) == 1795478400001.5
    assert time_source.query_value("epoch_seconds", odd) == pytest.approx(1795478400.0015)
    assert time_source.instant_of("epoch_millis", 1795478400000) == day
    assert time_source.instant_of("epoch_millis", TS) is None  # a range query on numbers skips it
    assert time_source.instant_of("", TS) == TS
    assert time_source.instant_of("", MILLIS) is None


def test_a_create_time_partition_column_reads_the_documents_create_time() -> None:
    spec = workouts(
        {"name": "created_at", "type": "TIMESTAMP", "timestamp_source": "create_time"},
        partition_column="created_at",
    )
    assert not spec.supports_incremental and spec.range_fields == ()
    document = doc({"created_at": "a field of that name goes to extra"}, create_time=CREATED)
    row = row_of(spec, document)
    assert row["created_at"] == "2026-11-20T08:00:00.000000Z"
    assert row["extra"] == {"created_at": "a field of that name goes to extra"}
    assert dead_letter_day(spec, document) == CREATED.date()
    assert rejection(spec, doc({})) == (CREATE_TIME_FIELD, "missing partition value")


# --------------------------------------------------------------------------------------
# Policies, dead letters and the load form
# --------------------------------------------------------------------------------------


def test_a_dropped_record_sends_nothing_of_its_map_to_extra_or_dead_letters() -> None:
    spec = workouts({**STATS, "policy": "drop"}, field_map={"stats.max_hr": "maxHr"})
    stats = {"maxHr": 180, "secret": "kept nowhere"}
    row = row_of(spec, doc({"stats": stats}))
    assert row["stats"] is None and row["extra"] is None
    assert "stats" not in protected(spec, {"stats": stats, "startedAt": TS}, None)


def test_a_hashed_top_level_column_reads_inside_a_record_the_record_does_not_declare() -> None:
    """Policies are top-level: a personal key inside a map is hashed by reading it
    into its own column; the RECORD leaves it out, and so does ``extra``."""
    spec = workouts(
        {"name": "coach", "type": "RECORD", "fields": [{"name": "name", "type": "STRING"}]},
        {"name": "coach_email", "type": "STRING", "policy": "hash"},
        field_map={"coach_email": ["coach", "email"]},
    )
    hasher = hmac_hasher(b"k")
    row = row_of(spec, doc({"coach": {"name": "Ana", "email": "a@x"}}), hasher)
    assert row["coach"] == {"name": "Ana"}
    assert row["coach_email"] == hasher("a@x")
    assert row["extra"] is None


def test_convert_value_of_a_record_raises_the_standard_errors() -> None:
    """Callers that catch TypeError/ValueError (document_day, the drift check) still do."""
    with pytest.raises(TypeError):
        convert_value(SPEC.column("stats"), {"maxHr": "x"})
    with pytest.raises(ValueError):
        convert_value(SPEC.column("stats"), {})


def test_the_bigquery_schema_nests_record_fields() -> None:
    schema = {f["name"]: f for f in SPEC.bigquery_schema()}
    assert schema["laps"] == {
        "name": "laps", "type": "RECORD", "mode": "REPEATED", "description": "",
        "fields": [
            {"name": "distance_m", "type": "FLOAT64", "mode": "NULLABLE", "description": ""},
            {"name": "ended_at", "type": "TIMESTAMP", "mode": "NULLABLE", "description": ""},
        ],
    }  # fmt: skip
    assert schema["place"]["type"] == "GEOGRAPHY" and schema["photo"]["type"] == "BYTES"
    fields = bq.schema_fields(SPEC.bigquery_schema())
    assert [f.name for f in next(f for f in fields if f.name == "stats").fields] == [
        "heart_rate_avg", "max_hr", "zones", "labels"
    ]  # fmt: skip
    json.dumps(SPEC.bigquery_schema())
