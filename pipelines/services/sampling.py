"""A sample of a collection spread over its whole key range, for ``schema suggest``.

The first N documents by name would all be one user's, or the oldest ids: not a
sample. PartitionQuery would cut the range evenly but the emulator has none, so
one code path serves both: find the first and last document names, draw random
cursors between them (stratified: one per equal slice of the range), and read a
short page from each. Names are read as numbers in the alphabet their ids use,
learnt from the ids read so far, so hex or numeric ids are cut as evenly as
random ones. A cursor that lands on documents already read goes on after them
instead. Neither Firestore nor its emulator scans a collection group by
descending name, so the last name is found by halving the id space with
one-document queries. A collection no larger than the sample is read whole.

Costs: a count aggregation, about 25 one-document queries, and the sampled
documents (one query per page).
"""

from __future__ import annotations

import datetime
import math
import random
from dataclasses import dataclass

from google.api_core import retry as api_retry
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import BaseQuery

from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import TableSpec
from pipelines.plan.splits import ID_ALPHABET, name_key
from pipelines.services import firestore as fs

#: Cursors one round of a sample draws: each is one query.
MAX_POINTS = 50
#: Rounds of cursors before a sample that is still short is returned as it is.
MAX_ROUNDS = 4
#: Halvings of the search for the last document: one limit-1 query (one read) each.
SEARCH_STEPS = 24


@dataclass(frozen=True)
class Sample:
    """Documents read, how many the collection holds, and from how many random
    points (0: the collection was read whole)."""

    documents: tuple[FirestoreDocument, ...]
    total: int
    points: int

    def describe(self, where: str) -> str:
        read = f"read {len(self.documents):,} documents of {self.total:,} in {where}"
        if self.points == 0:
            return f"{read}: the whole collection"
        return (
            f"{read}, in short pages from {self.points} random points spread over the whole "
            "key range"
        )


def alphabet_of(ids: list[str]) -> str:
    """The characters ``ids`` use, in Firestore's (byte) order; none: the auto-id alphabet."""
    chars = {c for i in ids for c in i if c != "/"}
    return "".join(sorted(chars, key=lambda c: c.encode("utf-8"))) or ID_ALPHABET


def between(low: str, high: str, fraction: float, alphabet: str = ID_ALPHABET) -> str:
    """An id about ``fraction`` of the way from ``low`` to ``high``, with both read
    as numbers whose digits are ``alphabet``'s characters (sorted in byte order,
    so the order of the numbers is Firestore's order of the ids)."""
    alphabet = alphabet_of([alphabet, low, high])
    rank = {c: i for i, c in enumerate(alphabet)}
    base, width = len(alphabet), max(len(low), len(high), 1) + 2

    def number(text: str) -> int:
        digits = [rank[c] for c in text] + [0] * (width - len(text))
        return sum(d * base ** (width - 1 - i) for i, d in enumerate(digits))

    lo, hi = number(low), number(high)
    point = lo + int((hi - lo) * min(max(fraction, 0.0), 1.0))
    digits = []
    for _ in range(width):
        point, digit = divmod(point, base)
        digits.append(alphabet[digit])
    return "".join(reversed(digits)).rstrip(alphabet[0]) or low


def cut_depth(first: str, last: str) -> int | None:
    """The first path segment where two names differ: the owner id of a collection
    group, the document id of a top-level collection (None: the same name)."""
    pairs = zip(first.split("/"), last.split("/"), strict=False)
    return next((i for i, (x, y) in enumerate(pairs) if x != y), None)


def cursors(
    first: str, last: str, points: int, rng: random.Random, alphabet: str = ID_ALPHABET
) -> list[str]:
    """``points`` cursor paths between two document paths, one in each equal slice,
    cut at :func:`cut_depth`; each a document path a query can start at."""
    depth = cut_depth(first, last)
    if depth is None:
        return []
    a, b = first.split("/"), last.split("/")
    prefix = "/".join(a[:depth])
    # A cut on a collection id needs a document id after it; "0" sorts early.
    suffix = "/0" if depth % 2 == 0 else ""
    out = []
    for i in range(points):
        point = between(a[depth], b[depth], (i + rng.random()) / points, alphabet)
        out.append(f"{prefix}/{point}{suffix}" if prefix else f"{point}{suffix}")
    return out


def _names(query: BaseQuery, read_time: datetime.datetime, retry: api_retry.Retry) -> list[str]:
    stream = query.stream(read_time=read_time, retry=retry, timeout=retry.timeout)
    return [snapshot.reference.path for snapshot in stream]


def _last_name(
    client: firestore.Client,
    spec: TableSpec,
    first: str,
    read_time: datetime.datetime,
    retry: api_retry.Retry,
) -> str:
    """About the last document name: the id space above the first one's top-level
    id is halved, a limit-1 query from each cursor saying whether any document
    lies beyond it. Ids are searched up to ``~`` (all ASCII ids)."""
    parent, low = first.split("/")[:2]
    alphabet = alphabet_of([ID_ALPHABET, low, "~"])
    found, below, above = first, 0.0, 1.0
    for _ in range(SEARCH_STEPS):
        middle = (below + above) / 2
        cursor = f"{parent}/{between(low, '~' * 8, middle, alphabet)}"
        names = _names(fs.range_query(client, spec, cursor, None).limit(1), read_time, retry)
        if names:
            below, found = middle, names[0]
        else:
            above = middle
    return found


def sample(
    client: firestore.Client,
    spec: TableSpec,
    size: int,
    read_time: datetime.datetime,
    retry: api_retry.Retry,
    seed: int | None = None,
) -> Sample:
    """About ``size`` documents of ``spec``'s collection (group) at ``read_time``."""
    total = fs.count_all(client, spec, read_time, retry)
    base = fs.base_query(client, spec)
    if total <= size:
        docs = fs.stream_documents(base.limit(size), spec.name, read_time, retry)
        return Sample(tuple(docs), total, 0)
    first = _names(base.limit(1), read_time, retry)[0]
    last = _last_name(client, spec, first, read_time, retry)
    depth = cut_depth(first, last)
    points = min(MAX_POINTS, size)
    page = math.ceil(size / points)
    rng = random.Random(seed)
    found: dict[str, FirestoreDocument] = {}
    #: Where reading goes on after a landing spot already read: its last document.
    further: dict[str, str] = {}
    queries = 0
    starts = [first]  # the range's start is part of the range
    for _ in range(MAX_ROUNDS):
        seen = [p.split("/")[depth] for p in (first, last, *found)] if depth is not None else []
        starts += cursors(first, last, points - len(starts), rng, alphabet_of(seen))
        for cursor in sorted(starts, key=name_key):
            queries += 1
            page_docs = list(
                fs.stream_documents(
                    fs.range_query(client, spec, cursor, None).limit(page),
                    spec.name,
                    read_time,
                    retry,
                )
            )
            if page_docs and page_docs[0].path in found:  # landed where a page was read
                landing = page_docs[0].path
                after = client.document(further.get(landing, page_docs[-1].path))
                query = base.start_after({"__name__": after}).limit(page)
                page_docs = list(fs.stream_documents(query, spec.name, read_time, retry))
                if page_docs:
                    further[landing] = page_docs[-1].path
            for doc in page_docs:
                if len(found) < size:
                    found.setdefault(doc.path, doc)
        starts = []
        if len(found) >= size:
            break
    return Sample(tuple(found.values()), total, queries)
