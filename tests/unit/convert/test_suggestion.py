"""``schema suggest``'s decisions, from sampled documents to a schema file (issue 25).

Pure: documents are built as google-cloud-firestore returns them; every proposal
must pass ``schema check`` and convert every sampled document with no dead letter.
"""

from __future__ import annotations

import datetime
import random
from typing import Any

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud.firestore_v1 import GeoPoint

from pipelines.convert.conversion import document_to_row, hmac_hasher
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.field_stats import FieldStats
from pipelines.convert.inference import choose, snake
from pipelines.convert.suggestion import (
    CollectionPath,
    parse_path,
    problems,
    suggest,
    update,
)
from pipelines.convert.table_spec import parse_spec

UTC = datetime.UTC
WORKOUTS = parse_path("users/{uid}/workouts")
BASE = 1_795_516_215_123  # 2026-11-24T10:30:15.123Z in milliseconds


def docs(*datas: dict[str, Any], path: CollectionPath = WORKOUTS) -> list[FirestoreDocument]:
    out = []
    for i, data in enumerate(datas):
        where = (f"users/u{i % 3}/workouts/w{i}" if path.layout == "per_user"
                 else f"{path.collection}/d{i}")  # fmt: skip
        out.append(FirestoreDocument("t", where, data, create_time=datetime.datetime(
            2026, 11, 20, tzinfo=UTC)))  # fmt: skip
    return out


def proposed(documents: list[FirestoreDocument], path: CollectionPath = WORKOUTS):
    """The suggestion, checked: schema check accepts it and every document converts."""
    result = suggest(path, documents)
    assert problems(result.schema, "suggested.json") == []
    spec = parse_spec(result.schema)
    for doc in documents:
        document_to_row(spec, doc, "r", "t", hmac_hasher(b"k"))
    return result, spec


def column(result, name: str) -> dict[str, Any]:
    return next(f for f in result.schema["fields"] if f["name"] == name)


def stats_of(*values: Any) -> FieldStats:
    stats = FieldStats()
    for value in values:
        stats.add(value)
    return stats


# --------------------------------------------------------------------------------------
# One field's type
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("count", [1, 2, None], ("INT64", "NULLABLE", "")),
        ("distance", [1, 2.5], ("FLOAT64", "NULLABLE", "")),
        ("done", [True, False], ("BOOL", "NULLABLE", "")),
        ("title", ["a", "b"], ("STRING", "NULLABLE", "")),
        ("day", ["2026-11-24", "2026-01-01"], ("DATE", "NULLABLE", "")),
        ("seenAt", ["2026-11-24T10:00:00+01:00", "2026-11-24T10:00:00Z"],
         ("TIMESTAMP", "NULLABLE", "")),
        ("seenAt", ["2026-11-24T10:00:00", "2026-11-24T10:00:00Z"], ("STRING", "NULLABLE", "")),
        ("seenAt", [datetime.datetime(2026, 1, 1, tzinfo=UTC), "2026-11-24T10:00:00Z"],
         ("TIMESTAMP", "NULLABLE", "")),
        ("startedAt", [BASE, BASE + 1.5], ("TIMESTAMP", "NULLABLE", "epoch_millis")),
        ("ts", [BASE // 1000], ("TIMESTAMP", "NULLABLE", "epoch_seconds")),
        ("score", [BASE], ("INT64", "NULLABLE", "")),  # looks like millis, named otherwise
        ("updatedAt", [5, 6], ("INT64", "NULLABLE", "")),  # named like time, not epoch
        ("place", [GeoPoint(1.0, 2.0)], ("GEOGRAPHY", "NULLABLE", "")),
        ("photo", [b"x"], ("BYTES", "NULLABLE", "")),
        ("tags", [["a"], [], ["b", "c"]], ("STRING", "REPEATED", "")),
        ("marks", [[BASE], [BASE + 1]], ("INT64", "REPEATED", "")),
        ("lapTimes", [[BASE], [BASE + 1]], ("TIMESTAMP", "REPEATED", "epoch_millis")),
        ("mixed", [1, "a"], ("JSON", "NULLABLE", "")),
        ("grid", [[[1, 2]], [[3]]], ("JSON", "NULLABLE", "")),
        ("holes", [["a", None]], ("JSON", "NULLABLE", "")),
        ("empty", [[], []], ("JSON", "NULLABLE", "")),
        ("nothing", [None, None], ("JSON", "NULLABLE", "")),
        ("odd", [["a", 1]], ("JSON", "NULLABLE", "")),
    ],
)  # fmt: skip
def test_the_type_of_one_field(name: str, values: list[Any], expected: tuple) -> None:
    choice = choose(stats_of(*values), name)
    assert (choice.type, choice.mode, choice.timestamp_source) == expected, choice.why
    assert choice.why


def test_maps_whose_keys_recur_are_records_and_maps_keyed_by_ids_stay_json() -> None:
    recurring = [{"heartRateAvg": i, "maxHr": 180} for i in range(10)]
    assert choose(stats_of(*recurring), "stats").type == "RECORD"
    by_id = [{f"{random.Random(i).getrandbits(64):016x}": 1} for i in range(10)]
    choice = choose(stats_of(*by_id), "byUser")
    assert choice.type == "JSON" and "keys" in choice.why
    auto_ids = [{"Xk2Pq9rT4mN8vB1cZ7wE": True, "aB3dE5fG7hJ9kL1mN3pQ": False}]
    assert choose(stats_of(*auto_ids), "members").type == "JSON"
    assert choose(stats_of({"2024": 1, "2025": 3}), "perYear").type == "JSON"
    laps = [[{"distanceM": 400, "lap": 1}, {"distanceM": 380, "lap": 2}]] * 3
    choice = choose(stats_of(*laps), "laps")
    assert (choice.type, choice.mode) == ("RECORD", "REPEATED")
    assert [key for key, _, _ in choice.fields] == ["distanceM", "lap"]


@pytest.mark.parametrize(
    ("field", "column"),
    [("heartRateAvg", "heart_rate_avg"), ("HTTPStatus", "http_status"), ("user-name", "user_name"),
     ("1stPlace", "f_1st_place"), ("já", "j"), ("__x__", "x"), ("", "field")],
)  # fmt: skip
def test_snake_case_column_names(field: str, column: str) -> None:
    assert snake(field) == column


# --------------------------------------------------------------------------------------
# The whole file
# --------------------------------------------------------------------------------------


def workout(i: int, **more: Any) -> dict[str, Any]:
    return {
        "startedAt": BASE + i * 3_600_000,
        "updatedAt": BASE + i * 3_600_000,
        "sportType": "run",
        "stats": {"heartRateAvg": 140 + i, "maxHr": 180, "coachEmail": f"c{i}@example.com"},
        "laps": [{"distanceM": 400.0, "lap": 1}],
        "place": GeoPoint(48.8566, 2.3522),
        "phone": "+33 6 12 34 56 78",
        "message": "felt strong today, the last lap was the fastest one",
        "userId": f"u{i % 3}",
        **more,
    }


def test_a_camel_case_collection_becomes_a_file_schema_check_accepts() -> None:
    sample = docs(*[workout(i) for i in range(12)])
    result, spec = proposed(sample)
    schema = result.schema
    assert (schema["table"], schema["id_column"], schema["partition_column"],
            schema["change_field"], schema["clustering"]) == (
        "workouts", "workout_id", "started_at", "updated_at", ["user_id"])  # fmt: skip
    assert schema["source"] == {"collection": "workouts", "layout": "per_user",
                                "parent_collection": "users"}  # fmt: skip
    assert column(result, "started_at") == {
        "name": "started_at", "type": "TIMESTAMP", "mode": "REQUIRED",
        "timestamp_source": "epoch_millis", "description": "From Firestore field startedAt.",
    }  # fmt: skip
    assert schema["field_map"]["started_at"] == "startedAt"
    assert schema["field_map"]["stats.heart_rate_avg"] == "heartRateAvg"
    assert [f["name"] for f in column(result, "stats")["fields"]] == ["heart_rate_avg", "max_hr"]
    # The e-mail inside the map is read into a top-level hashed column instead.
    assert column(result, "stats_coach_email")["policy"] == "hash"
    assert schema["field_map"]["stats_coach_email"] == ["stats", "coachEmail"]
    assert column(result, "phone")["policy"] == "hash"
    assert column(result, "message")["policy"] == "drop"
    assert column(result, "laps")["mode"] == "REPEATED"
    assert column(result, "place")["type"] == "GEOGRAPHY"
    assert "user_id_field" not in [f["name"] for f in schema["fields"]]  # userId: the path's
    report = "\n".join(result.report)
    for words in ("startedAt: integer 12; in 12 of 12, null 0% -> started_at TIMESTAMP from "
                  "epoch_millis", "partition column: started_at (from startedAt)",
                  "change field: updated_at (from updatedAt)", "personal data? stats.coachEmail",
                  "personal data? phone", "personal data? message", "F2BQ_HASH_KEY"):  # fmt: skip
        assert words in report, words
    assert spec.supports_incremental and spec.range_fields == ("startedAt", "updatedAt")


def test_without_a_creation_time_the_table_is_partitioned_by_create_time() -> None:
    sample = docs({"title": "a", "createdAt": BASE}, {"title": "b"},
                  path=parse_path("notes"))  # fmt: skip
    result, spec = proposed(sample, parse_path("notes"))
    assert column(result, "created_at_2") == {
        "name": "created_at_2", "type": "TIMESTAMP", "timestamp_source": "create_time",
        "description": "When Firestore created the document.",
    }  # fmt: skip
    assert spec.partition_column == "created_at_2" and not spec.supports_incremental
    report = "\n".join(result.report)
    assert "not the partition column: created_at (from createdAt): missing, null or outside " \
           "1960..2159 in 1 sampled documents" in report
    assert "Firestore's create time" in report and "read whole every run" in report
    assert "change field: none" in report
    assert "clustering" not in result.schema and result.schema["source"]["layout"] == "top_level"


def test_iso_string_times_are_typed_but_not_chosen_to_partition() -> None:
    sample = docs(*[{"createdAt": "2026-11-24T10:00:00Z", "updatedAt": "2026-11-24T11:00:00Z"}
                    for _ in range(3)])  # fmt: skip
    result, _ = proposed(sample)
    assert column(result, "created_at")["type"] == "TIMESTAMP"
    assert result.schema["partition_column"] == "created_at_2"
    assert "change_field" not in result.schema
    assert "stored as strings, which range queries cannot bound" in "\n".join(result.report)


def test_rare_fields_are_reported_and_proposed() -> None:
    sample = docs(*[{"createdAt": datetime.datetime(2026, 1, 1, tzinfo=UTC)}] * 40,
                  {"createdAt": DatetimeWithNanoseconds(2026, 1, 2, tzinfo=UTC),
                   "promo": "x"})  # fmt: skip
    result, _ = proposed(sample)
    assert column(result, "promo")["type"] == "STRING"
    assert "rare: in 2% of the sampled documents" in "\n".join(result.report)
    assert result.schema["partition_column"] == "created_at"


def test_names_that_clash_are_made_unique() -> None:
    sample = docs({"createdAt": BASE, "created_at": BASE, "extra": 1, "workoutId": "w0",
                   "where": GeoPoint(1.0, 2.0), "stats": {"from": 1, "to": 2}})  # fmt: skip
    result, _ = proposed(sample)
    names = [f["name"] for f in result.schema["fields"]]
    assert len(names) == len({n.lower() for n in names})
    assert "extra_field" in names  # a sync column's name
    assert "where_field" in names  # a reserved keyword
    assert [f["name"] for f in column(result, "stats")["fields"]] == ["from_field", "to_field"]
    assert result.schema["field_map"]["stats.from_field"] == "from"


def test_update_adds_only_what_the_file_lacks() -> None:
    first, _ = proposed(docs(*[workout(i) for i in range(5)]))
    existing = first.schema
    existing["fields"] = [f for f in existing["fields"] if f["name"] != "sport_type"]
    del existing["field_map"]["sport_type"]
    column(first, "started_at")["description"] = "hand-written"
    later = docs(*[workout(i, cadence=88, stats={"heartRateAvg": 1, "maxHr": 2, "vo2": 50})
                   for i in range(5)])  # fmt: skip
    merged = update(existing, suggest(WORKOUTS, later))
    assert problems(merged.schema, "workouts.json") == []
    added = [f["name"] for f in merged.schema["fields"]][len(existing["fields"]):]
    assert added == ["cadence", "sport_type"]
    assert merged.schema["field_map"]["sport_type"] == "sportType"
    assert column(merged, "started_at")["description"] == "hand-written"
    assert column(merged, "stats") == column(first, "stats")
    report = "\n".join(merged.report)
    assert report.startswith("--update: 2 columns added; nothing declared was changed")
    assert "stats: keys vo2 are not declared in the RECORD stats; not added" in report


@pytest.mark.parametrize(
    "path",
    ["users/{user_id}/workouts/{id}/sets", "users/u1/workouts", "users/{id}", "", "a b/c"],
)
def test_paths_the_sync_cannot_read_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="expected COLLECTION .* or PARENT/"):
        parse_path(path)
