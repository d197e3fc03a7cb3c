"""``schema check`` on the new types and keys (issue 25, Types): RECORD sub-fields,
their ``field_map`` keys, ``timestamp_source``, GEOGRAPHY and BYTES. Every problem of
a file at once, as for the other keys. Unit tests, no server."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import schema_check
from pipelines.convert.table_spec import SchemaError, parse_spec

WORKOUTS: dict[str, Any] = {
    "table": "workouts",
    "source": {"collection": "workouts"},
    "id_column": "workout_id",
    "partition_column": "started_at",
    "change_field": "updated_at",
    "clustering": ["user_id"],
    "fields": [
        {"name": "user_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "workout_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "started_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
        {"name": "updated_at", "type": "TIMESTAMP"},
        {"name": "distance_km", "type": "FLOAT64"},
    ],
}
STATS = {
    "name": "stats",
    "type": "RECORD",
    "fields": [{"name": "heart_rate_avg", "type": "INT64"}, {"name": "max_hr", "type": "INT64"}],
}


def workouts(*fields: dict[str, Any], **changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(WORKOUTS)
    raw["fields"] += copy.deepcopy(list(fields))
    raw.update(copy.deepcopy(changes))
    return raw


def write(folder: Path, name: str, content: dict[str, Any]) -> None:
    (folder / name).write_text(json.dumps(content), encoding="utf-8")


def problems_of(raw: Any) -> list[str]:
    with pytest.raises(SchemaError) as info:
        parse_spec(raw, "workouts.json")
    return [str(p) for p in info.value.problems]


def test_a_record_with_sub_fields_and_dotted_field_map_keys_is_accepted() -> None:
    laps = {"name": "laps", "type": "STRUCT", "mode": "REPEATED",
            "fields": [{"name": "distance_m", "type": "FLOAT64"}]}  # fmt: skip
    spec = parse_spec(workouts(STATS, laps, field_map={
        "stats": "workoutStats", "stats.heart_rate_avg": "heartRateAvg",
        "stats.max_hr": ["hr", "max"], "laps.distance_m": "distanceM",
    }))  # fmt: skip
    stats = spec.column("stats")
    assert (stats.type, stats.source) == ("RECORD", ("workoutStats",))
    assert [(f.name, f.source) for f in stats.fields] == [
        ("heart_rate_avg", ("heartRateAvg",)), ("max_hr", ("hr", "max"))
    ]  # fmt: skip
    assert spec.column("laps").type == "RECORD" and spec.column("laps").repeated


def test_every_problem_of_the_new_keys_at_once() -> None:
    raw = workouts(
        {"name": "empty", "type": "RECORD"},
        {"name": "stats", "type": "RECORD", "fields": [
            {"name": "hr", "type": "INT64", "policy": "hash"},
            {"name": "HR", "type": "INT64"},
            {"name": "at", "type": "TIMESTAMP", "timestamp_source": "create_time"},
        ]},
        {"name": "kind", "type": "STRING", "fields": [{"name": "x", "type": "STRING"}]},
        {"name": "rec", "type": "RECORD", "allowed_values": ["a"], "fields": STATS["fields"]},
        {"name": "seen_at", "type": "TIMESTAMP", "timestamp_source": "epoch_milis"},
        {"name": "label", "type": "STRING", "timestamp_source": "epoch_millis"},
        {"name": "made", "type": "TIMESTAMP", "mode": "REPEATED",
         "timestamp_source": "create_time"},
        field_map={"stats.heart": "heart", "made": "madeAt"},
    )  # fmt: skip
    lines = problems_of(raw)
    expected = [
        'workouts.json: fields[5]: a RECORD column needs "fields": [{"name": …, "type": …}, …]',
        "workouts.json: fields[6].fields[0].policy: policies apply to top-level columns only: "
        "put 'drop' on the RECORD column 'stats', or read the field into a top-level column "
        "with a field_map path and give that column the policy",
        "workouts.json: fields[6].fields[1].name: sub-field 'HR' is duplicated: fields[0] "
        "declares it too",
        "workouts.json: fields[6].fields[2].timestamp_source: create_time fills a top-level, "
        "non-REPEATED column",
        "workouts.json: fields[7].fields: only a RECORD column has sub-fields, not STRING",
        "workouts.json: fields[8].allowed_values: a RECORD column takes no allowed_values",
        "workouts.json: fields[9].timestamp_source: unknown timestamp source 'epoch_milis' "
        "(did you mean 'epoch_millis'?); allowed: epoch_millis: ",
        "workouts.json: fields[10].timestamp_source: timestamp_source applies to TIMESTAMP and "
        "DATE columns only, not STRING",
        "workouts.json: fields[11].timestamp_source: create_time fills a top-level, "
        "non-REPEATED column",
        "workouts.json: field_map.made: a create_time column reads no field",
        "workouts.json: field_map['stats.heart']: unknown column: field_map keys are declared "
        "column names (record.sub_field for a sub-field) (did you mean 'stats.hr'?)",
    ]
    for start in expected:
        assert sum(line.startswith(start) for line in lines) == 1, (start, lines)
    assert len(lines) == len(expected), lines


def test_roles_a_record_geography_or_create_time_column_cannot_take() -> None:
    lines = problems_of(workouts(
        STATS,
        {"name": "made", "type": "TIMESTAMP", "timestamp_source": "create_time"},
        clustering=["stats"], change_field="made", id_column="stats",
    ))  # fmt: skip
    assert lines[0].startswith("workouts.json: id_column: column 'stats' receives the document id")
    assert lines[1].startswith("workouts.json: change_field: 'made' holds the document's create "
                               "time, which never moves")  # fmt: skip
    assert lines[2].startswith("workouts.json: clustering[0]: BigQuery cannot cluster on NULLABLE "
                               "RECORD column 'stats'")  # fmt: skip
    assert len(lines) == 3
    geo = parse_spec(workouts({"name": "place", "type": "GEOGRAPHY"}, clustering=["place"]))
    assert geo.clustering == ("place",)


def test_records_nest_at_most_fifteen_levels() -> None:
    leaf: dict[str, Any] = {"name": "x", "type": "INT64"}
    for _ in range(15):
        leaf = {"name": "r", "type": "RECORD", "fields": [leaf]}
    (line,) = problems_of(workouts(leaf))
    assert "RECORD columns nest at most 15 levels deep in BigQuery" in line
    parse_spec(workouts(leaf["fields"][0]))  # 14 RECORD levels and the leaf: fine


def test_schema_check_says_how_a_table_with_a_timestamp_source_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = [f for f in WORKOUTS["fields"] if f["name"] != "started_at"]
    created = workouts(table="created", change_field=None, partition_column="created_at")
    created["fields"] = [*fields, {"name": "created_at", "type": "TIMESTAMP",
                                   "timestamp_source": "create_time"}]  # fmt: skip
    epoch = workouts(table="epoch")
    epoch["fields"][2]["timestamp_source"] = "epoch_millis"
    write(tmp_path, "created.json", created)
    write(tmp_path, "epoch.json", epoch)
    assert schema_check.main(["check", "--schemas_dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "created: 5 columns (+5 sync columns), from users/{user_id}/workouts, partitioned by "
        "DAY(created_at) (TIMESTAMP from create_time), clustered by user_id, no change field, "
        "read whole every run (Firestore cannot query a document's create time)",
        "epoch: 5 columns (+5 sync columns), from users/{user_id}/workouts, partitioned by "
        "DAY(started_at) (TIMESTAMP from epoch_millis), clustered by user_id, change field "
        "updated_at",
    ]
