"""Range queries on an epoch partition or change field compare numbers (issue 25, Types).

Built offline: the query's protobuf shows the bounds Firestore would receive.
"""

from __future__ import annotations

import datetime
from typing import Any

import google.auth.credentials
import pytest
from google.cloud import firestore

from pipelines.convert.table_spec import parse_spec
from pipelines.services import firestore as fs

UTC = datetime.UTC
DAY = (datetime.datetime(2026, 11, 24, tzinfo=UTC), datetime.datetime(2026, 11, 25, tzinfo=UTC))
CLIENT = firestore.Client(project="p", credentials=google.auth.credentials.AnonymousCredentials())


def spec_with(source: str | None) -> Any:
    started: dict[str, Any] = {"name": "started_at", "type": "TIMESTAMP", "mode": "REQUIRED"}
    updated: dict[str, Any] = {"name": "updated_at", "type": "TIMESTAMP"}
    if source:
        started["timestamp_source"] = updated["timestamp_source"] = source
    return parse_spec({
        "table": "workouts", "id_column": "workout_id", "partition_column": "started_at",
        "change_field": "updated_at", "field_map": {"started_at": "startedAt",
                                                    "updated_at": "updatedAt"},
        "fields": [{"name": "user_id", "type": "STRING"},
                   {"name": "workout_id", "type": "STRING"}, started, updated],
    })  # fmt: skip


def bounds(spec: Any, field: str, start: Any, end: Any) -> list[Any]:
    where = fs.field_range_query(CLIENT, spec, field, start, end)._to_protobuf().where
    filters = [f.field_filter for f in where.composite_filter.filters] or [where.field_filter]
    out = []
    for f in filters:
        value = f.value
        kind = value._pb.WhichOneof("value_type")
        out.append((f.field.field_path, f.op.name, kind, getattr(value._pb, kind)))
    return out


@pytest.mark.parametrize(
    ("source", "kind", "low", "high"),
    [
        ("epoch_millis", "integer_value", 1795478400000, 1795564800000),
        ("epoch_seconds", "integer_value", 1795478400, 1795564800),
    ],
)
def test_a_days_range_on_an_epoch_field_is_bounded_by_numbers(source, kind, low, high) -> None:
    spec = spec_with(source)
    assert spec.supports_incremental and spec.range_fields == ("startedAt", "updatedAt")
    assert bounds(spec, "startedAt", *DAY) == [
        ("startedAt", "GREATER_THAN_OR_EQUAL", kind, low),
        ("startedAt", "LESS_THAN", kind, high),
    ]


def test_a_watermark_between_units_is_an_exact_double_bound() -> None:
    since = DAY[0] + datetime.timedelta(microseconds=250)
    (bound,) = bounds(spec_with("epoch_millis"), "updatedAt", since, None)
    assert bound == ("updatedAt", "GREATER_THAN_OR_EQUAL", "double_value", 1795478400000.25)


def test_a_timestamp_field_keeps_timestamp_bounds() -> None:
    low, high = bounds(spec_with(None), "startedAt", *DAY)
    assert (low[2], high[2]) == ("timestamp_value", "timestamp_value")
