"""A whole schema file proposed from sampled documents, and the report that explains it.

Pure: ``(collection path, documents)`` in, ``(schema file, report lines)`` out;
``firestore-to-bq schema suggest`` samples and prints. On top of the per-field
types (:mod:`pipelines.convert.inference`) it names the columns (snake_case,
``field_map`` for the camelCase originals), picks the partition column and the
change field, proposes policies for fields that look personal, and, for
``--update``, adds to an existing file only what it lacks.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.convert import time_source
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.field_stats import FieldStats, collect
from pipelines.convert.inference import (
    Choice,
    choice_text,
    choose,
    describe_kinds,
    field_entry,
    snake,
)
from pipelines.convert.table_spec import COLLECTION_ID, SYNC_COLUMNS, check_spec

#: Fields in fewer documents than this share are reported as rare (and still proposed).
RARE_SHARE = 0.05
_CREATED = re.compile(
    r"^(created|creation|create)(_(at|time|on|date|timestamp|ts))?$|^(date|time)_created$"
    r"|^(timestamp|ts)$"
)
_STARTED = re.compile(
    r"^(started|start|began|begin|occurred|happened|logged|recorded|sent|event)"
    r"(_(at|time|on|timestamp|ts))?$"
)
_UPDATED = re.compile(
    r"^(last_)?(updated|modified|edited|changed|update|modify)(_(at|time|on|date|timestamp|ts))?$"
)
_EMAIL_NAME = re.compile(r"(^|_)(e_?mail|mail)(_|$)")
_PHONE_NAME = re.compile(r"(^|_)(phone|tel|telephone|mobile|msisdn)(_|$)")
_TEXT_NAME = re.compile(r"(^|_)(message|messages|text|body|content|transcript|notes?|comments?)$")


@dataclass(frozen=True)
class CollectionPath:
    """What ``--path`` names: ``users/{user_id}/workouts`` or ``sessions``."""

    collection: str
    layout: str
    parent_collection: str = "users"

    @property
    def pattern(self) -> str:
        if self.layout == "top_level":
            return self.collection
        return f"{self.parent_collection}/{{user_id}}/{self.collection}"


def parse_path(path: str) -> CollectionPath:
    """``COLLECTION`` (top_level) or ``PARENT/{placeholder}/COLLECTION`` (per_user);
    raises ValueError for any other shape, which the sync cannot read."""
    parts = path.strip().strip("/").split("/")
    if len(parts) == 1 and COLLECTION_ID.match(parts[0]) and "{" not in parts[0]:
        return CollectionPath(parts[0], "top_level")
    if (
        len(parts) == 3
        and re.fullmatch(r"\{[A-Za-z_][A-Za-z0-9_]*\}", parts[1])
        and all(COLLECTION_ID.match(p) and "{" not in p for p in (parts[0], parts[2]))
    ):
        return CollectionPath(parts[2], "per_user", parts[0])
    raise ValueError(
        f"--path {path!r}: expected COLLECTION (a top-level collection) or "
        "PARENT/{user_id}/COLLECTION (a collection under each owner document)"
    )


@dataclass
class Suggestion:
    """The proposed schema file and the report lines (stderr) that explain it."""

    schema: dict[str, Any]
    report: list[str] = field(default_factory=list)


#: BigQuery's reserved keywords: legal column names only in backticks, a trap in every
#: query an analyst writes (and bqemulator fails to create a table with some of them).
RESERVED = frozenset(
    "all and any array as asc assert_rows_modified at between by case cast collate contains "
    "create cross cube current default define desc distinct else end enum escape except "
    "exclude exists extract false fetch following for from full group grouping groups hash "
    "having if ignore in inner intersect interval into is join lateral left like limit lookup "
    "merge natural new no not null nulls of on or order outer over partition preceding proto "
    "qualify range recursive respect right rollup rows select set some struct tablesample "
    "then to treat true unbounded union unnest using when where window with within".split()
)


@dataclass
class _Names:
    """Column names taken in one scope (the table, or one RECORD), case aside;
    a reserved keyword gets ``_field``."""

    taken: set[str] = field(default_factory=set)

    def claim(self, wanted: str) -> str:
        if wanted.lower() in RESERVED:
            wanted = f"{wanted}_field"
        name, n = wanted, 1
        while name.lower() in self.taken:
            n += 1
            name = f"{wanted}_{n}"
        self.taken.add(name.lower())
        return name


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") and len(name) > 1 else name


def _personal(name: str, stats: FieldStats, choice: Choice) -> tuple[str, str] | None:
    """(policy, why) for a field that looks like personal data, else None: e-mail
    and phone numbers are hashed (they still join), message text is dropped."""
    column = snake(name)
    strings = stats.kinds["string"]
    if _EMAIL_NAME.search(column) or (strings and stats.emails * 2 > strings):
        kind = "e-mail addresses"
    elif _PHONE_NAME.search(column) or (strings and stats.phones * 2 > strings):
        kind = "phone numbers"
    elif _TEXT_NAME.search(column) and strings:
        return "drop", "message text: never copied (the column stays NULL)"
    else:
        return None
    if choice.type == "STRING":
        return "hash", f"{kind}: hashed, they still join across tables but cannot be read back"
    return "drop", f"{kind}, not all strings (hash takes strings only): dropped"


class _Builder:
    """Assembles one schema file from the sample's stats, noting every decision."""

    def __init__(self, path: CollectionPath, documents: Sequence[FirestoreDocument]):
        self.path = path
        self.documents = documents
        self.count, self.stats = collect(doc.data for doc in documents)
        self.report: list[str] = []
        self.fields: list[dict[str, Any]] = []
        self.field_map: dict[str, Any] = {}
        self.names = _Names({c["name"].lower() for c in SYNC_COLUMNS})
        #: Top-level columns and the stats and choice of the field each reads.
        self.columns: dict[str, tuple[str, FieldStats, Choice]] = {}

    def share(self, stats: FieldStats) -> float:
        return stats.present / self.count if self.count else 0.0

    def derived(self, owner: str, id_column: str) -> None:
        """The owner and id columns, filled from each document's path."""
        if self.path.layout == "per_user":
            self.fields.append(
                {
                    "name": owner,
                    "type": "STRING",
                    "mode": "REQUIRED",
                    "description": f"Owner: the {{user_id}} of {self.path.pattern}.",
                }
            )
        self.fields.append(
            {
                "name": id_column,
                "type": "STRING",
                "mode": "REQUIRED",
                "description": "Firestore document id.",
            }
        )

    def repeats_path(self, key: str, column: str) -> bool:
        """Whether a field holds the path's own owner or document id in every
        sampled document (the derived column has it; the field adds nothing)."""
        index = 1 if column == "user_id" else -1
        holding = [doc for doc in self.documents if key in doc.data]
        return bool(holding) and all(
            doc.data[key] is None or doc.data[key] == doc.segments[index] for doc in holding
        )

    def top_level(self, key: str, stats: FieldStats, derived: Sequence[str]) -> None:
        choice = choose(stats, key)
        wanted = snake(key)
        if wanted in derived:
            if self.repeats_path(key, wanted):
                self.report.append(
                    f"  {key}: equals the document path's {wanted} in every "
                    f"sampled document: the {wanted} column holds it; not "
                    "declared (it goes to extra if the name differs)"
                )
                return
            if key == wanted:  # the column checks a field of its own name against the path
                self.report.append(
                    f"  {key}: differs from the document path's {wanted} in some sampled "
                    "documents: each such document will be a dead letter (field disagrees "
                    "with the document path)"
                )
            wanted = f"{wanted}_field"
        if wanted.lower() in {c["name"].lower() for c in SYNC_COLUMNS}:
            wanted = f"{wanted}_field"
        name = self.names.claim(wanted)
        policy = _personal(key, stats, choice)
        self.report.append(self.line(key, stats, name, choice))
        if policy:
            self.report.append(f"    personal data? {key}: {policy[1]} (policy {policy[0]})")
        if choice.type == "RECORD":
            self.record_lines(key, choice, name)
        rare = self.share(stats) < RARE_SHARE
        if rare:
            self.report.append(
                f"    rare: in {self.share(stats):.0%} of the sampled documents "
                f"(under {RARE_SHARE:.0%}); proposed all the same"
            )
        entry = self.entry(name, choice, (key,), name)
        if policy:
            entry["policy"] = policy[0]
        self.fields.append(entry)
        if name != key:
            self.field_map[name] = key
        self.columns[name] = (key, stats, choice)

    def line(self, key: str, stats: FieldStats, name: str, choice: Choice, depth: int = 0) -> str:
        indent = "  " * (depth + 1)
        return (
            f"{indent}{key}: {describe_kinds(stats, self.count)} -> {name} "
            f"{choice_text(choice)}: {choice.why}"
        )

    def record_lines(self, key: str, choice: Choice, name: str, depth: int = 1) -> None:
        for sub_key, sub_stats, sub_choice in choice.fields:
            self.report.append(
                self.line(f"{key}.{sub_key}", sub_stats, snake(sub_key), sub_choice, depth)
            )
            if sub_choice.type == "RECORD":
                self.record_lines(f"{key}.{sub_key}", sub_choice, name, depth + 1)

    def entry(
        self, name: str, choice: Choice, source: tuple[str, ...], path: str
    ) -> dict[str, Any]:
        """The field object, a RECORD's sub-fields included. Personal keys of a map
        are moved out to top-level columns that carry the policy (policies are
        top-level only), read by a ``field_map`` path."""
        entry = field_entry(name, choice, "From Firestore field " + ".".join(source) + ".")
        if choice.type != "RECORD":
            return entry
        names = _Names()
        subs = []
        for key, stats, sub_choice in choice.fields:
            policy = _personal(key, stats, sub_choice)
            if policy and choice.mode != "REPEATED":
                self.personal_sub_field(key, stats, sub_choice, (*source, key), policy)
                continue
            sub_name = names.claim(snake(key))
            sub_path = f"{path}.{sub_name}"
            subs.append(self.entry(sub_name, sub_choice, (*source, key), sub_path))
            if sub_name != key:
                self.field_map[sub_path] = key
            if policy:
                self.report.append(
                    f"    personal data? {'.'.join((*source, key))}: {policy[1]}; "
                    "inside an array of maps no policy applies: review it"
                )
        if not subs:  # every key was personal and moved out: keep the map's shape
            return field_entry(
                name,
                Choice("JSON", ""),
                "From Firestore field " + ".".join(source) + "; its personal keys have columns of "
                "their own.",
            )
        entry["fields"] = subs
        return entry

    def personal_sub_field(
        self,
        key: str,
        stats: FieldStats,
        choice: Choice,
        source: tuple[str, ...],
        policy: tuple[str, str],
    ) -> None:
        name = self.names.claim(snake("_".join(source)))
        dotted = ".".join(source)
        self.report.append(
            f"    personal data? {dotted}: {policy[1]}; read into the top-level "
            f"column {name} (policies are top-level only)"
        )
        entry = field_entry(name, choice, f"From Firestore field {dotted}.")
        entry["policy"] = policy[0]
        self.fields.append(entry)
        self.field_map[name] = list(source)

    def partition(self) -> tuple[str, str | None]:
        """The partition column (made from the create time if no field will do) and
        the change field, each with the reason in the report."""
        full, partial = [], []
        for name, (key, stats, choice) in self.columns.items():
            if choice.type != "TIMESTAMP" or choice.mode == "REPEATED":
                continue
            complete = stats.non_null == self.count and not stats.unpartitionable
            stored_as_strings = bool(stats.kinds["string"])
            (full if complete and not stored_as_strings else partial).append(
                (name, key, stats, stored_as_strings)
            )
        partition = None
        for pattern, what in ((_CREATED, "a creation time"), (_STARTED, "an event's time")):
            found = [c for c in full if pattern.match(c[0])]
            if found:
                name, key = found[0][0], found[0][1]
                self.report.append(
                    f"partition column: {name} (from {key}): named like {what}, "
                    "a time in every sampled document"
                )
                partition = name
                break
            for name, key, stats, as_strings in partial:
                if pattern.match(name):
                    why = (
                        "stored as strings, which range queries cannot bound"
                        if as_strings
                        else f"missing, null or outside 1960..2159 in "
                        f"{self.count - stats.non_null + stats.unpartitionable} sampled "
                        "documents (each would be a dead letter)"
                    )
                    self.report.append(f"not the partition column: {name} (from {key}): {why}")
        if partition is None:
            partition = self.names.claim("created_at")
            self.fields.append(
                {
                    "name": partition,
                    "type": "TIMESTAMP",
                    "timestamp_source": time_source.CREATE_TIME,
                    "description": "When Firestore created the document.",
                }
            )
            self.report.append(
                f"partition column: {partition}, Firestore's create time of each "
                "document (no field holds a creation time in every sampled "
                "document); such a table is read whole every run"
            )
        for entry in self.fields:
            if entry["name"] == partition and entry.get("timestamp_source") != "create_time":
                entry["mode"] = "REQUIRED"
        change = None
        for name, (key, stats, choice) in self.columns.items():
            if (
                name != partition
                and _UPDATED.match(name)
                and choice.type == "TIMESTAMP"
                and choice.mode != "REPEATED"
                and not stats.kinds["string"]
            ):
                change = name
                self.report.append(
                    f"change field: {name} (from {key}): named like a last-write "
                    f"time, in {self.share(stats):.0%} of the sampled documents; "
                    "nightly runs find late edits by it"
                )
                break
        if change is None:
            self.report.append(
                "change field: none (no field named like a last-write time "
                "holding timestamps or epoch numbers); late edits are found by "
                "the drift check and full runs"
            )
        return partition, change


def suggest(
    path: CollectionPath, documents: Sequence[FirestoreDocument], table: str | None = None
) -> Suggestion:
    """The schema file for ``path`` that the sample calls for, and why, field by field."""
    builder = _Builder(path, documents)
    table = table or snake(path.collection)
    owner = "user_id" if path.layout == "per_user" else ""
    id_column = builder.names.claim(snake(_singular(path.collection)) + "_id")
    if owner:
        builder.names.claim(owner)
    builder.derived(owner, id_column)
    builder.report.append(
        f"fields ({builder.count} documents sampled; kinds seen with counts, "
        "presence and null share -> column, type: why):"
    )
    derived = [c for c in (owner, id_column) if c]
    for key in sorted(builder.stats):
        builder.top_level(key, builder.stats[key], derived)
    partition, change = builder.partition()
    schema: dict[str, Any] = {
        "table": table,
        "description": f"Suggested by firestore-to-bq schema suggest from {builder.count} "
        f"sampled documents of {path.pattern}.",
        "source": {"collection": path.collection, "layout": path.layout},
        "id_column": id_column,
        "partition_column": partition,
    }
    if path.layout == "per_user":
        schema["source"]["parent_collection"] = path.parent_collection
    if change:
        schema["change_field"] = change
    if owner:
        schema["clustering"] = [owner]
    if builder.field_map:
        schema["field_map"] = builder.field_map
    schema["fields"] = builder.fields
    if any(f.get("policy") == "hash" for f in builder.fields):
        builder.report.append(
            "hash columns need a key at run time: F2BQ_HASH_KEY locally, "
            "--hash_key_secret on Dataflow (docs/schemas.md#policies)"
        )
    return Suggestion(schema, builder.report)


def _sources(raw: Mapping[str, Any]) -> set[str]:
    """The top-level Firestore fields an existing file's columns read."""
    field_map = raw.get("field_map") or {}
    out = set()
    for f in raw.get("fields") or []:
        name = f.get("name") if isinstance(f, Mapping) else None
        if not isinstance(name, str):
            continue
        source = field_map.get(name, name)
        out.add(source[0] if isinstance(source, list) and source else str(source))
    return out


def update(existing: Mapping[str, Any], suggestion: Suggestion) -> Suggestion:
    """``existing`` plus the top-level fields the sample has and it lacks (their
    ``field_map`` entries with them); nothing declared is changed, not even a
    RECORD's sub-fields (``setup_bigquery.py`` would refuse that migration)."""
    raw = copy.deepcopy(dict(existing))
    report = []
    read = _sources(raw)
    names = _Names(
        {str(f.get("name", "")).lower() for f in raw.get("fields") or [] if isinstance(f, Mapping)}
        | {c["name"].lower() for c in SYNC_COLUMNS}
    )
    proposed = suggestion.schema
    proposed_map = proposed.get("field_map") or {}
    field_map = dict(raw.get("field_map") or {})
    by_name = {f["name"]: f for f in raw.get("fields") or [] if isinstance(f, Mapping)}
    added = []
    for entry in proposed["fields"]:
        source = proposed_map.get(entry["name"], entry["name"])
        top = source[0] if isinstance(source, list) else source
        derived = entry.get("timestamp_source") == "create_time" or entry["name"] in (
            proposed["id_column"],
            "user_id" if proposed["source"]["layout"] == "per_user" else "",
        )
        if derived:
            continue
        if top in read:
            # The column reading the whole field (not one reading a key inside it).
            old = next((f for n, f in by_name.items() if _reads(raw, n) == [top]), {})
            if entry.get("fields") and old.get("fields") is not None:
                have = {_sub_source(raw, old["name"], s) for s in old["fields"]}
                new = [_sub_source(proposed, entry["name"], s) for s in entry["fields"]]
                missing = [k for k in new if k not in have]
                if missing:
                    report.append(
                        f"  {top}: keys {', '.join(missing)} are not declared in the "
                        f"RECORD {old['name']}; not added (an existing RECORD's "
                        "sub-fields are not changed): they stay in extra"
                    )
            continue
        name = names.claim(entry["name"])
        new_entry = copy.deepcopy(entry)
        new_entry["name"] = name
        raw.setdefault("fields", []).append(new_entry)
        read.add(top)
        for key, value in proposed_map.items():
            if key == entry["name"]:
                field_map[name] = value
            elif key.startswith(entry["name"] + "."):
                field_map[name + key[len(entry["name"]) :]] = value
        added.append(f"  added {name} {choice_label(new_entry)} (from {top})")
    if field_map:
        raw["field_map"] = field_map
    report = [
        f"--update: {len(added)} column{'s' if len(added) != 1 else ''} added; nothing "
        "declared was changed",
        *added,
        *report,
    ]
    return Suggestion(raw, report)


def choice_label(entry: Mapping[str, Any]) -> str:
    mode = entry.get("mode", "NULLABLE")
    text = entry["type"] if mode != "REPEATED" else f"REPEATED {entry['type']}"
    return text + (f" from {entry['timestamp_source']}" if entry.get("timestamp_source") else "")


def _reads(raw: Mapping[str, Any], name: str) -> list[str]:
    """The Firestore path a column of ``raw`` reads, as a list of names."""
    source = (raw.get("field_map") or {}).get(name, name)
    return [str(s) for s in source] if isinstance(source, list) else [str(source)]


def _sub_source(raw: Mapping[str, Any], parent: str, sub: Mapping[str, Any]) -> str:
    source = (raw.get("field_map") or {}).get(f"{parent}.{sub.get('name')}", sub.get("name"))
    return ".".join(source) if isinstance(source, list) else str(source)


def problems(schema: Mapping[str, Any], origin: str) -> list[str]:
    """What ``schema check`` would say of the proposal (nothing, unless a rule here is wrong)."""
    return [str(p) for p in check_spec(schema, origin)[1]]
