"""Cut a collection's document names into ranges that hold each document exactly once.

Pure functions, no client: the read transform asks Firestore for split points
(PartitionQuery cursors) or falls back to name bands, and this module turns
either into half-open ranges ``[start, end)`` of document names.

Ranges are only disjoint and complete if their boundaries are sorted in the
order Firestore itself uses for ``__name__``, and that is not plain string
order: names compare segment by segment (``users/a/tasks/x`` sorts before
``users/a-b/tasks/y``, although ``/`` > ``-`` as characters), segments by
their UTF-8 bytes, and legacy numeric ids (``__id42__``) before every other
id, by value. The Python client yields PartitionQuery cursors in the order the
pages arrive, which need not be that order, so they are always sorted here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.convert.table_spec import TableSpec

#: Characters auto-generated Firestore ids are drawn from, in Firestore's byte order.
ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: Most ranges the name-band fallback can cut (one band per first character).
MAX_NAME_BANDS = len(ID_ALPHABET)
_NUMERIC_ID = re.compile(r"__id(-?[0-9]+)__\Z")
_INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True)
class NameRange:
    """Documents of one table with ``start <= name < end`` (None: open end)."""

    table: str
    start: str | None
    end: str | None


def segment_key(segment: str) -> tuple[int, int | bytes]:
    """Sort key of one path segment: numeric ids first, by value; then UTF-8 bytes."""
    numeric = _NUMERIC_ID.match(segment)
    if numeric and int(numeric.group(1)) in _INT64:
        return (0, int(numeric.group(1)))
    return (1, segment.encode("utf-8"))


def name_key(path: str) -> tuple[tuple[int, int | bytes], ...]:
    """Sort key of a document path (``users/u1/tasks/t1``) in Firestore's ``__name__`` order.

    Tuples compare element by element and a prefix sorts first, as a parent
    path sorts before its children in Firestore.
    """
    return tuple(segment_key(s) for s in path.split("/"))


def sorted_boundaries(cursors: Iterable[str]) -> list[str]:
    """Split points in Firestore's name order, each once, whatever order they came in."""
    unique = {name_key(c): c for c in cursors}
    return [unique[key] for key in sorted(unique)]


def ranges_from_boundaries(table: str, boundaries: Iterable[str]) -> list[NameRange]:
    """Half-open ranges between sorted, deduplicated ``boundaries``, open at both ends.

    Together they hold every name exactly once: a name below the first boundary
    is in the first range, one at or above the last in the last, and any other
    in the one range whose bounds enclose it.
    """
    edges: list[str | None] = [None, *sorted_boundaries(boundaries), None]
    return [NameRange(table, lo, hi) for lo, hi in zip(edges, edges[1:], strict=False)]


def name_bands(prefix: str, num_splits: int) -> list[str]:
    """Split points ``prefix/<c>`` that cut the id alphabet into ``num_splits`` bands.

    Ids are spread over the id alphabet (auto-ids uniformly), so this balances
    ranges without reading a document. At most :data:`MAX_NAME_BANDS` bands: a
    larger ``num_splits`` gives that many.
    """
    n = min(num_splits, MAX_NAME_BANDS)
    if n <= 1:
        return []
    step = MAX_NAME_BANDS / n
    return [f"{prefix}/{ID_ALPHABET[round(i * step)]}" for i in range(1, n)]


def name_boundaries(spec: TableSpec, num_splits: int) -> list[str]:
    """Split points on document names when the server has no PartitionQuery.

    Bands are cut on the first character of the top-level id: the parent
    document for collection groups, the document itself for a top-level collection.
    """
    prefix = spec.parent_collection if spec.layout == "per_user" else spec.collection
    return name_bands(prefix, num_splits)
