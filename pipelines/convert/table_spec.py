"""Declared table schemas: one JSON file per table in ``schemas/``.

Each file is a BigQuery JSON schema plus what the sync needs to fill the table:
where the documents live in Firestore, which column partitions the table, how it
is clustered, which Firestore fields feed which columns, and per-column data
policies. Everything here is validated at load time, because table and column
names end up in SQL.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pipelines.convert import time_source

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
    "GEOGRAPHY": "GEOGRAPHY",
    "BYTES": "BYTES",
    "RECORD": "RECORD",
    "STRUCT": "RECORD",
}
#: BigQuery nests RECORD columns at most 15 levels deep.
MAX_RECORD_DEPTH = 15
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
    #: A RECORD's sub-columns; each one's ``source`` is a path inside the map.
    fields: tuple[Column, ...] = ()
    #: "" (Firestore timestamps, ISO 8601 strings), or one of
    #: :data:`time_source.SOURCES`: epoch numbers, or the document's create time.
    timestamp_source: str = ""

    @property
    def required(self) -> bool:
        return self.mode == "REQUIRED"

    @property
    def repeated(self) -> bool:
        return self.mode == "REPEATED"

    @property
    def from_create_time(self) -> bool:
        """Filled from the document's Firestore create time, not from a field."""
        return self.timestamp_source == time_source.CREATE_TIME

    def bigquery_field(self) -> dict[str, Any]:
        """This column in BigQuery's JSON schema form, sub-fields included."""
        field: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "mode": self.mode,
            "description": self.description,
        }
        if self.fields:
            field["fields"] = [f.bigquery_field() for f in self.fields]
        return field


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
        """Range queries need a TIMESTAMP partition stored as one top-level field
        (Firestore timestamps or epoch numbers); Firestore cannot filter on a
        document's create time, so a table partitioned by it is read whole."""
        partition = self.partition
        return (
            partition.type == "TIMESTAMP"
            and len(partition.source) == 1
            and not partition.from_create_time
        )

    def range_column(self, field: str) -> Column | None:
        """The partition or change column an incremental query on ``field`` bounds:
        its ``timestamp_source`` says how the bounds are encoded."""
        for name in (self.partition_column, self.change_field):
            if name and self.column(name).source == (field,):
                return self.column(name)
        return None

    @property
    def range_fields(self) -> tuple[str, ...]:
        """Firestore fields incremental queries filter on (each needs an index)."""
        if not self.supports_incremental:
            return ()
        fields = [self.partition.source[0]]
        if self.change_field:
            fields.append(self.column(self.change_field).source[0])
        return tuple(fields)

    def bigquery_schema(self) -> list[dict[str, Any]]:
        """The table's BigQuery JSON schema, sync columns included."""
        return [c.bigquery_field() for c in self.columns] + [dict(c) for c in SYNC_COLUMNS]


# --------------------------------------------------------------------------------------
# Validation: every problem of a file is collected, then reported at once
# --------------------------------------------------------------------------------------


def _show(value: Any, limit: int = 60) -> str:
    """A value as an error line quotes it: strings as Python reprs, the rest as JSON."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    """What a JSON value is, in JSON's words: ``an object``, ``a list``, ``null`` …"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def did_you_mean(value: Any, choices: Iterable[str]) -> str:
    """``did you mean 'x'?`` for the closest choice (case aside first), or ""."""
    if not isinstance(value, str):
        return ""
    choices = list(choices)
    folded = [c for c in choices if c.lower() == value.lower() and c != value]
    close = folded or difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(value.lower(), [c.lower() for c in choices], n=1)
        close = [c for c in choices if close and c.lower() == close[0]]
    return f"did you mean {close[0]!r}?" if close else ""


def _key_path(path: str, key: Any) -> str:
    """``fields[2].polcy``; a key that would blur the line or the path is quoted: ``x['a b']``."""
    key = str(key)
    if re.fullmatch(r"[A-Za-z0-9_$@-]+", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def _with_hint(message: str, hint: str) -> str:
    return f"{message} ({hint})" if hint else message


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a schema file: the file, the key path, what is wrong."""

    origin: str
    #: ``fields[3].type``; "" when the problem is the whole file's.
    path: str
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.origin, self.path, self.message) if part)


class SchemaError(ValueError):
    """Schema files are malformed: every problem, each naming the file and the key path."""

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[Problem, ...] = tuple(problems)

    @classmethod
    def of(cls, problems: Iterable[Problem]) -> SchemaError:
        """All problems in one line (usage errors are one line): the first, then the rest.

        ``firestore-to-bq schema check`` prints them one per line; :attr:`problems`
        holds them for a caller that wants to.
        """
        problems = tuple(problems)
        lines = [str(p) for p in problems]
        if len(lines) == 1:
            return cls(lines[0], problems)
        count = f"{len(lines)} schema errors; firestore-to-bq schema check lists them one a line"
        return cls(" | ".join(lines) + f" ({count})", problems)


#: Top-level keys of a schema file, and what each is for.
TOP_LEVEL_KEYS: dict[str, str] = {
    "table": "the BigQuery table name (letters, digits and _, not starting with a digit)",
    "description": "the table's description",
    "source": 'where the documents live: {"collection", "layout", "parent_collection"}',
    "id_column": "the STRING column that receives each document's id",
    "partition_column": "the TIMESTAMP or DATE column whose UTC day partitions the table",
    "change_field": "a TIMESTAMP column the app moves forward on every write (late edits)",
    "clustering": "up to 4 columns BigQuery clusters the table by",
    "field_map": "column name (or record.sub_field) -> Firestore field name (or [path, of, "
    "names]) when they differ",
    "fields": 'the columns, a BigQuery JSON schema: [{"name": ..., "type": ...}, ...]',
}
REQUIRED_KEYS = ("table", "id_column", "partition_column", "fields")
SOURCE_KEYS = ("collection", "layout", "parent_collection")
#: Per-column keys the sync reads.
FIELD_KEYS = (
    "name",
    "type",
    "mode",
    "description",
    "fields",
    "policy",
    "allowed_values",
    "timestamp_source",
)
#: Keys BigQuery's JSON schema defines for a field that the sync accepts and ignores
#: (``setup_bigquery.py`` does not pass them on).
IGNORED_BIGQUERY_FIELD_KEYS = (
    "policyTags",
    "dataPolicies",
    "maxLength",
    "precision",
    "scale",
    "roundingMode",
    "defaultValueExpression",
    "collation",
    "rangeElementType",
    "foreignTypeDefinition",
)
#: Types BigQuery clusters on, of those the sync writes.
CLUSTERABLE_TYPES = ("STRING", "INT64", "BOOL", "TIMESTAMP", "DATE", "GEOGRAPHY")
#: Types ``timestamp_source`` applies to.
TIME_SOURCE_TYPES = ("TIMESTAMP", "DATE")
#: BigQuery types the sync does not write yet, and what to declare instead.
TYPE_HINTS = {
    "NUMERIC": "declare FLOAT64, or STRING for exact digits",
    "BIGNUMERIC": "declare FLOAT64, or STRING for exact digits",
    "DECIMAL": "declare FLOAT64, or STRING for exact digits",
    "BIGDECIMAL": "declare FLOAT64, or STRING for exact digits",
    "DATETIME": "Firestore times are instants: declare TIMESTAMP",
    "RANGE": "declare two columns, or JSON",
    "INTERVAL": "declare INT64 (a count of units) or STRING",
}
IDENTIFIER_RULE = "letters, digits and _, not starting with a digit, at most 300 characters"


def allowed_types() -> str:
    """``STRING, INT64 (or INTEGER), …``: the types a column may declare."""
    aliases: dict[str, list[str]] = {}
    for alias, canonical in TYPE_ALIASES.items():
        if alias != canonical:
            aliases.setdefault(canonical, []).append(alias)
    return ", ".join(
        f"{t} (or {', '.join(aliases[t])})" if t in aliases else t
        for t in dict.fromkeys(TYPE_ALIASES.values())
    )


class _Check:
    """The problems found in one schema file so far."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.problems: list[Problem] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.origin, path, message))

    def unknown_keys(
        self, node: Mapping[str, Any], path: str, known: Iterable[str], what: str
    ) -> None:
        known = list(known)
        for key in node:
            if key not in known:
                where = _key_path(path, key)
                hint = did_you_mean(key, known)
                self.error(where, _with_hint("unknown key", hint) + f"; {what}")

    def missing(self, path: str, key: str, purpose: str) -> None:
        self.error(path, f"missing key {key!r}: {purpose}")

    def identifier(self, value: Any, path: str) -> str | None:
        if isinstance(value, str) and IDENTIFIER.match(value):
            return value
        self.error(path, f"{_show(value)} is not a valid BigQuery identifier ({IDENTIFIER_RULE})")
        return None


def _source_path(value: Any, where: str, check: _Check) -> tuple[str, ...]:
    """A field_map value: a top-level field name, or a list for a nested path."""
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    check.error(where, f"expected a field name or a list of names, got {_show(value)}")
    return ()


def _column(
    f: Any,
    where: str,
    field_map: Mapping[str, Any],
    check: _Check,
    parent: str = "",
    depth: int = 1,
) -> Column | None:
    """One entry of ``fields`` (or of a RECORD's ``fields``), or None if it has no
    usable name. ``parent``: the dotted column path of the enclosing RECORD, ""
    at the top level; a sub-field's ``field_map`` key is ``parent.name`` and its
    source a path inside the parent's map."""
    if not isinstance(f, Mapping):
        check.error(where, f'expected a column object {{"name": …, "type": …}}, got {_kind(f)}')
        return None
    keys = FIELD_KEYS + IGNORED_BIGQUERY_FIELD_KEYS
    check.unknown_keys(f, where, keys, "a field takes " + ", ".join(FIELD_KEYS) + " and the "
                       "keys BigQuery's JSON schema defines (see docs/schemas.md)")  # fmt: skip
    if "name" not in f:
        check.missing(where, "name", "the column name")
        col_name = None
    else:
        col_name = check.identifier(f["name"], f"{where}.name")
    col_type = None
    if "type" not in f:
        check.missing(where, "type", f"the column type, one of {allowed_types()}")
    elif not isinstance(f["type"], str) or f["type"].upper() not in TYPE_ALIASES:
        raw_type = f["type"]
        hint = TYPE_HINTS.get(raw_type.upper(), "") if isinstance(raw_type, str) else ""
        hint = hint or did_you_mean(
            raw_type.upper() if isinstance(raw_type, str) else raw_type, TYPE_ALIASES
        )
        if not isinstance(raw_type, str):
            hint = f"a type is a name, not {_kind(raw_type)}"
        message = _with_hint(f"unsupported type {_show(raw_type)}", hint)
        check.error(f"{where}.type", f"{message}; allowed: {allowed_types()}")
    else:
        col_type = TYPE_ALIASES[f["type"].upper()]
    mode = f.get("mode", "NULLABLE")
    if not isinstance(mode, str) or mode.upper() not in MODES:
        check.error(
            f"{where}.mode",
            _with_hint(f"unsupported mode {_show(mode)}", did_you_mean(mode, MODES))
            + f"; allowed: {', '.join(MODES)} (NULLABLE when left out)",
        )
        mode = "NULLABLE"
    mode = mode.upper()
    policy = f.get("policy", "keep")
    if parent and "policy" in f:
        check.error(
            f"{where}.policy",
            f"policies apply to top-level columns only: put 'drop' on the RECORD column "
            f"{parent.split('.')[0]!r}, or read the field into a top-level column with a "
            "field_map path and give that column the policy",
        )
        policy = "keep"
    elif policy not in POLICIES:
        check.error(
            f"{where}.policy",
            _with_hint(
                f"policy must be one of {', '.join(POLICIES)}, got {_show(policy)}",
                did_you_mean(policy, POLICIES),
            ),
        )
        policy = "keep"
    elif policy == "hash" and col_type not in (None, "STRING"):
        check.error(
            f"{where}.policy", f"policy 'hash' applies to STRING columns only, not {col_type}"
        )
    description = f.get("description", "")
    if not isinstance(description, str):
        check.error(f"{where}.description", f"expected a string, got {_kind(description)}")
        description = ""
    allowed = f.get("allowed_values", [])
    if allowed is None:
        allowed = []
    if not isinstance(allowed, list) or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in allowed
    ):
        check.error(
            f"{where}.allowed_values",
            f"expected a list of strings or numbers (the values the column may hold), "
            f"got {_show(allowed)}",
        )
        allowed = []
    elif allowed and col_type == "RECORD":
        check.error(f"{where}.allowed_values", "a RECORD column takes no allowed_values; "
                    "put them on its sub-fields")  # fmt: skip
        allowed = []
    path = f"{parent}.{col_name}" if parent and col_name else (col_name or "")
    source_kind = _timestamp_source(f, where, col_type, mode, parent, path, field_map, check)
    sub_fields = _sub_fields(f, where, col_type, field_map, check, path, depth)
    if col_name is None:
        return None
    source: tuple[str, ...] = (col_name,)
    if path in field_map:
        source = _source_path(field_map[path], _key_path("field_map", path), check) or source
    return Column(
        name=col_name,
        type=col_type or "",  # "" : the type was wrong; the spec is not built
        mode=mode,
        description=description,
        source=source,
        policy=policy,
        allowed_values=tuple(allowed),
        fields=sub_fields,
        timestamp_source=source_kind,
    )


def _timestamp_source(
    f: Mapping[str, Any],
    where: str,
    col_type: str | None,
    mode: str,
    parent: str,
    path: str,
    field_map: Mapping[str, Any],
    check: _Check,
) -> str:
    """A field's ``timestamp_source``: "" when left out, else one of time_source.SOURCES."""
    value = f.get("timestamp_source")
    if value is None:
        return ""
    if value not in time_source.SOURCES:
        allowed = "; ".join(f"{k}: {v}" for k, v in time_source.SOURCES.items())
        hint = did_you_mean(value, time_source.SOURCES)
        check.error(f"{where}.timestamp_source",
                    _with_hint(f"unknown timestamp source {_show(value)}", hint)
                    + f"; allowed: {allowed} (left out: Firestore timestamps and ISO 8601 "
                    "strings)")  # fmt: skip
        return ""
    if col_type is not None and col_type not in TIME_SOURCE_TYPES:
        check.error(f"{where}.timestamp_source", "timestamp_source applies to TIMESTAMP and "
                    f"DATE columns only, not {col_type}")  # fmt: skip
        return ""
    if value == time_source.CREATE_TIME:
        if parent or mode == "REPEATED":
            check.error(f"{where}.timestamp_source", "create_time fills a top-level, "
                        "non-REPEATED column (one create time per document)")  # fmt: skip
        if path in field_map:
            check.error(_key_path("field_map", path), "a create_time column reads no field: "
                        "remove its field_map entry")  # fmt: skip
    return str(value)


def _sub_fields(
    f: Mapping[str, Any],
    where: str,
    col_type: str | None,
    field_map: Mapping[str, Any],
    check: _Check,
    path: str,
    depth: int,
) -> tuple[Column, ...]:
    """A RECORD's sub-columns (at least one, names unique case aside, at most
    15 levels deep as in BigQuery); ``fields`` elsewhere must be empty."""
    raw = f.get("fields")
    if col_type != "RECORD":
        if raw not in (None, []) and col_type is not None:
            check.error(f"{where}.fields", f"only a RECORD column has sub-fields, not {col_type}")
        return ()
    if not isinstance(raw, list) or not raw:
        check.error(where if raw is None else f"{where}.fields",
                    'a RECORD column needs "fields": [{"name": …, "type": …}, …], one or more '
                    "sub-fields read from the map's keys")  # fmt: skip
        return ()
    if depth >= MAX_RECORD_DEPTH:
        check.error(f"{where}.fields", f"RECORD columns nest at most {MAX_RECORD_DEPTH} levels "
                    "deep in BigQuery; declare the deeper map JSON")  # fmt: skip
        return ()
    columns: list[Column] = []
    first_use: dict[str, int] = {}
    for i, sub in enumerate(raw):
        col = _column(sub, f"{where}.fields[{i}]", field_map, check, path or "?", depth + 1)
        if col is None:
            continue
        folded = col.name.lower()
        if folded in first_use:
            check.error(f"{where}.fields[{i}].name",
                        f"sub-field {col.name!r} is duplicated: fields[{first_use[folded]}] "
                        "declares it too (names compare case-insensitively)")  # fmt: skip
            continue
        first_use[folded] = i
        columns.append(col)
    return tuple(columns)


def column_paths(columns: Iterable[Column], parent: str = "") -> list[str]:
    """Every declared column's dotted path (``stats``, ``stats.heart_rate``): the
    keys ``field_map`` may use."""
    paths = []
    for col in columns:
        path = f"{parent}.{col.name}" if parent else col.name
        paths.append(path)
        paths += column_paths(col.fields, path)
    return paths


def check_spec(raw: Any, origin: str = "<schema>") -> tuple[TableSpec | None, list[Problem]]:
    """Validate one schema document: its :class:`TableSpec`, or None and every problem found."""
    check = _Check(origin)
    if not isinstance(raw, Mapping):
        hint = (
            ' (a bare BigQuery schema, a list of fields, goes under "fields")'
            if isinstance(raw, list)
            else ""
        )
        check.error(
            "",
            f'the file holds {_kind(raw)}, not a schema object {{"table": …, "fields": […], …}}'
            + hint,
        )
        return None, check.problems
    name = check.identifier(raw["table"], "table") if "table" in raw else None
    check.unknown_keys(raw, "", TOP_LEVEL_KEYS, "allowed: " + ", ".join(TOP_LEVEL_KEYS))
    unknown = [k for k in raw if k not in TOP_LEVEL_KEYS and isinstance(k, str)]
    for key in REQUIRED_KEYS:
        if key not in raw:
            close = difflib.get_close_matches(key, unknown, n=1, cutoff=0.6)
            found = f" ({close[0]!r} is there: misspelt?)" if close else ""
            check.missing("", key, TOP_LEVEL_KEYS[key] + found)

    description = raw.get("description", "")
    if not isinstance(description, str):
        check.error("description", f"expected a string, got {_kind(description)}")

    source = raw.get("source")
    if source is None:
        source = {}
    if not isinstance(source, Mapping):
        check.error(
            "source", f'expected an object {{"collection": …, "layout": …}}, got {_kind(source)}'
        )
        source = {}
    check.unknown_keys(source, "source", SOURCE_KEYS, "allowed: " + ", ".join(SOURCE_KEYS))
    collection = source.get("collection", name)
    if "collection" in source and (
        not isinstance(collection, str) or not COLLECTION_ID.match(collection)
    ):
        check.error(
            "source.collection",
            f"{_show(collection)} is not a collection id (the last name of the path, without "
            "'/'; by default the table name)",
        )
    layout = source.get("layout", "per_user")
    if layout not in LAYOUTS:
        check.error(
            "source.layout",
            _with_hint(f"unknown layout {_show(layout)}", did_you_mean(layout, LAYOUTS))
            + "; allowed: per_user (PARENT/{user_id}/COLLECTION/{id}, the default), "
            "top_level (COLLECTION/{id})",
        )
        layout = "per_user"
    parent = source.get("parent_collection", "users")
    if not isinstance(parent, str) or not COLLECTION_ID.match(parent):
        check.error(
            "source.parent_collection",
            f"{_show(parent)} is invalid: a collection id without '/' (default 'users')",
        )
        parent = "users"

    field_map = raw.get("field_map")
    if field_map is None:
        field_map = {}
    if not isinstance(field_map, Mapping):
        check.error(
            "field_map",
            f'must be an object {{"column": "firestoreField"}}, got {_kind(field_map)}',
        )
        field_map = {}

    columns: list[Column] = []
    #: Whether a column has no usable name: references to it are then not reported.
    broken_names = False
    fields = raw.get("fields", [])
    if not isinstance(fields, list):
        check.error(
            "fields",
            f'must be a list of columns [{{"name": …, "type": …}}, …], got {_kind(fields)}',
        )
        fields = []
        broken_names = True
    first_use: dict[str, int] = {}
    reserved = {c["name"].lower(): c["name"] for c in SYNC_COLUMNS}
    for i, f in enumerate(fields):
        where = f"fields[{i}]"
        col = _column(f, where, field_map, check)
        if col is None:
            broken_names = True
            continue
        folded = col.name.lower()
        if folded in reserved:
            check.error(
                f"{where}.name",
                f"column {col.name!r} is duplicated or reserved: the sync adds "
                f"{reserved[folded]!r} to every table (reserved: "
                + ", ".join(c["name"] for c in SYNC_COLUMNS)
                + ")",
            )
            continue
        if folded in first_use:
            check.error(
                f"{where}.name",
                f"column {col.name!r} is duplicated or reserved: fields[{first_use[folded]}] "
                "declares it too (names compare case-insensitively)",
            )
            continue
        first_use[folded] = i
        columns.append(col)
    declared = {c.name: c for c in columns}
    known_columns = list(declared)

    paths = column_paths(columns)
    for key in field_map:
        if key not in paths:
            reason = (
                f"{key!r} is a sync column, the sync fills it"
                if str(key).lower() in reserved
                else _with_hint(
                    "field_map keys are declared column names (record.sub_field for a sub-field)",
                    did_you_mean(key, paths),
                )
            )
            check.error(_key_path("field_map", key), f"unknown column: {reason}")

    def referenced(key: str, value: Any, path: str, purpose: str) -> Column | None:
        col_name = check.identifier(value, path)
        if col_name is None:
            return None
        if col_name in declared:
            return declared[col_name]
        if not broken_names:
            check.error(
                path,
                _with_hint(
                    f"column {col_name!r} is referenced but not declared in fields",
                    did_you_mean(col_name, known_columns),
                )
                + f"; {key} names {purpose}",
            )
        return None

    id_col = None
    if "id_column" in raw:
        id_col = referenced(
            "id_column", raw["id_column"], "id_column", "the column that receives the document id"
        )
        if (
            id_col
            and id_col.type
            and id_col.source == (id_col.name,)
            and (id_col.type != "STRING" or id_col.repeated)
        ):
            check.error("id_column", f"column {id_col.name!r} receives the document id: declare it "
                        "STRING (NULLABLE or REQUIRED)")  # fmt: skip
    partition = None
    if "partition_column" in raw:
        partition = referenced(
            "partition_column", raw["partition_column"], "partition_column", "the partition column"
        )
        if (
            partition
            and partition.type
            and (partition.type not in ("TIMESTAMP", "DATE") or partition.repeated)
        ):
            check.error(
                "partition_column",
                f"the partition column must be a TIMESTAMP or DATE, not {partition.mode} "
                f"{partition.type} ({partition.name!r})",
            )
        if partition and partition.policy != "keep":
            check.error(
                "partition_column",
                "the partition column must keep its value (policy 'keep'), "
                f"not {partition.policy!r}",
            )
    if layout == "per_user" and "user_id" not in declared and not broken_names:
        check.error(
            "fields",
            "column 'user_id' is referenced but not declared: layout per_user (the default) "
            f"fills it with the owner's id, the {{user_id}} of {parent}/{{user_id}}/"
            f"{collection if isinstance(collection, str) else 'COLLECTION'}; add "
            '{"name": "user_id", "type": "STRING", "mode": "REQUIRED"}',
        )
    owner = declared.get("user_id")
    if (
        layout == "per_user"
        and owner
        and owner.source == ("user_id",)
        and (owner.type not in ("STRING", "") or owner.repeated)
    ):
        check.error(
            "fields", "column 'user_id' receives the owner's document id: declare it STRING"
        )

    change = None
    if raw.get("change_field") is not None:
        change = referenced(
            "change_field", raw["change_field"], "change_field", "the last-write time column"
        )
        if (
            change
            and change.type
            and (change.type != "TIMESTAMP" or change.repeated or len(change.source) != 1)
        ):
            check.error(
                "change_field",
                "change_field must be a top-level TIMESTAMP column (not REPEATED, not a nested "
                f"field_map path); {change.name!r} is {change.mode} {change.type}",
            )
        elif change and change.from_create_time:
            check.error(
                "change_field",
                f"{change.name!r} holds the document's create time, which never moves; the "
                "change field is a time the app sets on every write (updatedAt)",
            )

    clustering_raw = raw.get("clustering")
    if clustering_raw is None:
        clustering_raw = []
    clustering: list[str] = []
    if not isinstance(clustering_raw, list):
        check.error(
            "clustering",
            f'must be a list of column names, e.g. ["user_id"], got {_show(clustering_raw)}',
        )
        clustering_raw = []
    if len(clustering_raw) > 4:
        check.error(
            "clustering", f"BigQuery clusters on at most 4 columns, got {len(clustering_raw)}"
        )
    for i, value in enumerate(clustering_raw):
        col = referenced("clustering", value, f"clustering[{i}]", "a clustering column")
        if col is None:
            continue
        clustering.append(col.name)
        if col.type and (col.type not in CLUSTERABLE_TYPES or col.repeated):
            check.error(
                f"clustering[{i}]",
                f"BigQuery cannot cluster on {col.mode} {col.type} column {col.name!r}; it "
                f"clusters on non-REPEATED {', '.join(CLUSTERABLE_TYPES)} columns",
            )

    if check.problems:
        return None, check.problems
    assert name is not None and id_col is not None and partition is not None
    spec = TableSpec(
        name=name,
        collection=collection,
        layout=layout,
        parent_collection=parent,
        id_column=id_col.name,
        partition_column=partition.name,
        clustering=tuple(clustering),
        description=description,
        columns=tuple(columns),
        change_field=change.name if change else None,
    )
    return spec, []


def parse_spec(raw: Mapping[str, Any], origin: str = "<schema>") -> TableSpec:
    """Validate one schema document and build its :class:`TableSpec`.

    Raises :class:`SchemaError` naming every problem of the document, not only the first.
    """
    spec, problems = check_spec(raw, origin)
    if spec is None:
        raise SchemaError.of(problems)
    return spec


#: The schema folder every command reads when not given ``--schemas_dir``; unset:
#: the packaged ``schemas/``. One setting for the sync, ``status``, the backfill,
#: ``setup_bigquery.py`` and the index script, so none of them reads other tables.
SCHEMAS_DIR_ENV = "F2BQ_SCHEMAS_DIR"


def schemas_dir(directory: str | Path | None = None) -> str | Path | None:
    """``directory``, else ``$F2BQ_SCHEMAS_DIR``, else None (the packaged schemas)."""
    return directory or os.environ.get(SCHEMAS_DIR_ENV) or None


def check_specs(
    directory: str | Path | None = None,
) -> tuple[dict[str, TableSpec], list[Problem]]:
    """Every schema file of ``directory`` (or ``$F2BQ_SCHEMAS_DIR``, or the packaged
    ``schemas``) checked.

    The valid files' specs, keyed by table name, and every problem of every file,
    in file order. Raises :class:`OSError` if the folder cannot be read.
    """
    directory = schemas_dir(directory)
    if directory is None:
        files: Iterable[Any] = resources.files("schemas").iterdir()
    else:
        files = Path(directory).iterdir()
    specs: dict[str, TableSpec] = {}
    declared_in: dict[str, str] = {}
    problems: list[Problem] = []
    found = False
    for entry in sorted(files, key=lambda f: f.name):
        if not entry.name.endswith(".json"):
            continue
        found = True
        try:
            raw = json.loads(entry.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problems.append(Problem(entry.name, "", f"not valid JSON ({exc})"))
            continue
        except UnicodeDecodeError:
            problems.append(Problem(entry.name, "", "not UTF-8 text"))
            continue
        spec, found_problems = check_spec(raw, entry.name)
        problems += found_problems
        if spec is None:
            continue
        if spec.name in specs:
            problems.append(
                Problem(
                    entry.name,
                    "",
                    f"table {spec.name!r} is declared twice (also in {declared_in[spec.name]})",
                )
            )
            continue
        specs[spec.name] = spec
        declared_in[spec.name] = entry.name
    if not found:
        where = directory or "package schemas"
        problems.append(Problem("", "", f"no table schemas found in {where} (no .json file)"))
    return specs, problems


def load_specs(directory: str | Path | None = None) -> dict[str, TableSpec]:
    """All table specs, keyed by table name, from ``directory`` or the packaged ``schemas``.

    Raises :class:`SchemaError` naming every problem of every file.
    """
    specs, problems = check_specs(directory)
    if problems:
        raise SchemaError.of(problems)
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
