"""``firestore-to-bq schema drift``: what the synced rows hold that the schema files do not say.

    firestore-to-bq schema drift --project P --dataset D [--schemas_dir DIR] [--days 35]
        [--bq_location L] [--maximum_bytes_billed BYTES] [--fail_on_drift]

A schema file is written once; the app keeps changing what it writes. A field no
column declares is not lost (it lands in the row's ``extra`` JSON column), but
nobody sees it there, and a declared field that starts arriving with another
type turns documents into dead letters. This command reads the last ``--days``
days of every table (each query filters on the partition column, so BigQuery
reads only those partitions, and carries the analytics' ``maximum_bytes_billed``
so a mistake fails unbilled) and prints, per table:

* the undeclared fields its rows hold in ``extra``, with how many rows, the first
  and last day seen, the JSON types of their values and the column to declare;
* keys that appeared inside declared JSON columns during the window;
* declared columns that no row of the window fills;
* declared fields now arriving with another type (dead letters whose reason is
  ``expected X, got Y``, or a decimal in an INT64 column) while the column still
  expects the old type: not an addition (fix the writer, or rebuild the table with
  the new type as ``docs/schemas.md`` says);
* declared columns the BigQuery table lacks (``setup_bigquery.py`` not run yet).

Field names are printed (that is the point); values never are. Exit status: 0,
even when there is drift, unless ``--fail_on_drift`` (then 1 when any table
drifted, for a scheduled check); 1 when BigQuery fails; 2 bad arguments. The SQL
is built by pure functions (:func:`keys_sql`, :func:`fill_sql`,
:func:`type_changes_sql`) and written to run on BigQuery and on bqemulator alike
(see ``docs/emulators.md``). The report's format is in ``docs/schemas.md``.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions as api_exceptions

from f2bq_analytics import analytics
from pipelines.cli.usage import Parser, UsageError
from pipelines.convert.table_spec import (
    EXTRA_COLUMN,
    IDENTIFIER,
    Column,
    SchemaError,
    TableSpec,
    load_specs,
)
from pipelines.services import bigquery as bq
from pipelines.services import error_text
from pipelines.state import dead_letters

PROG = "firestore-to-bq schema drift"
UTC = datetime.UTC
#: Default window: the nightly's own ``--verify_days``, so a month of app releases shows.
DEFAULT_DAYS = 35
MAX_DAYS = 3660
#: The analytics' cap, so a mistake here fails unbilled as one there does.
DEFAULT_MAXIMUM_BYTES_BILLED = analytics.DEFAULT_MAXIMUM_BYTES_BILLED
#: Lines per list in the report; the rest are counted.
SHOWN = 20
#: Where the report sends a type change (a table cannot change a column's type in place).
REBUILD_DOC = "docs/schemas.md#changing-a-columns-type"
ADD_DOC = "docs/schemas.md#adding-a-table-or-a-column"

#: What ``extra`` and JSON columns hold a timestamp as (``conversion.format_timestamp``,
#: and ISO 8601 strings with an offset, which a TIMESTAMP column also takes).
TIMESTAMP_TEXT = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
DATE_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
INTEGER_TEXT = r"^-?[0-9]+$"
#: The column type each kind of value suggests (see :func:`suggested_type`).
KIND_TYPES = {
    "string": "STRING",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "integer": "INT64",
    "double": "FLOAT64",
    "boolean": "BOOL",
    "object": "JSON",
    "array": "JSON",
}
#: ``JSON_TYPE`` names that need no second look. BigQuery says ``string`` and
#: ``number``; bqemulator says ``varchar`` and DuckDB's number types (``bigint``,
#: ``ubigint``, ``double``), so strings are matched by both names and numbers are
#: whatever is left, told apart by their text.
_PLAIN_JSON_TYPES = ("object", "array", "boolean", "null")
_STRING_JSON_TYPES = ("string", "varchar")


@dataclass(frozen=True)
class Window:
    """The days read, both ends included."""

    start: datetime.date
    end: datetime.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"


def window(days: int, today: datetime.date) -> Window:
    """The last ``days`` days up to ``today`` (UTC), today included (intraday runs write it)."""
    if not 1 <= days <= MAX_DAYS:
        raise UsageError(f"--days must be from 1 to {MAX_DAYS}, not {days}")
    return Window(today - datetime.timedelta(days=days - 1), today)


# ---------------------------------------------------------------------------
# SQL: pure functions of validated names and real dates
# ---------------------------------------------------------------------------


def _date(day: datetime.date) -> str:
    return bq.date_literals([day])


def _timestamp(day: datetime.date) -> str:
    """Midnight UTC of ``day`` as a literal (``bq.date_literals`` checked it is a date)."""
    _date(day)
    return f"TIMESTAMP '{day.isoformat()} 00:00:00+00'"


def day_filter(column: str, column_type: str, days: Window) -> str:
    """The window as a filter on the partition column itself, with constant bounds: what
    BigQuery prunes partitions by (a function of the column, or a subquery, may not)."""
    name = f"`{bq.check_identifier(column, 'column')}`"
    if column_type == "DATE":
        return f"{name} BETWEEN {_date(days.start)} AND {_date(days.end)}"
    after = days.end + datetime.timedelta(days=1)
    return f"{name} >= {_timestamp(days.start)} AND {name} < {_timestamp(after)}"


def kind_sql(value: str) -> str:
    """What kind of JSON value ``value`` is, the same on BigQuery and bqemulator:
    ``object``, ``array``, ``boolean``, ``null``, ``string``, ``timestamp``, ``date``,
    ``integer``, ``double``, or ``unknown`` (SQL NULL: no such key)."""
    plain = ", ".join(f"'{t}'" for t in _PLAIN_JSON_TYPES)
    strings = ", ".join(f"'{t}'" for t in _STRING_JSON_TYPES)
    text = f"JSON_VALUE({value})"
    return (
        f"CASE WHEN {value} IS NULL THEN 'unknown' "
        f"WHEN JSON_TYPE({value}) IN ({plain}) THEN JSON_TYPE({value}) "
        f"WHEN JSON_TYPE({value}) IN ({strings}) THEN CASE "
        f"WHEN REGEXP_CONTAINS({text}, r'{TIMESTAMP_TEXT}') THEN 'timestamp' "
        f"WHEN REGEXP_CONTAINS({text}, r'{DATE_TEXT}') THEN 'date' ELSE 'string' END "
        f"WHEN REGEXP_CONTAINS({text}, r'{INTEGER_TEXT}') THEN 'integer' "
        "ELSE 'double' END"
    )


def keys_sql(
    project: str,
    dataset: str,
    spec: TableSpec,
    days: Window,
    json_columns: Sequence[str] = (EXTRA_COLUMN,),
) -> str:
    """Per JSON column (``extra`` and the declared ones), key and kind of value: rows,
    first and last day. Top-level keys only (``JSON_KEYS(…, 1)``; keys inside arrays
    are not listed). The columns are unnested side by side from one scan of the
    window's partitions, so each is read (and billed) once."""
    table = bq.table_sql(project, dataset, spec.name)
    partition = spec.partition
    columns = [bq.check_identifier(c, "column") for c in json_columns]
    if not columns:
        raise ValueError("keys_sql needs at least one JSON column")
    pairs = ", ".join(f"STRUCT('{c}' AS json_column, `{c}` AS doc)" for c in columns)
    return (
        "WITH keyed AS (SELECT j.json_column, k AS json_key, "
        f"DATE(`{partition.name}`) AS day, j.doc[k] AS v "
        f"FROM {table}, UNNEST([{pairs}]) AS j, UNNEST(JSON_KEYS(j.doc, 1)) AS k "
        f"WHERE {day_filter(partition.name, partition.type, days)}), "
        f"kinds AS (SELECT json_column, json_key, day, {kind_sql('v')} AS kind FROM keyed) "
        "SELECT json_column, json_key, kind, COUNT(*) AS n, MIN(day) AS first_day, "
        "MAX(day) AS last_day FROM kinds GROUP BY json_column, json_key, kind "
        "ORDER BY json_column, json_key, kind"
    )


def filled(column: Column) -> str:
    """Whether a row fills ``column``: a value, or for a REPEATED one an element."""
    name = f"`{bq.check_identifier(column.name, 'column')}`"
    return f"ARRAY_LENGTH({name}) > 0" if column.repeated else f"{name} IS NOT NULL"


def fill_sql(
    project: str, dataset: str, spec: TableSpec, days: Window, columns: Sequence[Column]
) -> str:
    """The window's rows, and per column how many fill it (``c0``, ``c1``… in order)."""
    table = bq.table_sql(project, dataset, spec.name)
    partition = spec.partition
    counts = "".join(f", COUNTIF({filled(c)}) AS c{i}" for i, c in enumerate(columns))
    return (
        f"SELECT COUNT(*) AS row_count{counts} FROM {table} "
        f"WHERE {day_filter(partition.name, partition.type, days)}"
    )


#: A dead letter's reason when a declared field arrived with another type: the
#: converter's TypeError (``expected integer, got string``, also for an element of a
#: REPEATED column), and a decimal in an INT64 column (``double 2.5 is not a whole
#: INT64``, which quotes the value, so it is reported as ``expected integer, got double``).
TYPE_REASON = r"expected [a-z]+, got [a-z]+"
FRACTION_REASON = r"^(array element [0-9]+: )?double .* is not a whole INT64"


def type_changes_sql(project: str, dataset: str, table: str, days: Window) -> str:
    """``table``'s dead letters of the window whose field arrived with another type: per
    field and change (``expected X, got Y``, never a value), the documents and the first
    and last day. Pruned by ``dead_lettered_at`` (the run's start) and the clustering
    column ``table_name``."""
    source = bq.table_sql(project, dataset, dead_letters.TABLE)
    written = day_filter(dead_letters.PARTITION_COLUMN, "TIMESTAMP", days)
    change = (
        f"CASE WHEN REGEXP_CONTAINS(reason, r'{TYPE_REASON}') "
        f"THEN REGEXP_EXTRACT(reason, r'{TYPE_REASON}') "
        f"WHEN REGEXP_CONTAINS(reason, r'{FRACTION_REASON}') "
        "THEN 'expected integer, got double' END"
    )
    return (
        "WITH letters AS (SELECT field, document_path, partition_day, "
        f"{change} AS reason FROM {source} WHERE {written} "
        f"AND table_name = '{bq.check_identifier(table, 'table')}') "
        "SELECT field, reason, COUNT(DISTINCT document_path) AS documents, "
        "MIN(partition_day) AS first_day, MAX(partition_day) AS last_day "
        "FROM letters WHERE reason IS NOT NULL "
        "GROUP BY field, reason ORDER BY documents DESC, field, reason"
    )


# ---------------------------------------------------------------------------
# What the answers mean
# ---------------------------------------------------------------------------


def suggested_type(kinds: Mapping[str, int]) -> str | None:
    """The column type the values' kinds call for: the one kind's type, FLOAT64 for
    integers and doubles, JSON (which takes any value) for any other mix; None when
    every value was null."""
    seen = {k for k, n in kinds.items() if n and k in KIND_TYPES}
    if not seen:
        return None
    if len(seen) == 1:
        return KIND_TYPES[seen.pop()]
    if seen == {"integer", "double"}:
        return "FLOAT64"
    return "JSON"


def column_name(key: str) -> str:
    """A column name for field ``key``: snake_case, other characters ``_``."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()
    snake = re.sub(r"[^a-z0-9_]", "_", snake).strip("_") or "field"
    if snake[0].isdigit():
        snake = f"f_{snake}"
    return snake[:300] if IDENTIFIER.match(snake[:300]) else "field"


@dataclass
class KeyStat:
    """One key of one JSON column over the window."""

    column: str
    key: str
    rows: int = 0
    first: datetime.date | None = None
    last: datetime.date | None = None
    kinds: Counter = field(default_factory=Counter)

    def add(self, kind: str, n: int, first: datetime.date, last: datetime.date) -> None:
        self.rows += n
        self.kinds[kind] += n
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)

    @property
    def suggested_type(self) -> str | None:
        return suggested_type(self.kinds)

    def kinds_text(self) -> str:
        return ", ".join(
            f"{kind}" if n == self.rows else f"{kind} {n}"
            for kind, n in sorted(self.kinds.items(), key=lambda kv: (-kv[1], kv[0]))
        )


@dataclass(frozen=True)
class TypeChange:
    """A declared field the documents now hold with another type, as dead letters say."""

    field: str
    reason: str
    documents: int
    first: datetime.date | None
    last: datetime.date | None
    column: Column | None = None


@dataclass
class TableDrift:
    """What one table's rows of the window hold that its schema file does not say."""

    spec: TableSpec
    exists: bool = True
    rows: int = 0
    #: Keys of ``extra`` no column declares.
    undeclared: list[KeyStat] = field(default_factory=list)
    #: Keys of ``extra`` a column declares now (rows of days no run replaced since).
    declared_since: list[KeyStat] = field(default_factory=list)
    #: Keys of declared JSON columns first seen after the column's first day in the window.
    new_json_keys: list[KeyStat] = field(default_factory=list)
    empty_columns: list[Column] = field(default_factory=list)
    missing_columns: list[Column] = field(default_factory=list)
    type_changes: list[TypeChange] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(
            self.undeclared
            or self.new_json_keys
            or self.empty_columns
            or self.missing_columns
            or self.type_changes
        )


def checked_columns(spec: TableSpec, present: Iterable[str]) -> list[Column]:
    """The declared columns a row may leave empty, and the table has: not the partition,
    id or owner column, not REQUIRED ones (always filled), not ``drop`` ones (never)."""
    present = {name.lower() for name in present}
    always = {spec.partition_column, spec.id_column}
    if spec.layout == "per_user":
        always.add(spec.user_id_column)
    return [
        c
        for c in spec.columns
        if c.name.lower() in present
        and c.name not in always
        and not c.required
        and c.policy != "drop"
    ]


def key_stats(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], KeyStat]:
    """``keys_sql``'s rows folded per (column, key)."""
    stats: dict[tuple[str, str], KeyStat] = {}
    for row in rows:
        column, key = str(row["json_column"]), str(row["json_key"])
        stat = stats.setdefault((column, key), KeyStat(column, key))
        stat.add(str(row["kind"]), int(row["n"]), row["first_day"], row["last_day"])
    return stats


def sort_keys(stats: Iterable[KeyStat]) -> list[KeyStat]:
    return sorted(stats, key=lambda s: (-s.rows, s.key))


def classify(drift: TableDrift, stats: Mapping[tuple[str, str], KeyStat]) -> None:
    """Split the keys: undeclared ones of ``extra``, ``extra`` keys a column declares
    now, and the keys of declared JSON columns that are new in the window."""
    spec = drift.spec
    sources = {c.source[0]: c for c in spec.columns if len(c.source) == 1}
    undeclared, since, json_keys = [], [], {}
    for (column, key), stat in stats.items():
        if column == EXTRA_COLUMN:
            (since if key in sources else undeclared).append(stat)
        else:
            json_keys.setdefault(column, []).append(stat)
    drift.undeclared = sort_keys(undeclared)
    drift.declared_since = sort_keys(since)
    new = []
    for keys in json_keys.values():
        began = min(s.first for s in keys if s.first is not None)
        new += [s for s in keys if s.first is not None and s.first > began]
    drift.new_json_keys = sorted(new, key=lambda s: (s.column, -s.rows, s.key))


#: What the converter's ``expected X, got Y`` says for each column type (conversion.py).
EXPECTED = {
    "STRING": "string",
    "INT64": "integer",
    "FLOAT64": "double",
    "BOOL": "boolean",
    "TIMESTAMP": "timestamp",
    "DATE": "date",
    "TIME": "time",
}
_EXPECTED_REASON = re.compile(r"^expected (\w+), got ")


def still_stands(reason: str, column: Column | None) -> bool:
    """Whether a dead letter's ``expected X`` is what the column, as declared now,
    still expects: once the schema changed the column's type (or dropped it), the
    letters the old type wrote are history, not drift."""
    match = _EXPECTED_REASON.match(reason)
    if column is None or match is None:
        return False
    expected = match[1]
    return expected == EXPECTED.get(column.type) or (expected == "array" and column.repeated)


def type_changes(spec: TableSpec, rows: Iterable[Mapping[str, Any]]) -> list[TypeChange]:
    """``type_changes_sql``'s rows that still stand, with the column each field feeds."""
    by_field = {".".join(c.source): c for c in spec.columns}
    changes = []
    for row in rows:
        column = by_field.get(str(row["field"]))
        if still_stands(str(row["reason"]), column):
            changes.append(
                TypeChange(
                    field=str(row["field"]),
                    reason=str(row["reason"]),
                    documents=int(row["documents"]),
                    first=row["first_day"],
                    last=row["last_day"],
                    column=column,
                )
            )
    return changes


# ---------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------


def _rows(client: Any, sql: str, cap: int) -> list[Mapping[str, Any]]:
    return list(bq.run_query(client, sql, maximum_bytes_billed=cap).result())


def table_drift(client: Any, dataset: str, spec: TableSpec, days: Window, cap: int) -> TableDrift:
    """The three queries of one table (keys, fills, type changes), each pruned and capped."""
    drift = TableDrift(spec)
    project = client.project
    try:
        table = client.get_table(
            f"{project}.{dataset}.{spec.name}", retry=bq.API_RETRY, timeout=bq.CALL_TIMEOUT
        )
    except api_exceptions.NotFound:
        drift.exists = False
        return drift
    present = {f.name.lower(): f for f in table.schema}
    drift.missing_columns = [c for c in spec.columns if c.name.lower() not in present]
    columns = checked_columns(spec, present)
    (counts,) = _rows(client, fill_sql(project, dataset, spec, days, columns), cap)
    drift.rows = int(counts["row_count"])
    if drift.rows:
        drift.empty_columns = [c for i, c in enumerate(columns) if not counts[f"c{i}"]]
        json_columns = [EXTRA_COLUMN] * (EXTRA_COLUMN in present) + [
            c.name
            for c in spec.columns
            if c.type == "JSON" and not c.repeated and c.name.lower() in present
        ]
        if json_columns:
            sql = keys_sql(project, dataset, spec, days, json_columns)
            classify(drift, key_stats(_rows(client, sql, cap)))
    try:
        sql = type_changes_sql(project, dataset, spec.name, days)
        drift.type_changes = type_changes(spec, _rows(client, sql, cap))
    except api_exceptions.NotFound:  # no run has dead-lettered anything yet
        pass
    return drift


def collect(
    client: Any, dataset: str, specs: Iterable[TableSpec], days: Window, cap: int
) -> list[TableDrift]:
    return [table_drift(client, dataset, spec, days, cap) for spec in specs]


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


def _span(first: datetime.date | None, last: datetime.date | None) -> str:
    if first is None:
        return "no day"
    return f"{first}" if first == last else f"{first}..{last}"


def size(n: int) -> str:
    """``10 GiB``, ``1.5 MiB``, ``512 bytes``: the cap as a person reads it."""
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return _plural(n, "byte")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _shown(key: str) -> str:
    """A key as is when it reads as a name, else quoted (spaces, dots, quotes)."""
    return key if re.fullmatch(r"[A-Za-z0-9_\-]+", key) else json.dumps(key)


def suggestion(stat: KeyStat, spec: TableSpec) -> str:
    """The ``fields`` entry to add (and its ``field_map`` when the names differ)."""
    kind = stat.suggested_type
    if kind is None:
        return "only nulls so far: no type to suggest"
    name = column_name(stat.key)
    taken = {n.lower() for n in spec.column_names}
    if name.lower() in taken:
        name = f"{name}_{kind.lower()}"
    entry = json.dumps({"name": name, "type": kind})
    mapped = f', field_map "{name}": {json.dumps(stat.key)}' if name != stat.key else ""
    return f"declare {entry}{mapped}"


def _listed(items: Sequence[Any], line, indent: str = "    ") -> list[str]:
    out = [indent + line(item) for item in items[:SHOWN]]
    if len(items) > SHOWN:
        out.append(f"{indent}… and {len(items) - SHOWN} more")
    return out


def render_table(drift: TableDrift) -> list[str]:
    """One block: the table's findings, or one line when there are none."""
    spec = drift.spec
    if not drift.exists:
        return [f"{spec.name}: no such table yet (scripts/setup_bigquery.py creates it)"]
    head = f"{spec.name}: {_plural(drift.rows, 'row')} in the window"
    lines = [head + ("" if drift.drifted or drift.declared_since else ", no drift")]
    if drift.missing_columns:
        names = ", ".join(f"{c.name} {c.type}" for c in drift.missing_columns)
        lines.append(
            f"  declared, but not in the table yet: {names} (scripts/setup_bigquery.py adds them)"
        )
    if drift.undeclared:
        lines.append(
            f"  {_plural(len(drift.undeclared), 'undeclared field')} in {EXTRA_COLUMN} "
            f"(declare them in the schema file of {spec.name}, see {ADD_DOC}):"
        )
        lines += _listed(
            drift.undeclared,
            lambda s: (
                f"{_shown(s.key)}: {_plural(s.rows, 'row')}, {_span(s.first, s.last)}, "
                f"{s.kinds_text()} -> {suggestion(s, spec)}"
            ),
        )
    if drift.declared_since:
        lines.append(
            f"  declared now, still in {EXTRA_COLUMN} on rows of days no run has replaced "
            "since (the runs that replace those days move them):"
        )
        lines += _listed(
            drift.declared_since,
            lambda s: f"{_shown(s.key)}: {_plural(s.rows, 'row')}, {_span(s.first, s.last)}",
        )
    if drift.new_json_keys:
        lines.append("  new keys inside JSON columns (first seen after the column's first day):")
        lines += _listed(
            drift.new_json_keys,
            lambda s: (
                f"{s.column}.{_shown(s.key)}: {_plural(s.rows, 'row')}, "
                f"{_span(s.first, s.last)}, {s.kinds_text()}"
            ),
        )
    if drift.empty_columns:
        names = ", ".join(c.name for c in drift.empty_columns[:SHOWN])
        hidden = len(drift.empty_columns) - SHOWN
        more = f" and {hidden} more" if hidden > 0 else ""
        lines.append(f"  declared columns no row of the window fills: {names}{more}")
    if drift.type_changes:
        lines.append(
            "  declared fields arriving with another type (dead letters; not an addition: fix "
            f"the writer, or change the column's type by rebuilding the table, see {REBUILD_DOC}):"
        )
        lines += _listed(
            drift.type_changes,
            lambda t: (
                f"{t.field}"
                + (f" (column {t.column.name} {t.column.type})" if t.column else "")
                + f": {t.reason}, {_plural(t.documents, 'document')}, {_span(t.first, t.last)}"
            ),
        )
    return lines


def render(project: str, dataset: str, days: Window, drifts: Sequence[TableDrift], cap: int) -> str:
    lines = [
        f"schema drift of {project}.{dataset} over {days} ({_plural(days.days, 'day')}; "
        f"only those partitions read, at most {size(cap)} billed per query)"
    ]
    for drift in drifts:
        lines.append("")
        lines += render_table(drift)
    found = [d.spec.name for d in drifts if d.drifted]
    lines.append("")
    lines.append(
        f"drift in {len(found)} of {_plural(len(drifts), 'table')}: {', '.join(found)}"
        if found
        else f"no drift in {_plural(len(drifts), 'table')}"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--project", required=True, help="Google Cloud project of the dataset.")
    p.add_argument("--dataset", required=True, help="BigQuery dataset the sync writes.")
    p.add_argument(
        "--schemas_dir",
        help="Read table schemas from this folder (default: $F2BQ_SCHEMAS_DIR, else schemas/).",
    )
    p.add_argument(
        "--days",
        type=int,
        default=DEFAULT_DAYS,
        help=f"Days read, up to today (UTC) (default {DEFAULT_DAYS}).",
    )
    p.add_argument("--bq_location", help="Location of the dataset (default: the client's).")
    p.add_argument(
        "--maximum_bytes_billed",
        type=int,
        default=DEFAULT_MAXIMUM_BYTES_BILLED,
        help="A query that would bill more fails unbilled (default 10 GiB, as the analytics).",
    )
    p.add_argument(
        "--fail_on_drift",
        action="store_true",
        help="Exit 1 when any table drifted (default: 0, the report is the answer).",
    )
    return p


def main(argv: Sequence[str], now: datetime.datetime | None = None) -> int:
    """Print the report: 0 (1 with ``--fail_on_drift`` and drift), 1 BigQuery failed, 2 bad
    arguments. ``now``: the moment the window ends (tests)."""
    try:
        try:
            args = parser().parse_args(list(argv))
        except SystemExit as done:  # --help
            return int(done.code or 0)
        bq.check_project(args.project)
        bq.check_identifier(args.dataset, "--dataset")
        if not 1 <= args.maximum_bytes_billed <= 2**62:
            raise UsageError("--maximum_bytes_billed must be 1 or more")
        days = window(args.days, (now or datetime.datetime.now(UTC)).astimezone(UTC).date())
        specs = load_specs(args.schemas_dir)
    except (UsageError, bq.UnsafeIdentifier, SchemaError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from pipelines.services import reachability

    cap = args.maximum_bytes_billed
    try:
        reachability.check_bigquery(args.project, args.dataset, args.bq_location)
        client = bq.make_client(args.project, args.bq_location)
        drifts = collect(client, args.dataset, specs.values(), days, cap)
    except reachability.Unreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except api_exceptions.GoogleAPICallError as exc:
        message = error_text.scrub((exc.message or str(exc)).splitlines()[0])
        hint = ""
        if "bytes billed" in message.lower():
            hint = "; raise --maximum_bytes_billed or lower --days"
        print(f"error: {type(exc).__name__}: {message}{hint}", file=sys.stderr)
        return 1
    print(render(args.project, args.dataset, days, drifts, cap))
    return 1 if args.fail_on_drift and any(d.drifted for d in drifts) else 0
