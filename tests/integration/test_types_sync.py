"""The new column types end to end on the emulators (issue 25, Types).

A camelCase collection with epoch-millisecond partition and change fields, a map
(RECORD), an array of maps (REPEATED RECORD), a geopoint (GEOGRAPHY) and bytes
(BYTES); and a top-level collection without a creation time, partitioned by
Firestore's create time. A first run fills both; a nightly then reads the
workouts incrementally (range queries bounded in milliseconds), finds an edit and
a move by the change field, and the table equals a full rebuild at its snapshot.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from google.cloud.firestore_v1 import GeoPoint

from pipelines import firestore_to_bq
from pipelines.services import bigquery as bq
from tests.support.sync_helpers import PROJECT, seed, sync, table_rows, unique_dataset

UTC = datetime.UTC
#: Runs act as of tomorrow, so today (the create time of the sessions) is a past day.
NOW = datetime.datetime.now(UTC) + datetime.timedelta(days=1)

WORKOUTS = {
    "table": "workouts",
    "id_column": "workout_id",
    "partition_column": "started_at",
    "change_field": "updated_at",
    "clustering": ["user_id"],
    "field_map": {
        "started_at": "startedAt",
        "updated_at": "updatedAt",
        "stats.heart_rate_avg": "heartRateAvg",
        "laps.distance_m": "distanceM",
    },
    "fields": [
        {"name": "user_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "workout_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "started_at", "type": "TIMESTAMP", "mode": "REQUIRED",
         "timestamp_source": "epoch_millis"},
        {"name": "updated_at", "type": "TIMESTAMP", "timestamp_source": "epoch_millis"},
        {"name": "stats", "type": "RECORD", "fields": [
            {"name": "heart_rate_avg", "type": "INT64"},
            {"name": "zones", "type": "RECORD", "fields": [{"name": "z1", "type": "FLOAT64"}]},
        ]},
        {"name": "laps", "type": "RECORD", "mode": "REPEATED", "fields": [
            {"name": "distance_m", "type": "FLOAT64"}, {"name": "lap", "type": "INT64"},
        ]},
        {"name": "place", "type": "GEOGRAPHY"},
        {"name": "photo", "type": "BYTES"},
    ],
}  # fmt: skip
SESSIONS = {
    "table": "sessions",
    "source": {"layout": "top_level"},
    "id_column": "session_id",
    "partition_column": "created_at",
    "fields": [
        {"name": "session_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "created_at", "type": "TIMESTAMP", "timestamp_source": "create_time"},
        {"name": "device", "type": "STRING"},
    ],
}
#: Columns read back: GEOGRAPHY as text (see test_emulator_shortfalls), the rest as is.
COLUMNS = (
    "_document_path, workout_id, user_id, started_at, updated_at, stats, laps, "
    "ST_ASTEXT(place) AS place, photo, TO_JSON_STRING(extra) AS extra"
)


def _millis(at: datetime.datetime) -> int:
    return int(at.timestamp() * 1000)


def _day(offset: int, hour: int = 9) -> datetime.datetime:
    today = datetime.datetime.now(UTC).date()
    return datetime.datetime.combine(today + datetime.timedelta(days=offset),
                                     datetime.time(hour), UTC)  # fmt: skip


def _workout(offset: int, n: int) -> dict[str, Any]:
    at = _day(offset, 8 + n)
    return {
        "startedAt": _millis(at),
        "updatedAt": _millis(at),
        "stats": {"heartRateAvg": 140 + n, "maxHr": 180, "zones": {"z1": 0.5}},
        "laps": [{"distanceM": 400.0, "lap": 1, "split": 92}, {"distanceM": 400, "lap": 2}],
        "place": GeoPoint(48.8566, 2.3522),
        "photo": b"hi",
    }


def _schemas(tmp_path: Path) -> Path:
    for spec in (WORKOUTS, SESSIONS):
        (tmp_path / f"{spec['table']}.json").write_text(json.dumps(spec))
    return tmp_path


def _rows(client, dataset: str) -> list[dict[str, Any]]:
    sql = f"SELECT {COLUMNS} FROM {bq.table_sql(client.project, dataset, 'workouts')}"
    return sorted((dict(r) for r in bq.run_query(client, sql).result()),
                  key=lambda r: r["_document_path"])  # fmt: skip


def test_records_geography_bytes_and_epoch_partitions_sync_and_stay_incremental(
    firestore_db, bq_client, tmp_path
) -> None:
    db = firestore_db
    docs = {f"users/u{n}/workouts/w{-d}_{n}": _workout(d, n) for d in range(-6, -1)
            for n in (1, 2)}  # fmt: skip
    # Firestore refuses an array directly inside an array; an element of another kind
    # stands for a bad element here.
    docs["users/u1/workouts/bad_lap"] = {**_workout(-2, 3), "laps": [{"lap": 1}, "fast"]}
    seed(db, docs)
    seed(db, {"sessions/s1": {"device": "ios"}, "sessions/s2": {"device": "web"}})
    schemas = str(_schemas(tmp_path))
    dataset = unique_dataset("types")

    first = sync(dataset, "--schemas_dir", schemas, now=NOW)
    assert not first.config.window("workouts").incremental

    rows = {r["workout_id"]: r for r in _rows(bq_client, dataset)}
    assert set(rows) == {f"w{d}_{n}" for d in range(2, 7) for n in (1, 2)}
    row = rows["w2_1"]
    assert row["started_at"] == _day(-2, 9)
    assert row["stats"] == {"heart_rate_avg": 141, "zones": {"z1": 0.5}}
    assert row["laps"] == [{"distance_m": 400.0, "lap": 1}, {"distance_m": 400.0, "lap": 2}]
    # ST_ASTEXT: "POINT (…)" on bqemulator, "POINT(…)" on BigQuery.
    assert row["place"].replace("POINT (", "POINT(") == "POINT(2.3522 48.8566)"
    assert row["photo"] in (b"hi", b"aGk=")  # BigQuery decodes base64; bqemulator keeps it
    assert json.loads(row["extra"]) == {
        "stats": {"maxHr": 180}, "laps": [{"split": 92}, {}]
    }  # fmt: skip
    (dead,) = table_rows(bq_client, dataset, "_dead_letters")
    assert (dead["document_path"], dead["field"], dead["reason"]) == (
        "users/u1/workouts/bad_lap", "laps", "array element 1: expected map, got string"
    )  # fmt: skip
    sessions = table_rows(bq_client, dataset, "sessions")
    assert [(s["session_id"], s["device"]) for s in sessions] == [("s1", "ios"), ("s2", "web")]
    assert all(s["created_at"].date() == datetime.datetime.now(UTC).date() for s in sessions)

    # Edits the nightly must find by the epoch change field, and a new workout.
    now_millis = _millis(datetime.datetime.now(UTC))
    db.document("users/u1/workouts/w3_1").update(
        {"updatedAt": now_millis, "stats.heartRateAvg": 99}
    )
    db.document("users/u2/workouts/w3_2").update(
        {"updatedAt": now_millis, "startedAt": _millis(_day(-1, 7))}
    )
    seed(db, {"users/u2/workouts/w1_2": _workout(-1, 2)})

    nightly = firestore_to_bq.run(["--project", PROJECT, "--dataset", dataset,
                                   "--schemas_dir", schemas], now=NOW)  # fmt: skip
    assert nightly.reconciles, nightly.render()
    assert nightly.config.window("workouts").incremental
    assert not nightly.config.window("sessions").incremental  # create_time: read whole
    # The changes and the days whose counts changed, read by ranges in milliseconds:
    # not the 12 documents of the collection.
    workouts = next(t for t in nightly.tables if t.table == "workouts")
    assert workouts.read <= 7 and workouts.returned <= 8, nightly.render()

    rows = {r["workout_id"]: r for r in _rows(bq_client, dataset)}
    assert rows["w3_1"]["stats"]["heart_rate_avg"] == 99
    assert rows["w3_2"]["started_at"] == _day(-1, 7)
    assert "w1_2" in rows

    rebuilt = unique_dataset("types_rebuild")
    assert firestore_to_bq.main(["--project", PROJECT, "--dataset", rebuilt, "--schemas_dir",
                                 schemas, "--mode", "full", "--read_time",
                                 nightly.config.read_time_text], now=NOW) == 0  # fmt: skip
    assert _rows(bq_client, dataset) == _rows(bq_client, rebuilt)
