"""Declared table schemas: one JSON file per table in ``schemas/``.

Each file is a BigQuery JSON schema plus what the sync needs to fill the table:
where the documents live in Firestore, which column partitions the table, how it
is clustered, which Firestore fields feed which columns, and per-column data
policies. Everything here is validated at load time, because table and column
names end up in SQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,299}\Z")
COLLECTION_ID = re.compile(r"^[^/\x00]{1,1500}$")

#: Column types the converter knows, with BigQuery's legacy aliases folded in.
TYPE_ALIASES = {
    "STRING": "STRING",
    "INT64": "INT64",
    "INTEGER": "INT64",
    "FLOAT64": "FLOAT64",
    "FLOAT": "FLOAT64",
    "BOOL": "BOOL",
    "BOOLEAN": "BOOL",
    "TIMESTAMP": "TIMESTAMP",
    "DATE": "DATE",
    "TIME": "TIME",
    "JSON": "JSON",
}
MODES = ("NULLABLE", "REQUIRED", "REPEATED")
POLICIES = ("keep", "drop", "hash")
LAYOUTS = ("per_user", "top_level")

#: Columns the sync adds to every table. The first two are derived from the
#: document and so are part of the data; the last two describe the run.
EXTRA_COLUMN = "extra"
DOCUMENT_PATH_COLUMN = "_document_path"
UPDATE_TIME_COLUMN = "_update_time"
RUN_METADATA_COLUMNS = ("_run_id", "_read_time")
SYNC_COLUMNS: tuple[dict[str, str], ...] = (
    {
        "name": EXTRA_COLUMN,
        "type": "JSON",
        "mode": "NULLABLE",
        "description": "Document fields that no column declares, kept as JSON.",
    },
    {
        "name": DOCUMENT_PATH_COLUMN,
        "type": "STRING",
        "mode": "REQUIRED",
        "description": "Firestore document path the row came from.",
    },
    {
        "name": UPDATE_TIME_COLUMN,
        "type": "TIMESTAMP",
        "mode": "NULLABLE",
        "description": "Firestore's last-write time of the document.",
    },
    {
        "name": "_run_id",
        "type": "STRING",
        "mode": "NULLABLE",
        "description": "Sync run that wrote the row (run metadata).",
    },
    {
        "name": "_read_time",
        "type": "TIMESTAMP",
        "mode": "NULLABLE",
        "description": "Firestore snapshot time the row was read at (run metadata).",
    },
)


class SchemaError(ValueError):
    """A schema file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Column:
    """One declared column and where its value comes from."""

    name: str
    type: str
    mode: str = "NULLABLE"
    description: str = ""
    source: tuple[str, ...] = ()
    policy: str = "keep"
    allowed_values: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.mode == "REQUIRED"

    @property
    def repeated(self) -> bool:
        return self.mode == "REPEATED"


@dataclass(frozen=True)
class TableSpec:
    """Everything the sync knows about one destination table."""

    name: str
    collection: str
    layout: str
    id_column: str
    partition_column: str
    columns: tuple[Column, ...]
    clustering: tuple[str, ...] = ()
    parent_collection: str = "users"
    user_id_column: str = "user_id"
    description: str = ""
    #: A TIMESTAMP column the app moves forward on every write (``updated_at``):
    #: incremental runs find late edits by it. None: only full runs see them.
    change_field: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns) + tuple(c["name"] for c in SYNC_COLUMNS)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def partition(self) -> Column:
        return self.column(self.partition_column)

    @property
    def supports_incremental(self) -> bool:
        """Range queries need a TIMESTAMP partition stored as one top-level field."""
        return self.partition.type == "TIMESTAMP" and len(self.partition.source) == 1

    @property
    def range_fields(self) -> tuple[str, ...]:
        """Firestore fields incremental queries filter on (each needs an index)."""
        if not self.supports_incremental:
            return ()
        fields = [self.partition.source[0]]
        if self.change_field:
            fields.append(self.column(self.change_field).source[0])
        return tuple(fields)

    def bigquery_schema(self) -> list[dict[str, str]]:
        """The table's BigQuery JSON schema, sync columns included."""
        declared = [
            {"name": c.name, "type": c.type, "mode": c.mode, "description": c.description}
            for c in self.columns
        ]
        return declared + [dict(c) for c in SYNC_COLUMNS]


def _source_path(value: Any, where: str) -> tuple[str, ...]:
    """A field_map value: a top-level field name, or a list for a nested path."""
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise SchemaError(f"{where}: expected a field name or a list of names, got {value!r}")


def _identifier(value: Any, where: str) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise SchemaError(f"{where}: {value!r} is not a valid BigQuery identifier")
    return value


def parse_spec(raw: Mapping[str, Any], origin: str = "<schema>") -> TableSpec:
    """Validate one schema document and build its :class:`TableSpec`."""
    try:
        name = _identifier(raw["table"], f"{origin}: table")
        source = raw.get("source", {})
        collection = source.get("collection", name)
        if not isinstance(collection, str) or not COLLECTION_ID.match(collection):
            raise SchemaError(f"{origin}: source.collection {collection!r} is not a collection id")
        layout = source.get("layout", "per_user")
        if layout not in LAYOUTS:
            raise SchemaError(f"{origin}: source.layout must be one of {LAYOUTS}, got {layout!r}")
        parent = source.get("parent_collection", "users")
        if not isinstance(parent, str) or not COLLECTION_ID.match(parent):
            raise SchemaError(f"{origin}: source.parent_collection {parent!r} is invalid")
        field_map = raw.get("field_map") or {}
        if not isinstance(field_map, Mapping):
            raise SchemaError(f"{origin}: field_map must be an object")
        columns = []
        seen: set[str] = set()
        seen_folded: set[str] = set()
        reserved = {c["name"].lower() for c in SYNC_COLUMNS}
        for i, f in enumerate(raw["fields"]):
            where = f"{origin}: fields[{i}]"
            col_name = _identifier(f.get("name"), f"{where}.name")
            if col_name.lower() in seen_folded or col_name.lower() in reserved:
                raise SchemaError(f"{where}: column {col_name!r} is duplicated or reserved")
            seen.add(col_name)
            seen_folded.add(col_name.lower())
            col_type = TYPE_ALIASES.get(str(f.get("type", "")).upper())
            if col_type is None:
                raise SchemaError(f"{where}: unsupported type {f.get('type')!r}")
            mode = str(f.get("mode", "NULLABLE")).upper()
            if mode not in MODES:
                raise SchemaError(f"{where}: unsupported mode {mode!r}")
            policy = f.get("policy", "keep")
            if policy not in POLICIES:
                raise SchemaError(f"{where}: policy must be one of {POLICIES}, got {policy!r}")
            if policy == "hash" and col_type != "STRING":
                raise SchemaError(f"{where}: policy 'hash' applies to STRING columns only")
            source_path = _source_path(field_map.get(col_name, col_name), f"{origin}: field_map")
            columns.append(
                Column(
                    name=col_name,
                    type=col_type,
                    mode=mode,
                    description=str(f.get("description", "")),
                    source=source_path,
                    policy=policy,
                    allowed_values=tuple(f.get("allowed_values", ())),
                )
            )
        unknown = set(field_map) - seen
        if unknown:
            raise SchemaError(f"{origin}: field_map names unknown columns {sorted(unknown)}")
        spec = TableSpec(
            name=name,
            collection=collection,
            layout=layout,
            parent_collection=parent,
            id_column=_identifier(raw["id_column"], f"{origin}: id_column"),
            partition_column=_identifier(raw["partition_column"], f"{origin}: partition_column"),
            clustering=tuple(
                _identifier(c, f"{origin}: clustering") for c in raw.get("clustering", ())
            ),
            description=str(raw.get("description", "")),
            columns=tuple(columns),
            change_field=(
                _identifier(raw["change_field"], f"{origin}: change_field")
                if raw.get("change_field") is not None
                else None
            ),
        )
    except KeyError as exc:
        raise SchemaError(f"{origin}: missing key {exc.args[0]!r}") from None
    except (AttributeError, TypeError) as exc:
        raise SchemaError(f"{origin}: malformed schema ({exc})") from None
    for col_name in (spec.id_column, spec.partition_column, spec.user_id_column, *spec.clustering):
        if col_name not in seen:
            raise SchemaError(f"{origin}: column {col_name!r} is referenced but not declared")
    if spec.change_field is not None:
        if spec.change_field not in seen:
            raise SchemaError(f"{origin}: change_field {spec.change_field!r} is not declared")
        change = spec.column(spec.change_field)
        if change.type != "TIMESTAMP" or change.repeated or len(change.source) != 1:
            raise SchemaError(f"{origin}: change_field must be a top-level TIMESTAMP column")
    if spec.partition.type not in ("TIMESTAMP", "DATE") or spec.partition.repeated:
        raise SchemaError(f"{origin}: partition column must be a TIMESTAMP or DATE")
    if spec.partition.policy != "keep":
        raise SchemaError(f"{origin}: partition column must keep its value (policy 'keep')")
    if len(spec.clustering) > 4:
        raise SchemaError(f"{origin}: BigQuery clusters on at most 4 columns")
    return spec


def load_specs(directory: str | Path | None = None) -> dict[str, TableSpec]:
    """All table specs, keyed by table name, from ``directory`` or the packaged ``schemas``."""
    if directory is None:
        files: Iterable[Any] = resources.files("schemas").iterdir()
    else:
        files = Path(directory).iterdir()
    specs: dict[str, TableSpec] = {}
    for entry in sorted(files, key=lambda f: f.name):
        if not entry.name.endswith(".json"):
            continue
        try:
            raw = json.loads(entry.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{entry.name}: not valid JSON ({exc})") from None
        spec = parse_spec(raw, entry.name)
        if spec.name in specs:
            raise SchemaError(f"{entry.name}: table {spec.name!r} is declared twice")
        specs[spec.name] = spec
    if not specs:
        raise SchemaError(f"no table schemas found in {directory or 'package schemas'}")
    return specs


def select_specs(specs: Mapping[str, TableSpec], names: Iterable[str]) -> list[TableSpec]:
    """Pick tables by table name or Firestore collection id (``tasks``, ``interactions``)."""
    by_collection = {s.collection: s for s in specs.values()}
    chosen: dict[str, TableSpec] = {}
    for name in names:
        spec = specs.get(name) or by_collection.get(name)
        if spec is None:
            known = sorted(set(specs) | set(by_collection))
            raise SchemaError(f"unknown collection {name!r}; known: {', '.join(known)}")
        chosen[spec.name] = spec
    return list(chosen.values())
