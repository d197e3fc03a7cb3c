"""Unit tests of pipelines.convert.table_spec: the shipped schemas and schema validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.convert.table_spec import (
    SYNC_COLUMNS,
    SchemaError,
    TableSpec,
    load_specs,
    parse_spec,
    select_specs,
)
from tests.support import example_app

SCHEMAS_DIR = example_app.SCHEMAS
SHIPPED = sorted(p.name for p in SCHEMAS_DIR.glob("*.json"))
SYNC = [
    ("extra", "JSON"),
    ("_document_path", "STRING"),
    ("_update_time", "TIMESTAMP"),
    ("_run_id", "STRING"),
    ("_read_time", "TIMESTAMP"),
]

SEED_TABLES: dict[str, dict[str, Any]] = {
    "user_interactions": {
        "collection": "interactions",
        "id": "interaction_id",
        "partition": "timestamp",
        "clustering": ("user_id", "intent"),
        "columns": [
            ("user_id", "STRING"),
            ("interaction_id", "STRING"),
            ("timestamp", "TIMESTAMP"),
            ("message_in", "STRING"),
            ("message_out", "STRING"),
            ("intent", "STRING"),
            ("language", "STRING"),
            ("duration_ms", "INT64"),
            ("model_used", "STRING"),
            ("tokens_in", "INT64"),
            ("tokens_out", "INT64"),
            ("error_code", "STRING"),
        ],
    },
    "tasks": {
        "collection": "tasks",
        "id": "task_id",
        "partition": "created_at",
        "clustering": ("user_id",),
        "columns": [
            ("user_id", "STRING"),
            ("task_id", "STRING"),
            ("description", "STRING"),
            ("date", "DATE"),
            ("time", "TIME"),
            ("duration_minutes", "INT64"),
            ("completed", "BOOL"),
            ("origin", "STRING"),
            ("routine_item_id", "STRING"),
            ("google_calendar_event_id", "STRING"),
            ("created_at", "TIMESTAMP"),
            ("updated_at", "TIMESTAMP"),
        ],
    },
    "emotional_memories": {
        "collection": "memories",
        "id": "memory_id",
        "partition": "timestamp",
        "clustering": None,  # not specified for this table
        "columns": [
            ("user_id", "STRING"),
            ("memory_id", "STRING"),
            ("description", "STRING"),
            ("emotional_valence", "FLOAT64"),
            ("trigger", "STRING"),
            ("context", "STRING"),
            ("timestamp", "TIMESTAMP"),
        ],
    },
}


@pytest.fixture(scope="module")
def specs() -> dict[str, TableSpec]:
    return load_specs()


# --------------------------------------------------------------------------------------
# Shipped schemas
# --------------------------------------------------------------------------------------


def test_every_shipped_schema_loads(specs: dict[str, TableSpec]) -> None:
    assert len(SHIPPED) == len(specs) >= 3
    assert set(SEED_TABLES) <= set(specs)
    assert load_specs(SCHEMAS_DIR) == specs


@pytest.mark.parametrize("filename", SHIPPED)
def test_shipped_schema_file_parses_on_its_own(filename: str) -> None:
    raw = json.loads((SCHEMAS_DIR / filename).read_text(encoding="utf-8"))
    spec = parse_spec(raw, filename)
    assert f"{spec.name}.json" == filename
    assert spec.partition.required and spec.partition.type in ("TIMESTAMP", "DATE")
    assert spec.column("user_id").required and spec.column(spec.id_column).required
    assert spec.layout == "per_user" and spec.parent_collection == "users"
    names = [c["name"] for c in spec.bigquery_schema()]
    assert len(names) == len({n.lower() for n in names})


@pytest.mark.parametrize("table", list(SEED_TABLES))
def test_seed_table_columns(specs: dict[str, TableSpec], table: str) -> None:
    expected = SEED_TABLES[table]
    spec = specs[table]
    schema = spec.bigquery_schema()
    assert [(f["name"], f["type"]) for f in schema] == expected["columns"] + SYNC
    assert spec.column_names == tuple(name for name, _ in expected["columns"] + SYNC)
    assert [(c.name, c.type) for c in spec.columns] == expected["columns"]
    assert spec.collection == expected["collection"]
    assert spec.id_column == expected["id"]
    assert spec.partition_column == expected["partition"]
    assert spec.partition.type == "TIMESTAMP"
    if expected["clustering"] is not None:
        assert spec.clustering == expected["clustering"]
    for field in schema:
        assert set(field) == {"name", "type", "mode", "description"}
        assert field["mode"] in ("NULLABLE", "REQUIRED", "REPEATED")


def test_sync_columns_are_the_last_five(specs: dict[str, TableSpec]) -> None:
    assert [(c["name"], c["type"]) for c in SYNC_COLUMNS] == SYNC
    for spec in specs.values():
        assert spec.bigquery_schema()[-5:] == [dict(c) for c in SYNC_COLUMNS]
    assert next(c for c in SYNC_COLUMNS if c["name"] == "_document_path")["mode"] == "REQUIRED"


def test_tasks_origin_allowed_values(specs: dict[str, TableSpec]) -> None:
    origin = specs["tasks"].column("origin")
    assert origin.allowed_values == ("user_added", "routine", "google_calendar")


def test_bigquery_schema_returns_copies(specs: dict[str, TableSpec]) -> None:
    spec = specs["tasks"]
    spec.bigquery_schema()[-1]["name"] = "changed"
    assert spec.bigquery_schema()[-1]["name"] == "_read_time"


# --------------------------------------------------------------------------------------
# parse_spec: a valid base and every way to break it
# --------------------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "table": "things",
    "source": {"collection": "things", "layout": "per_user", "parent_collection": "users"},
    "id_column": "thing_id",
    "partition_column": "created_at",
    "clustering": ["user_id"],
    "field_map": {},
    "fields": [
        {"name": "user_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "thing_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "label", "type": "STRING"},
        {"name": "count", "type": "INT64"},
        {"name": "created_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
        {"name": "updated_at", "type": "TIMESTAMP"},
    ],
}


def variant(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw.update(copy.deepcopy(changes))
    return raw


def with_field(**field: Any) -> dict[str, Any]:
    raw = variant()
    raw["fields"].append({"type": "STRING", **field})
    return raw


def test_base_is_valid() -> None:
    spec = parse_spec(BASE, "things.json")
    assert spec.name == "things"
    assert spec.column("count").source == ("count",)


@pytest.mark.parametrize(
    ("type_name", "canonical"),
    [
        ("STRING", "STRING"),
        ("string", "STRING"),
        ("INTEGER", "INT64"),
        ("INT64", "INT64"),
        ("FLOAT", "FLOAT64"),
        ("FLOAT64", "FLOAT64"),
        ("BOOLEAN", "BOOL"),
        ("BOOL", "BOOL"),
        ("TIMESTAMP", "TIMESTAMP"),
        ("DATE", "DATE"),
        ("TIME", "TIME"),
        ("JSON", "JSON"),
    ],
)
def test_type_aliases(type_name: str, canonical: str) -> None:
    raw = with_field(name="x", type=type_name)
    assert parse_spec(raw).column("x").type == canonical


def test_defaults() -> None:
    raw = variant(fields=BASE["fields"][:2] + BASE["fields"][4:])
    del raw["source"], raw["clustering"], raw["field_map"]
    raw["fields"].append({"name": "n", "type": "STRING"})
    spec = parse_spec(raw)
    assert spec.collection == "things" and spec.layout == "per_user"
    assert spec.parent_collection == "users"
    assert spec.clustering == ()
    n = spec.column("n")
    assert (n.mode, n.policy, n.source, n.allowed_values) == ("NULLABLE", "keep", ("n",), ())


BAD_NAMES = [
    "has`backtick",
    "`things`",
    "has space",
    "semi;colon",
    "a.b",
    "dash-ed",
    "1starts_with_digit",
    "",
    "things\n",
    "emoji👋",
    "t; DROP TABLE x; --",
    "x" * 301,
    None,
    7,
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n)[:20] for n in BAD_NAMES])
def test_bad_table_name(name: Any) -> None:
    with pytest.raises(SchemaError, match=r"things\.json: table: .* is not a valid BigQuery"):
        parse_spec(variant(table=name), "things.json")


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n)[:20] for n in BAD_NAMES])
def test_bad_column_name(name: Any) -> None:
    with pytest.raises(SchemaError, match=r"fields\[6\]\.name: .* is not a valid BigQuery"):
        parse_spec(with_field(name=name), "things.json")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("id_column", "thing id"),
        ("partition_column", "created_at`"),
        ("clustering", ["user_id; --"]),
    ],
)
def test_bad_identifiers_elsewhere(key: str, value: Any) -> None:
    path = r"clustering\[0\]" if key == "clustering" else key
    with pytest.raises(SchemaError, match=f"{path}: .* is not a valid BigQuery identifier"):
        parse_spec(variant(**{key: value}))


def test_long_valid_identifier_is_accepted() -> None:
    assert parse_spec(variant(table="t" * 300)).name == "t" * 300


@pytest.mark.parametrize("type_name", ["NUMERIC", "DATETIME", "", None, "int"])
def test_unknown_type(type_name: Any) -> None:
    with pytest.raises(SchemaError, match=r"fields\[6\]\.type: unsupported type"):
        parse_spec(with_field(name="x", type=type_name))


@pytest.mark.parametrize("mode", ["OPTIONAL", "ARRAY", "", "NULLABLE;"])
def test_unknown_mode(mode: str) -> None:
    with pytest.raises(SchemaError, match=r"fields\[6\]\.mode: unsupported mode"):
        parse_spec(with_field(name="x", mode=mode))


def test_mode_is_case_insensitive() -> None:
    assert parse_spec(with_field(name="x", mode="repeated")).column("x").repeated


@pytest.mark.parametrize("policy", ["encrypt", "HASH", "", None])
def test_unknown_policy(policy: Any) -> None:
    with pytest.raises(SchemaError, match="policy must be one of"):
        parse_spec(with_field(name="x", policy=policy))


@pytest.mark.parametrize("type_name", ["INT64", "FLOAT64", "BOOL", "TIMESTAMP", "DATE", "JSON"])
def test_hash_policy_on_non_string(type_name: str) -> None:
    with pytest.raises(SchemaError, match="policy 'hash' applies to STRING columns only"):
        parse_spec(with_field(name="x", type=type_name, policy="hash"))


def test_hash_and_drop_policies_on_string() -> None:
    raw = with_field(name="x", policy="hash")
    raw["fields"].append({"name": "y", "type": "INT64", "policy": "drop"})
    spec = parse_spec(raw)
    assert (spec.column("x").policy, spec.column("y").policy) == ("hash", "drop")


@pytest.mark.parametrize(
    "field_map",
    [{"nope": "label"}, {"label": "x", "Label": "y"}, {"extra": "x"}, {"_run_id": "x"}],
)
def test_field_map_naming_unknown_columns(field_map: dict[str, Any]) -> None:
    with pytest.raises(SchemaError, match=r"field_map\.\S+: unknown column"):
        parse_spec(variant(field_map=field_map))


@pytest.mark.parametrize("source", ["", [], ["a", ""], 5, None, {"a": "b"}])
def test_field_map_bad_source(source: Any) -> None:
    with pytest.raises(SchemaError, match=r"field_map\.label: expected a field name or a list"):
        parse_spec(variant(field_map={"label": source}))


def test_field_map_not_an_object() -> None:
    with pytest.raises(SchemaError, match="field_map: must be an object"):
        parse_spec(variant(field_map=["label"]))


def test_field_map_sources() -> None:
    spec = parse_spec(variant(field_map={"label": "title", "count": ["stats", "n"]}))
    assert spec.column("label").source == ("title",)
    assert spec.column("count").source == ("stats", "n")


@pytest.mark.parametrize(
    ("type_name", "mode"),
    [
        ("STRING", "REQUIRED"),
        ("INT64", "REQUIRED"),
        ("TIME", "REQUIRED"),
        ("JSON", "NULLABLE"),
        ("TIMESTAMP", "REPEATED"),
    ],
)
def test_partition_column_must_be_timestamp_or_date(type_name: str, mode: str) -> None:
    raw = variant(partition_column="day")
    raw["fields"].append({"name": "day", "type": type_name, "mode": mode})
    with pytest.raises(SchemaError, match="partition column must be a TIMESTAMP or DATE"):
        parse_spec(raw)


def test_date_partition_column_is_fine() -> None:
    raw = variant(partition_column="day")
    raw["fields"].append({"name": "day", "type": "DATE", "mode": "REQUIRED"})
    assert parse_spec(raw).partition.type == "DATE"


def test_partition_column_cannot_be_dropped() -> None:
    raw = variant()
    raw["fields"][4]["policy"] = "drop"
    with pytest.raises(SchemaError, match="partition column must keep its value"):
        parse_spec(raw)


@pytest.mark.parametrize("key", ["id_column", "partition_column", "clustering"])
def test_referenced_column_must_be_declared(key: str) -> None:
    value = ["ghost"] if key == "clustering" else "ghost"
    with pytest.raises(SchemaError, match="column 'ghost' is referenced but not declared"):
        parse_spec(variant(**{key: value}))


def test_user_id_column_must_be_declared() -> None:
    raw = variant()
    raw["fields"] = [f for f in raw["fields"] if f["name"] != "user_id"]
    raw["clustering"] = []
    with pytest.raises(SchemaError, match="column 'user_id' is referenced but not declared"):
        parse_spec(raw)


def test_at_most_four_clustering_columns() -> None:
    raw = variant(clustering=["user_id", "thing_id", "label", "count", "created_at"])
    with pytest.raises(SchemaError, match="clusters on at most 4 columns"):
        parse_spec(raw)
    raw["clustering"] = raw["clustering"][:4]
    assert len(parse_spec(raw).clustering) == 4


@pytest.mark.parametrize(
    "name",
    [
        "label",
        "LABEL",
        "User_Id",
        "extra",
        "Extra",
        "_document_path",
        "_update_time",
        "_run_id",
        "_READ_TIME",
    ],
)
def test_duplicated_or_reserved_column(name: str) -> None:
    with pytest.raises(SchemaError, match=f"column '{name}' is duplicated or reserved"):
        parse_spec(with_field(name=name))


@pytest.mark.parametrize(
    "collection", ["users/u1/tasks", "a/b", "/", "", "x" * 1501, 7, None, "nul\x00"]
)
def test_bad_collection_id(collection: Any) -> None:
    raw = variant(source={"collection": collection})
    with pytest.raises(SchemaError, match=r"source\.collection: .* is not a collection id"):
        parse_spec(raw)


@pytest.mark.parametrize("parent", ["users/x", "", 3])
def test_bad_parent_collection(parent: Any) -> None:
    with pytest.raises(SchemaError, match=r"source\.parent_collection: .* is invalid"):
        parse_spec(variant(source={"collection": "things", "parent_collection": parent}))


def test_collection_ids_may_hold_characters_identifiers_cannot() -> None:
    spec = parse_spec(variant(source={"collection": "chat log-2026.v1"}))
    assert spec.collection == "chat log-2026.v1"


@pytest.mark.parametrize("layout", ["flat", "", "PER_USER"])
def test_bad_layout(layout: str) -> None:
    with pytest.raises(SchemaError, match=r"source\.layout: unknown layout .*; allowed: per_user"):
        parse_spec(variant(source={"collection": "things", "layout": layout}))


@pytest.mark.parametrize("key", ["table", "fields", "id_column", "partition_column"])
def test_missing_key(key: str) -> None:
    raw = variant()
    del raw[key]
    with pytest.raises(SchemaError, match=f"things.json: missing key '{key}'"):
        parse_spec(raw, "things.json")


# --------------------------------------------------------------------------------------
# load_specs from a directory
# --------------------------------------------------------------------------------------


def test_load_specs_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "things.json").write_text(json.dumps(BASE))
    (tmp_path / "README.md").write_text("not a schema")
    specs = load_specs(tmp_path)
    assert list(specs) == ["things"]
    assert load_specs(str(tmp_path)) == specs


def test_load_specs_rejects_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(SchemaError, match="broken.json: not valid JSON"):
        load_specs(tmp_path)


def test_load_specs_rejects_a_table_declared_twice(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(BASE))
    (tmp_path / "b.json").write_text(json.dumps(BASE))
    with pytest.raises(SchemaError, match="b.json: table 'things' is declared twice"):
        load_specs(tmp_path)


def test_load_specs_rejects_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no table schemas found"):
        load_specs(tmp_path)


def test_load_specs_names_the_bad_file(tmp_path: Path) -> None:
    (tmp_path / "evil.json").write_text(json.dumps(variant(table="x`; DROP TABLE y")))
    with pytest.raises(SchemaError, match="^evil.json: table: "):
        load_specs(tmp_path)


# --------------------------------------------------------------------------------------
# select_specs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "tables"),
    [
        (["interactions"], ["user_interactions"]),
        (["user_interactions"], ["user_interactions"]),
        (["tasks"], ["tasks"]),
        (["memories"], ["emotional_memories"]),
        (["emotional_memories", "tasks"], ["emotional_memories", "tasks"]),
        (["tasks", "interactions", "user_interactions"], ["tasks", "user_interactions"]),
        ([], []),
    ],
)
def test_select_specs(specs: dict[str, TableSpec], names: list[str], tables: list[str]) -> None:
    assert [s.name for s in select_specs(specs, names)] == tables


@pytest.mark.parametrize("name", ["nope", "Tasks", "users", "", "tasks ", "interaction"])
def test_select_specs_rejects_unknown(specs: dict[str, TableSpec], name: str) -> None:
    with pytest.raises(SchemaError, match=f"unknown collection {name!r}; known: ") as info:
        select_specs(specs, ["tasks", name])
    assert "interactions" in str(info.value) and "user_interactions" in str(info.value)
