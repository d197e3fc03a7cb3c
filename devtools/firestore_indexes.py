"""Firestore single-field indexes that incremental reads need, derived from ``schemas/``.

Incremental runs filter each collection group on a range of its partition field
and of its change field (``TableSpec.range_fields``), ordered by that field and
``__name__``. Firestore indexes every field by default, but only with collection
scope; a collection-group range query needs an ascending index with
collection-group scope, which has to be added as a field override. An override
replaces the field's default indexes, so each one restates those defaults
(ascending, descending and array-contains, collection scope) next to the
collection-group index: nothing the app's own queries use is dropped.

The same overrides are rendered two ways: a ``firestore.indexes.json`` for the
Firebase CLI and ``gcloud firestore indexes fields update`` commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pipelines.convert.table_spec import TableSpec

#: Firestore's automatic single-field indexes, which an override must keep.
DEFAULT_INDEXES: tuple[dict[str, str], ...] = (
    {"order": "ASCENDING", "queryScope": "COLLECTION"},
    {"order": "DESCENDING", "queryScope": "COLLECTION"},
    {"arrayConfig": "CONTAINS", "queryScope": "COLLECTION"},
)
#: What a collection-group range query ordered by (field, ``__name__``) needs.
GROUP_INDEX: dict[str, str] = {"order": "ASCENDING", "queryScope": "COLLECTION_GROUP"}

#: ``--index`` values of ``gcloud firestore indexes fields update``, per index.
_GCLOUD_KEYS = {"order": "order", "arrayConfig": "array-config", "queryScope": "query-scope"}
_GCLOUD_SCOPES = {"COLLECTION": "collection", "COLLECTION_GROUP": "collection-group"}


def range_field_pairs(specs: Iterable[TableSpec]) -> list[tuple[str, str]]:
    """(collection group, field path) of every field an incremental query filters on."""
    pairs = {(spec.collection, field) for spec in specs for field in spec.range_fields}
    return sorted(pairs)


def index_config(specs: Iterable[TableSpec]) -> dict[str, Any]:
    """The Firebase CLI index file: no composite indexes, one override per range field."""
    return {
        "indexes": [],
        "fieldOverrides": [
            {
                "collectionGroup": group,
                "fieldPath": field,
                "indexes": [dict(index) for index in (*DEFAULT_INDEXES, GROUP_INDEX)],
            }
            for group, field in range_field_pairs(specs)
        ],
    }


def render(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def gcloud_index(index: dict[str, str]) -> str:
    """One index as gcloud's ``--index`` value, e.g. ``order=ascending,query-scope=collection``."""
    parts = []
    for key, value in index.items():
        if key == "queryScope":
            value = _GCLOUD_SCOPES[value]
        parts.append(f"{_GCLOUD_KEYS[key]}={value.lower()}")
    return ",".join(parts)


def update_command(
    override: dict[str, Any], project: str, database: str, run_async: bool = False
) -> list[str]:
    """``gcloud firestore indexes fields update`` setting a field's whole index list.

    gcloud deletes the indexes an ``--index`` list omits, hence every index of
    the override, the defaults included, is passed.
    """
    command = [
        "gcloud",
        "firestore",
        "indexes",
        "fields",
        "update",
        override["fieldPath"],
        f"--collection-group={override['collectionGroup']}",
        *(f"--index={gcloud_index(index)}" for index in override["indexes"]),
        "--project",
        project,
        "--database",
        database,
    ]
    if run_async:
        command.append("--async")
    return command
