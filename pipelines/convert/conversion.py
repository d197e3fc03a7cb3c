"""Turn a Firestore document into a typed row under its table's declared schema.

Pure functions, no Beam and no I/O, so every value type and every bad input is
unit-tested directly. A document either becomes a row or raises
:class:`ConversionError` naming the field and the reason; the caller routes that
to the dead-letter table.

Rows are JSON-ready dicts in the form BigQuery's newline-delimited JSON loads
accept: TIMESTAMP as RFC 3339 UTC with microseconds (Firestore keeps
nanoseconds; BigQuery keeps microseconds, so the last three digits are cut),
FLOAT64 NaN/±Infinity as the strings BigQuery reads back as those values,
BYTES as base64, GEOGRAPHY as WKT (``POINT(lng lat)``), RECORD as an object of
its sub-fields and REPEATED as an array.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import hmac
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.cloud.firestore_v1 import GeoPoint
from google.cloud.firestore_v1.base_document import BaseDocumentReference

from pipelines.clock import UTC
from pipelines.convert import time_source
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import (
    DOCUMENT_PATH_COLUMN,
    EXTRA_COLUMN,
    UPDATE_TIME_COLUMN,
    Column,
    TableSpec,
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Largest raw document kept in a dead-letter row; BigQuery caps a STRING cell at 10 MB.
MAX_RAW_DOCUMENT_CHARS = 2_000_000
#: Days a day-partitioned BigQuery table can hold in a partition of their own.
PARTITION_RANGE = ("1960-01-01", "2159-12-31")


class ConversionError(ValueError):
    """A document cannot become a row; ``field`` names the offending Firestore field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, GeoPoint):
        return "geopoint"
    if isinstance(value, BaseDocumentReference):
        return "reference"
    return type(value).__name__


def type_name(value: Any) -> str:
    """A Firestore value's kind in the words dead letters use (``integer``,
    ``map``, ``geopoint`` …): what ``schema suggest`` counts, too."""
    return _type_name(value)


def format_timestamp(value: datetime.datetime) -> str:
    """RFC 3339 in UTC with microseconds, the form BigQuery loads and returns."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # isoformat, not strftime: "%Y" does not zero-pad years before 1000 on Linux.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_timestamp(value: Any) -> datetime.datetime:
    """A Firestore timestamp, or an ISO 8601 string carrying its UTC offset."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"unparsable timestamp {_preview(value)}") from None
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp {_preview(value)} has no UTC offset")
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"timestamp {_preview(value)} is out of range") from None
    raise TypeError(f"expected timestamp, got {_type_name(value)}")


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseDocumentReference):
        return value.path
    raise TypeError(f"expected string, got {_type_name(value)}")


def _to_int64(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected integer, got boolean")
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"integer {value} is outside INT64")
        return value
    if isinstance(value, float):
        # JavaScript apps write every number as a double; 12.0 is still an integer.
        if math.isfinite(value) and value.is_integer() and INT64_MIN <= value <= INT64_MAX:
            return int(value)
        raise ValueError(f"double {value!r} is not a whole INT64")
    raise TypeError(f"expected integer, got {_type_name(value)}")


def _to_float64(value: Any) -> float | str:
    if isinstance(value, bool):
        raise TypeError("expected double, got boolean")
    if isinstance(value, (int, float)):
        value = float(value)
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    raise TypeError(f"expected double, got {_type_name(value)}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected boolean, got {_type_name(value)}")


def _to_timestamp(value: Any) -> str:
    return format_timestamp(parse_timestamp(value))


def _to_date(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return parse_timestamp(value).astimezone(UTC).date().isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return datetime.date.fromisoformat(text).isoformat()
            return parse_timestamp(text).date().isoformat()
        except ValueError:
            raise ValueError(f"unparsable date {_preview(value)} (expected YYYY-MM-DD)") from None
    raise TypeError(f"expected date, got {_type_name(value)}")


def _to_time(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return parse_timestamp(value).astimezone(UTC).time().isoformat()
    if isinstance(value, str):
        try:
            parsed = datetime.time.fromisoformat(value.strip())
        except ValueError:
            try:
                return parse_timestamp(value).time().isoformat()
            except ValueError:
                pass
            raise ValueError(f"unparsable time {_preview(value)} (expected HH:MM[:SS])") from None
        if parsed.tzinfo is not None:
            raise ValueError(f"time {_preview(value)} carries an offset; TIME has none")
        return parsed.isoformat()
    raise TypeError(f"expected time, got {_type_name(value)}")


def to_json_value(value: Any, depth: int = 0) -> Any:
    """Any Firestore value as plain JSON, for JSON columns, ``extra`` and dead letters.

    JSON has no NaN, bytes, timestamps or geopoints, so those become strings and
    small objects with an unambiguous shape.
    """
    if depth > 100:
        raise ValueError("nested deeper than 100 levels")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _to_float64(value)
    if isinstance(value, datetime.datetime):
        return format_timestamp(value)
    if isinstance(value, bytes):
        return {"bytes_base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, GeoPoint):
        return {"latitude": value.latitude, "longitude": value.longitude}
    if isinstance(value, BaseDocumentReference):
        return {"reference": value.path}
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v, depth + 1) for v in value]
    if hasattr(value, "to_map_value"):  # firestore Vector
        return [to_json_value(v, depth + 1) for v in value]
    raise TypeError(f"unsupported Firestore value {_type_name(value)}")


def _to_json(value: Any) -> Any:
    return to_json_value(value)


def _to_geography(value: Any) -> str:
    """A geopoint as WKT, longitude first (``POINT(2.3522 48.8566)``), as BigQuery
    loads GEOGRAPHY from JSON."""
    if isinstance(value, GeoPoint):
        return f"POINT({value.longitude!r} {value.latitude!r})"
    raise TypeError(f"expected geopoint, got {_type_name(value)}")


def _to_bytes(value: Any) -> str:
    """Bytes as base64, the form BigQuery's JSON loads take for BYTES."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"expected bytes, got {_type_name(value)}")


SCALAR_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "STRING": _to_string,
    "INT64": _to_int64,
    "FLOAT64": _to_float64,
    "BOOL": _to_bool,
    "TIMESTAMP": _to_timestamp,
    "DATE": _to_date,
    "TIME": _to_time,
    "JSON": _to_json,
}
#: Every type's converter: the scalars above, and the two Firestore value types
#: that have a BigQuery type of their own (RECORD is :func:`_to_record`).
CONVERTERS: dict[str, Callable[[Any], Any]] = {
    **SCALAR_CONVERTERS,
    "GEOGRAPHY": _to_geography,
    "BYTES": _to_bytes,
}


def _epoch_converter(column: Column) -> Callable[[Any], Any]:
    """TIMESTAMP or DATE from an epoch number, as the column's timestamp_source says."""
    source = column.timestamp_source

    def convert(value: Any) -> str:
        instant = time_source.from_epoch(value, source)
        if column.type == "DATE":
            return instant.date().isoformat()
        return format_timestamp(instant)

    return convert


def _converter(column: Column) -> Callable[[Any], Any]:
    if time_source.is_epoch(column.timestamp_source):
        return _epoch_converter(column)
    if column.type == "RECORD":
        return lambda value: _to_record(column, value)
    return CONVERTERS[column.type]


def _at(exc: Exception, *path: str) -> Exception:
    """``exc`` (same class, same message) naming the sub-field it is about: the
    caller prefixes the RECORD's own field path (``stats`` + ``heartRateAvg``)."""
    located = type(exc)(str(exc))
    located.field_path = path + getattr(exc, "field_path", ())  # type: ignore[attr-defined]
    return located


def _to_record(column: Column, value: Any) -> dict[str, Any]:
    """A map into an object of the RECORD's sub-fields, each read from its key
    (or its field_map path inside the map) and converted by its own column.
    Keys no sub-field declares are left for ``extra`` (see :func:`_consumed`)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"expected map, got {_type_name(value)}")
    out: dict[str, Any] = {}
    for sub in column.fields:
        found, item = _lookup(value, sub.source)
        if not found and sub.required:
            raise _at(ValueError("missing required field"), *sub.source)
        try:
            out[sub.name] = convert_value(sub, item)
        except (TypeError, ValueError) as exc:
            raise _at(exc, *sub.source) from None
    return out


def _preview(value: str, limit: int = 40) -> str:
    text = value if len(value) <= limit else value[:limit] + "…"
    return json.dumps(text, ensure_ascii=True)


def _lookup(data: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    """(found, value) for a top-level or nested field path."""
    current: Any = data
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current


def convert_value(column: Column, value: Any) -> Any:
    """One Firestore value into the JSON-ready form of ``column``; raises on mismatch."""
    if value is None:
        if column.required:
            raise ValueError("required value is null")
        return [] if column.repeated else None
    convert = _converter(column)
    if column.repeated:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected array, got {_type_name(value)}")
        out = []
        for i, item in enumerate(value):
            if item is None:
                raise ValueError(f"array element {i} is null; BigQuery arrays cannot hold NULL")
            try:
                out.append(_check_allowed(column, convert(item)))
            except (TypeError, ValueError) as exc:
                # An element that is itself an array lands here too ("expected
                # integer, got array"): BigQuery has no arrays of arrays.
                located = type(exc)(f"array element {i}: {exc}")
                located.field_path = getattr(exc, "field_path", ())  # type: ignore[attr-defined]
                raise located from None
        return out
    return _check_allowed(column, convert(value))


def _check_allowed(column: Column, result: Any) -> Any:
    if column.allowed_values and result not in column.allowed_values:
        raise ValueError(f"{_preview(str(result))} is not one of {list(column.allowed_values)}")
    return result


Hasher = Callable[[str], str]


@dataclass(frozen=True)
class Hashing:
    """Where the HMAC key of the ``hash`` policy comes from: a Secret Manager
    version on workers (``secret``), or an environment variable locally (``env``).

    Never from the repository or the pipeline options, which Dataflow shows in its UI.
    """

    secret: str | None = None
    env: str = "F2BQ_HASH_KEY"

    def key(self) -> bytes | None:
        if self.secret:
            from google.cloud import secretmanager

            client = secretmanager.SecretManagerServiceClient()
            return client.access_secret_version(name=self.secret).payload.data
        key = os.environ.get(self.env)
        return key.encode("utf-8") if key else None


def hmac_hasher(key: bytes) -> Hasher:
    """Keyed SHA-256, so hashed values still join across tables but cannot be reversed."""

    def _hash(value: str) -> str:
        return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    return _hash


def document_to_row(
    spec: TableSpec,
    doc: FirestoreDocument,
    run_id: str,
    read_time: str,
    hasher: Hasher | None = None,
) -> dict[str, Any]:
    """The typed row for ``doc``, or :class:`ConversionError` for the first bad field."""
    segments = doc.segments
    derived: dict[str, Any] = {spec.id_column: doc.document_id}
    if spec.layout == "per_user":
        if (
            len(segments) != 4
            or segments[0] != spec.parent_collection
            or segments[2] != spec.collection
        ):
            layout = f"{spec.parent_collection}/{{user_id}}/{spec.collection}"
            raise ConversionError("__name__", f"path is outside the layout {layout}")
        derived[spec.user_id_column] = segments[1]
    elif len(segments) != 2 or segments[0] != spec.collection:
        raise ConversionError(
            "__name__", f"path is outside the top-level collection {spec.collection}"
        )

    # The partition column first: without it the row has no day to live in.
    ordered = sorted(spec.columns, key=lambda c: c.name != spec.partition_column)
    row: dict[str, Any] = {}
    consumed: set[tuple[str, ...]] = set()
    #: RECORD columns kept whole, and the map (or array of maps) each read: the
    #: keys their sub-fields do not declare go back to ``extra``.
    records: list[tuple[Column, Any]] = []
    for column in ordered:
        if column.name in derived and column.source == (column.name,):
            row[column.name] = derived[column.name]
            # The field is redundant with the path; it is consumed, and must agree.
            found, value = _lookup(doc.data, column.source)
            if found:
                consumed.add(column.source)
                if value is not None and value != derived[column.name]:
                    raise ConversionError(
                        column.name,
                        f"field disagrees with the document path ({_preview(str(value))})",
                    )
            continue
        found, value = column_value(column, doc)
        if found and not column.from_create_time:
            consumed.add(column.source)
            if column.type == "RECORD" and column.policy == "keep" and value is not None:
                records.append((column, value))
        field_name = CREATE_TIME_FIELD if column.from_create_time else ".".join(column.source)
        is_partition = column.name == spec.partition_column
        if not found and (column.required or is_partition):
            label = "partition value" if is_partition else "required field"
            raise ConversionError(field_name, f"missing {label}")
        try:
            converted = convert_value(column, value)
        except (TypeError, ValueError) as exc:
            field_name = ".".join((field_name, *getattr(exc, "field_path", ())))
            if column.policy != "keep" and isinstance(exc, ValueError):
                # Value errors quote the value; a protected one must not leak that way.
                reason = f"invalid value (withheld: policy '{column.policy}')"
                raise ConversionError(field_name, reason) from None
            raise ConversionError(field_name, str(exc)) from None
        if is_partition and converted is None:
            # A NULLABLE partition column: a row without a day would crash partition_day.
            raise ConversionError(field_name, "partition value is null")
        if is_partition and not partitionable(converted[:10]):
            # BigQuery puts such rows in __UNPARTITIONED__, where no window ever reaches.
            raise ConversionError(
                field_name,
                f"partition day {converted[:10]} is outside BigQuery's partitionable range "
                f"{PARTITION_RANGE[0]}..{PARTITION_RANGE[1]}",
            )
        if converted is not None and column.policy == "drop":
            converted = None
        elif converted not in (None, []) and column.policy == "hash":
            if hasher is None:
                raise ConversionError(field_name, "policy 'hash' needs a hash key")
            converted = [hasher(v) for v in converted] if column.repeated else hasher(converted)
        row[column.name] = converted

    extra = _unconsumed(doc.data, consumed)
    for column, value in records:
        left = _record_leftover(column, value, _below(consumed, column.source))
        if left is not None:
            extra = _put(extra, column.source, left)
    try:
        row[EXTRA_COLUMN] = to_json_value(extra) if extra else None
    except (TypeError, ValueError) as exc:
        raise ConversionError(EXTRA_COLUMN, str(exc)) from None
    row[DOCUMENT_PATH_COLUMN] = doc.path
    row[UPDATE_TIME_COLUMN] = format_timestamp(doc.update_time) if doc.update_time else None
    row["_run_id"] = run_id
    row["_read_time"] = read_time
    return row


def _unconsumed(data: Mapping[str, Any], consumed: set[tuple[str, ...]]) -> dict[str, Any]:
    """The fields no column took; a nested mapping (``meta.sent_at``) leaves its siblings."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if (key,) in consumed:
            continue
        nested = {path[1:] for path in consumed if len(path) > 1 and path[0] == key}
        if nested and isinstance(value, Mapping):
            value = _unconsumed(value, nested)
            if not value:
                continue
        out[key] = value
    return out


def _record_leftover(
    column: Column, value: Any, beneath: set[tuple[str, ...]] = frozenset()
) -> Any:
    """What of a RECORD column's map (or array of maps) no sub-field declares, in
    the same shape, or None if nothing is left. ``beneath``: paths inside the map
    that other columns read (a top-level column with a field_map path)."""
    if column.repeated:
        if not isinstance(value, (list, tuple)):
            return None
        single = dataclasses.replace(column, mode="NULLABLE")
        lefts = [_record_leftover(single, item) for item in value]
        return [left or {} for left in lefts] if any(lefts) else None
    if not isinstance(value, Mapping):
        return None
    taken = {sub.source for sub in column.fields} | set(beneath)
    left = _unconsumed(value, taken)
    for sub in column.fields:
        found, item = _lookup(value, sub.source)
        if found and sub.type == "RECORD" and item is not None:
            sub_left = _record_leftover(sub, item, _below(beneath, sub.source))
            if sub_left is not None:
                left = _put(left, sub.source, sub_left)
    return left or None


def _below(paths: set[tuple[str, ...]], prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The paths strictly inside ``prefix``, relative to it."""
    n = len(prefix)
    return {p[n:] for p in paths if len(p) > n and p[:n] == prefix}


def _put(data: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``value`` at ``path``, maps along the way copied too."""
    out = dict(data)
    head, rest = path[0], path[1:]
    if not rest:
        out[head] = value
    else:
        inner = out.get(head)
        out[head] = _put(inner if isinstance(inner, Mapping) else {}, rest, value)
    return out


#: The field name a dead letter gives a create_time column (no field is read).
CREATE_TIME_FIELD = "__create_time__"


def column_value(column: Column, doc: FirestoreDocument) -> tuple[bool, Any]:
    """(found, value) of a column in ``doc``: its field, or the document's create time."""
    if column.from_create_time:
        return doc.create_time is not None, doc.create_time
    return _lookup(doc.data, column.source)


def partition_day(spec: TableSpec, row: Mapping[str, Any]) -> datetime.date:
    """The UTC day a converted row belongs to."""
    return datetime.date.fromisoformat(str(row[spec.partition_column])[:10])


def partitionable(day: str) -> bool:
    """Whether a ``YYYY-MM-DD`` day can have a partition of its own."""
    return PARTITION_RANGE[0] <= day <= PARTITION_RANGE[1]


def dead_letter_day(spec: TableSpec, doc: FirestoreDocument) -> datetime.date | None:
    """The day a rejected document is filed under: None if no partition could hold it."""
    day = document_day(spec, doc)
    return day if day is not None and partitionable(day.isoformat()) else None


def document_day(spec: TableSpec, doc: FirestoreDocument) -> datetime.date | None:
    """The partition day of a document that may not convert, or None if it has none."""
    found, value = column_value(spec.partition, doc)
    if not found or value is None:
        return None
    try:
        return datetime.date.fromisoformat(convert_value(spec.partition, value)[:10])
    except (TypeError, ValueError):
        return None


def protected(spec: TableSpec, data: Mapping[str, Any], hasher: Hasher | None) -> dict:
    """``data`` with the column policies applied, for anything that leaves the worker raw.

    Dropped fields are removed; hashed ones are hashed (or removed if they are
    not strings or there is no key), so a dead letter cannot leak what the
    table itself protects.
    """
    guarded = [c for c in spec.columns if c.policy != "keep"]
    if not guarded:
        return dict(data)
    out = dict(data)
    for column in guarded:
        parent: Any = out
        for part in column.source[:-1]:
            if not isinstance(parent.get(part), Mapping):
                parent = None
                break
            parent[part] = dict(parent[part])
            parent = parent[part]
        leaf = column.source[-1]
        if parent is None or leaf not in parent:
            continue
        value = parent[leaf]
        if column.policy == "hash" and hasher is not None and isinstance(value, str):
            parent[leaf] = hasher(value)
        else:
            del parent[leaf]
    return out


def raw_document_json(doc: FirestoreDocument, data: Mapping[str, Any] | None = None) -> str:
    """The whole document (or ``data``) as JSON text for the dead-letter table, cut if huge."""
    try:
        text = json.dumps(
            to_json_value(doc.data if data is None else data), ensure_ascii=False, sort_keys=True
        )
    except (TypeError, ValueError) as exc:
        text = json.dumps({"unrepresentable": str(exc)})
    if len(text) > MAX_RAW_DOCUMENT_CHARS:
        text = text[:MAX_RAW_DOCUMENT_CHARS] + "…[truncated]"
    return text
