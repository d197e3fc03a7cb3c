"""Bytes a run's BigQuery statements would be billed, modelled from column sizes.

The emulator's dry run reports 0 bytes (``tests/integration/test_emulator_shortfalls.py``),
so the benchmark models what BigQuery would bill for the statements a run sends
to each destination table, from BigQuery's own rules:

* a query is billed for the columns it references, summed over the partitions
  it scans; a filter on the partition column with constant expressions prunes
  the others (https://cloud.google.com/bigquery/docs/querying-partitioned-tables);
* a STRING is 2 bytes + its UTF-8 length, a TIMESTAMP or DATE 8 bytes
  (https://cloud.google.com/bigquery/pricing#data-size-calculation);
* BigQuery bills at least 10 MB per table a query references: left out here, so
  that the figures show how the statements grow, not the floor.

Per table, from the ``_sync_runs`` entry: the drift check before the read
(``drift``: rows per day of the ``verified_days``, partition column; the
changed documents' rows on the ``lookup_days``, ``_document_path`` and the
partition column), and the commit's statements (``commit``): the two per-day
counts around it (partition column over the replaced days), the delete
(``_document_path`` and the partition column over the replaced and
``delete_days``, or over every partition when ``delete_days`` is null) and the
count of upserted rows (the same columns over the located days, or every
partition). Reads of the staging and dead-letter tables follow the staged rows
and are left out. ``unlocated`` is the same run had its delete scanned the
table (the statement before ``delete_days``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from pipelines.plan.read_plan import (  # BigQuery's sizes (sources there)
    FIXED_BYTES,
    STRING_OVERHEAD,
)
from pipelines.state.verdict import TableVerdict


def column_bytes_per_day(
    client: Any, dataset: str, table: str, partition_column: str
) -> dict[str, tuple[int, int]]:
    """Per day: (bytes of the partition column, bytes of ``_document_path``)."""
    sql = (
        f"SELECT CAST(DATE(`{partition_column}`) AS STRING) AS day, COUNT(*) AS n, "
        f"SUM(BYTE_LENGTH(`_document_path`)) AS path_bytes "
        f"FROM `{client.project}.{dataset}.{table}` GROUP BY day"
    )
    out = {}
    for row in client.query(sql).result():
        n = int(row["n"])
        out[row["day"]] = (n * FIXED_BYTES, int(row["path_bytes"] or 0) + n * STRING_OVERHEAD)
    return out


def _sum(sizes: Mapping[str, tuple[int, int]], days: Iterable[str] | None, both: bool) -> int:
    chosen = sizes if days is None else {d: sizes[d] for d in set(days) if d in sizes}
    return sum(part + (path if both else 0) for part, path in chosen.values())


def _days(days: Iterable[datetime.date]) -> list[str]:
    """Days as :func:`column_bytes_per_day` keys them."""
    return [d.isoformat() for d in days]


def statement_bytes(entry: TableVerdict, sizes: Mapping[str, tuple[int, int]]) -> dict:
    """Modelled billed bytes of one table's statements in one run (see the module)."""
    replaced = _days(entry.replaced_days)
    deleted = entry.counted.delete_days
    located = None if deleted is None else _days(deleted)
    counts = 2 * _sum(sizes, replaced, both=False)

    def delete_and_count(days: list[str] | None) -> int:
        scanned = None if days is None else [*replaced, *days]
        elsewhere = None if days is None else [d for d in days if d not in replaced]
        return _sum(sizes, scanned, both=True) + _sum(sizes, elsewhere, both=True)

    if entry.mode != "incremental":  # a full run's delete scans what it replaces anyway
        commit = counts + 2 * _sum(sizes, None, both=True)
        return {"bytes": commit, "commit": commit, "drift": 0, "unlocated": None}
    # The drift check before the read: rows per verified day (partition column),
    # and where the changed documents' rows are on the lookup days (both columns).
    verified = _days(entry.counted.verified_days)
    lookup = _days(entry.counted.lookup_days)  # verdicts without them: the verified days
    drift = _sum(sizes, verified, both=False) + _sum(sizes, lookup, both=True)
    commit = counts + delete_and_count(located)
    return {
        "bytes": commit + drift,
        "commit": commit,
        "drift": drift,
        "unlocated": counts + delete_and_count(None) + drift,
        "partitions": len(sizes),
        "partitions_scanned": len(sizes) if located is None else len(set(replaced) | set(located)),
    }


def run_bytes(
    client: Any, dataset: str, specs: Iterable[Any], entries: Mapping[str, TableVerdict]
) -> dict[str, Any]:
    """Per table and in total, the modelled bytes of a run's statements."""
    tables = {}
    for spec in specs:
        entry = entries.get(spec.name)
        if entry is None:
            continue
        sizes = column_bytes_per_day(client, dataset, spec.name, spec.partition_column)
        tables[spec.name] = statement_bytes(entry, sizes)
    return {
        "bytes": sum(t["bytes"] for t in tables.values()),
        "commit": sum(t["commit"] for t in tables.values()),
        "drift": sum(t["drift"] for t in tables.values()),
        "unlocated": sum(t["unlocated"] or t["bytes"] for t in tables.values()),
        "tables": tables,
    }
