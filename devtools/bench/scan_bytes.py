"""Bytes a run's BigQuery statements would be billed, from column sizes.

The model of what each statement scans is ``pipelines.bigquery``'s (``commit_scans``,
``drift_scans``, ``scanned_bytes``), beside the SQL it models; here are only the
inputs (each day's column sizes, the run's ``_sync_runs`` entry) and the report's
figures per table: ``drift`` (the drift check before the read), ``commit`` (the
commit's statements), their sum ``bytes``, and ``unlocated``: the same run had
its delete scanned the table (the statement before ``delete_days``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pipelines import bigquery as bq
from pipelines.read_plan import FIXED_BYTES, STRING_OVERHEAD  # BigQuery's sizes (sources there)


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


def statement_bytes(entry: Mapping[str, Any], sizes: Mapping[str, tuple[int, int]]) -> dict:
    """Modelled billed bytes of one table's statements in one run (see the module)."""
    replaced = entry.get("replaced_days") or ()
    located = entry.get("delete_days")
    incremental = entry.get("mode") == "incremental"
    commit = bq.commit_scans(replaced, located, incremental=incremental)
    committed = bq.scanned_bytes(commit, sizes)
    if not incremental:  # a full run: no drift check, and its delete scans the table anyway
        return {"bytes": committed, "commit": committed, "drift": 0, "unlocated": None}
    verified = entry.get("verified_days") or ()
    lookup = entry.get("lookup_days")
    drift = bq.scanned_bytes(
        bq.drift_scans(verified, verified if lookup is None else lookup), sizes
    )
    unlocated = bq.scanned_bytes(bq.commit_scans(replaced, None, incremental=True), sizes)
    scanned = [s.days for s in commit]
    return {
        "bytes": committed + drift,
        "commit": committed,
        "drift": drift,
        "unlocated": unlocated + drift,
        "partitions": len(sizes),
        "partitions_scanned": (len(sizes) if None in scanned else len(frozenset().union(*scanned))),
    }


def run_bytes(
    client: Any, dataset: str, specs: Iterable[Any], entries: Mapping[str, Mapping[str, Any]]
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
