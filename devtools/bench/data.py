"""What the benchmark writes to Firestore, and so knows a run must read; and what it reads
back of BigQuery to compare.

The backfill scenario seeds a fixed number of documents over a 14-day window
(:func:`seed`); the others seed a history (:func:`seed_history`), then new
documents, edits and hard deletes, recording every document's day so that they
can say how many a run needed and what its tables must hold.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import math
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from devtools import sample_data
from pipelines.convert.table_spec import DOCUMENT_PATH_COLUMN, RUN_METADATA_COLUMNS, TableSpec

UTC = datetime.UTC
DAYS = 14
SEED = 7
#: Share of the edited documents that also move to another day.
MOVED_SHARE = 0.3
#: A field each table with a change field gets a new value in when edited.
EDIT_FIELD = {"tasks": "description", "projects": "description", "routines": "name"}
#: The column that orders the rows of the sync's own tables.
ROW_KEYS = {"_dead_letters": "document_path", "_sync_runs": "started_at"}


@dataclass
class Dataset:
    """What was seeded: the window and how many documents each collection holds."""

    docs: int
    users: int
    days: int
    per_user_per_day: int
    start: datetime.date
    end: datetime.date
    per_collection: dict[str, int]
    seed_seconds: float


def seed(db: Any, n: int, end: datetime.date) -> Dataset:
    """Write exactly ``n`` sample documents over ``DAYS`` days ending at ``end``."""
    users = max(10, n // 200)
    per = max(1, math.ceil(n / (users * DAYS)))
    counts: collections.Counter[str] = collections.Counter()

    def counted() -> Iterator[tuple[str, dict[str, Any]]]:
        for path, data in itertools.islice(sample_data.documents(users, DAYS, end, per, SEED), n):
            counts[path.split("/")[2]] += 1
            yield path, data

    t0 = time.perf_counter()
    written = sample_data.write(db, counted())
    took = time.perf_counter() - t0
    if written != n:
        raise RuntimeError(f"seeded {written} documents, wanted {n}")
    start = end - datetime.timedelta(days=DAYS - 1)
    return Dataset(n, users, DAYS, per, start, end, dict(sorted(counts.items())), took)


@dataclass
class Doc:
    """One seeded document, as the benchmark knows it (to count what a run needs)."""

    path: str
    spec: TableSpec
    day: datetime.date
    at: datetime.datetime


@dataclass
class History:
    """What is in Firestore for one measurement of a history."""

    days: int
    per_day: int
    end: datetime.date  # the last day of the seeded history (the first nightly's yesterday)
    docs: dict[str, Doc]
    seed_seconds: float = 0.0

    def per_table_day(self) -> dict[str, collections.Counter[str]]:
        out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for d in self.docs.values():
            out[d.spec.name][d.day.isoformat()] += 1
        return out

    def expected_rows(self, specs: Iterable[TableSpec]) -> dict[str, dict[str, int]]:
        """Rows per table and day a full rebuild would give: Firestore as written."""
        per = self.per_table_day()
        return {s.name: dict(per.get(s.name, {})) for s in specs}

    def in_days(self, first: datetime.date, last: datetime.date) -> int:
        return sum(first <= d.day <= last for d in self.docs.values())


def day_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), tzinfo=UTC)


def spec_by_collection(specs: Iterable[TableSpec]) -> dict[str, TableSpec]:
    return {s.collection: s for s in specs}


def partition_field(spec: TableSpec) -> str:
    return spec.partition.source[0]


def change_field(spec: TableSpec) -> str | None:
    return spec.column(spec.change_field).source[0] if spec.change_field else None


def users_and_per(per_day: int) -> tuple[int, int]:
    """``users x per_user_per_day == per_day`` (sample_data writes exactly that many a day)."""
    per = 5 if per_day % 5 == 0 else 1
    return per_day // per, per


def write_parallel(db: Any, pairs: Iterable[tuple[str, dict[str, Any]]], threads: int = 4) -> int:
    """Batched writes (500 per commit, Firestore's limit), a few commits in flight."""

    def commit(chunk: list[tuple[str, dict[str, Any]]]) -> int:
        batch = db.batch()
        for path, data in chunk:
            batch.set(db.document(path), data)
        batch.commit()
        return len(chunk)

    it = iter(pairs)
    chunks = iter(lambda: list(itertools.islice(it, 500)), [])
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(commit, chunks))


def seed_history(
    db: Any, specs: list[TableSpec], days: int, per_day: int, end: datetime.date,
    sample_per_day: int | None = None,
) -> History:  # fmt: skip
    """``per_day`` documents on each of ``days`` days ending at ``end``, ``updated_at`` =
    ``created_at`` (nothing edited since it was written). sample_data writes all five
    collections: for fewer (``specs``), ``sample_per_day`` of its documents a day are
    drawn and each day's first ``per_day`` of those collections kept."""
    users, per = users_and_per(sample_per_day or per_day)
    by_collection = spec_by_collection(specs)
    history, kept = History(days, per_day, end, {}), collections.Counter[datetime.date]()

    def recorded() -> Iterator[tuple[str, dict[str, Any]]]:
        for path, data in sample_data.documents(users, days, end, per, SEED):
            spec = by_collection.get(path.split("/")[2])
            if spec is None or kept[data[partition_field(spec)].date()] == per_day:
                continue
            at = data[partition_field(spec)]
            kept[at.date()] += 1
            history.docs[path] = Doc(path, spec, at.date(), at)
            yield path, data

    t0 = time.perf_counter()
    written = write_parallel(db, recorded())
    history.seed_seconds = time.perf_counter() - t0
    if written != days * per_day:
        raise RuntimeError(f"seeded {written} documents, wanted {days * per_day}")
    return history


def add_new_day(db: Any, specs: list[TableSpec], history: History, day: datetime.date) -> set[str]:
    """One day's new documents on ``day`` (today, for the next night's "yesterday").

    Their times are spread over the part of ``day`` that has passed (never after
    the clock), ``updated_at`` = ``created_at`` as an app writes a new document:
    those written after the last run's snapshot are what the change query finds,
    the earlier ones what the day's range read finds.
    """
    users, per = users_and_per(history.per_day)
    by_collection = spec_by_collection(specs)
    origin = day_start(day)
    elapsed = max(datetime.timedelta(seconds=60), datetime.datetime.now(UTC) - origin)
    scale = min(1.0, (elapsed - datetime.timedelta(seconds=5)) / datetime.timedelta(days=1))
    pairs = []
    for path, data in sample_data.documents(users, 1, day, per, SEED + history.days):
        spec = by_collection[path.split("/")[2]]
        at = origin + (data[partition_field(spec)] - origin) * scale
        data[partition_field(spec)] = at
        if change_field(spec):
            data[change_field(spec)] = at
        history.docs[path] = Doc(path, spec, at.date(), at)
        pairs.append((path, data))
    write_parallel(db, pairs)
    return {path for path, _ in pairs}


def edit_old_documents(
    db: Any, history: History, count: int, rng: Any
) -> tuple[set[str], list[str]]:
    """Edit ``count`` documents of the history (tables with a change field), ``updated_at``
    = now; a share of them also move to another day of the history."""
    candidates = sorted(
        p for p, d in history.docs.items() if d.spec.change_field and d.day <= history.end
    )
    chosen = rng.sample(candidates, min(count, len(candidates)))
    moved = chosen[: math.ceil(len(chosen) * MOVED_SHARE)] if history.days > 1 else []
    batch = db.batch()
    for path in chosen:
        doc = history.docs[path]
        now = datetime.datetime.now(UTC)
        update: dict[str, Any] = {
            change_field(doc.spec): now,
            EDIT_FIELD.get(doc.spec.collection, "description"): f"edited {now:%H:%M:%S}",
        }
        if path in moved:
            offset = rng.randrange(1, history.days)
            new_day = history.end - datetime.timedelta(
                days=((history.end - doc.day).days + offset) % history.days
            )
            at = day_start(new_day) + (doc.at - day_start(doc.day))
            update[partition_field(doc.spec)] = at
            history.docs[path] = Doc(path, doc.spec, new_day, at)
        batch.update(db.document(path), update)
    batch.commit()
    return set(chosen), moved


def delete_in_verify_window(
    db: Any, history: History, yesterday: datetime.date, verify_days: int, count: int, rng: Any
) -> list[Doc]:
    """Hard-delete ``count`` documents of a table without a change field, one per day,
    on days the next run's drift check covers."""
    first = yesterday - datetime.timedelta(days=verify_days - 1)
    by_day: dict[datetime.date, list[str]] = collections.defaultdict(list)
    for path, d in history.docs.items():
        if not d.spec.change_field and d.spec.collection == "interactions":
            if first <= d.day < yesterday:
                by_day[d.day].append(path)
    days = rng.sample(sorted(by_day), min(count, len(by_day)))
    deleted = [history.docs.pop(rng.choice(sorted(by_day[day]))) for day in days]
    batch = db.batch()
    for doc in deleted:
        batch.delete(db.document(doc.path))
    batch.commit()
    return deleted


# What the benchmark reads back of BigQuery (imported when used: the command line
# imports this module, and its --help should not wait for the BigQuery client).


def create_tables(client: Any, dataset: str, specs: Iterable[TableSpec]) -> None:
    from pipelines.services import bigquery as bq
    from pipelines.state.tables import definition, ensure

    bq.ensure_dataset(client, dataset, None)
    for spec in specs:
        ensure(client, dataset, definition(spec))


def rows_per_table_day(
    client: Any, dataset: str, specs: list[TableSpec]
) -> dict[str, dict[str, int]]:
    """What each table holds, per day (``YYYY-MM-DD``), to compare with Firestore."""
    from pipelines.services import bigquery as bq

    out = {}
    for spec in specs:
        sql = (
            f"SELECT CAST(DATE({spec.partition_column}) AS STRING) AS day, COUNT(*) AS n "
            f"FROM {bq.table_sql(client.project, dataset, spec.name)} GROUP BY day"
        )
        out[spec.name] = {r["day"]: r["n"] for r in bq.run_query(client, sql).result()}
    return out


def table_rows(
    client: Any, dataset: str, table: str, keep_run_metadata: bool = False
) -> list[dict[str, Any]]:
    """Every row of a table in key order (document path; a run's start for
    ``_sync_runs``), the run's own columns dropped unless kept: two datasets
    synced from the same snapshot by different runs compare equal."""
    from pipelines.services import bigquery as bq

    sql = f"SELECT * FROM {bq.table_sql(client.project, dataset, table)}"
    rows = [dict(r) for r in bq.run_query(client, sql).result()]
    if not keep_run_metadata:
        for row in rows:
            for column in RUN_METADATA_COLUMNS:
                row.pop(column, None)
    key = ROW_KEYS.get(table, DOCUMENT_PATH_COLUMN)
    return sorted(rows, key=lambda r: (str(r.get(key) or ""), str(r)))
