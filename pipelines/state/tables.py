"""Every BigQuery table the sync writes, in one list, and the run's staging tables.

The user tables come from ``schemas/``; the dead-letter and audit tables from
their modules. The launcher (``prepare_tables``) and ``scripts/setup_bigquery.py``
both create tables from :func:`definitions`, so the two cannot differ.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.cloud import bigquery

from pipelines.convert.table_spec import TableSpec
from pipelines.services import bigquery as bq
from pipelines.state import commit_log, dead_letters, leases, run_log

if TYPE_CHECKING:
    from pipelines.cli.options import SyncConfig


@dataclass(frozen=True)
class TableDefinition:
    """One table as the code declares it: schema, partitioning, clustering, description."""

    name: str
    schema: tuple[Mapping[str, str], ...]
    partition_column: str
    clustering: tuple[str, ...] = ()
    description: str = ""
    spec: TableSpec | None = None  # None for the sync's own tables


def definition(spec: TableSpec) -> TableDefinition:
    """A synced table, from its schema file."""
    return TableDefinition(
        spec.name,
        tuple(spec.bigquery_schema()),
        spec.partition_column,
        spec.clustering,
        spec.description,
        spec,
    )


def definitions(specs: Iterable[TableSpec]) -> list[TableDefinition]:
    """The synced tables of ``specs``, then the dead-letter, audit, commit and lease tables."""
    tables = [definition(spec) for spec in specs]
    for module in (dead_letters, run_log, commit_log, leases):
        tables.append(
            TableDefinition(
                module.TABLE,
                tuple(module.SCHEMA),
                module.PARTITION_COLUMN,
                tuple(module.CLUSTERING),
                module.DESCRIPTION,
            )
        )
    return tables


def destination_schemas(specs: Iterable[TableSpec]) -> dict[str, list[dict[str, str]]]:
    """Schemas of the tables rows are staged for: the synced tables and dead letters."""
    schemas = {spec.name: spec.bigquery_schema() for spec in specs}
    schemas[dead_letters.TABLE] = dead_letters.SCHEMA
    return schemas


def ensure(client: bigquery.Client, dataset: str, table: TableDefinition) -> None:
    """Create ``table`` (day-partitioned, clustered, described) unless it exists."""
    bq.ensure_table(
        client,
        dataset,
        table.name,
        table.schema,
        table.partition_column,
        table.clustering,
        description=table.description,
    )


def prepare_tables(config: SyncConfig) -> None:
    """Create the dataset and the tables (launcher side, before the plan reads
    ``_sync_runs``), and drop the staging tables earlier runs left behind."""
    client = bq.make_client(config.project, config.location)
    bq.ensure_dataset(client, config.dataset, config.location)
    for table in definitions(config.tables):
        ensure(client, config.dataset, table)
    drop_abandoned_staging(client, config.dataset, config.started_at)


def create_staging_tables(config: SyncConfig) -> None:
    """This run's staging tables: created once it holds its leases and has written
    its ``running`` row, so a run stopped at any point after creating them is one
    whose failure path (or, if it lost BigQuery, the next run) drops them."""
    client = bq.make_client(config.project, config.location)
    expires = config.started_at + bq.STAGING_EXPIRY
    for destination, schema in destination_schemas(config.tables).items():
        # Staging may hold every day of a collection: clustered, not partitioned,
        # so a long history cannot hit the 4,000-partitions-per-job limit.
        spec = config.tables_by_name.get(destination)
        clustering = (spec.partition_column,) if spec else dead_letters.CLUSTERING
        bq.ensure_table(
            client,
            config.dataset,
            bq.staging_table_name(config.run_id, destination),
            schema,
            None,
            clustering,
            expires=expires,
        )


def drop_staging_tables(target: bq.Target, run_id: str, specs: Iterable[TableSpec]) -> None:
    """Remove this run's staging tables (they would expire on their own anyway)."""
    drop_staging_of(target.client(), target.dataset, run_id, list(destination_schemas(specs)))


#: A staging table this old belongs to a run that is over even if it recorded no
#: verdict (its launcher was killed, or lost BigQuery for good): longer than any
#: run, shorter than the tables' own expiry (``bigquery.STAGING_EXPIRY``).
ABANDONED_AFTER = datetime.timedelta(days=1)


def drop_abandoned_staging(
    client: bigquery.Client, dataset: str, now: datetime.datetime
) -> list[str]:
    """Drop staging tables of runs that are over: those whose run recorded a verdict
    in ``_sync_runs`` (it failed to clean up), and any older than ``ABANDONED_AFTER``.

    A staging table of a run still in progress (no verdict, younger than that) is
    left alone, so two runs at once do not break each other. Returns what was dropped.
    """
    staging = [
        t
        for t in client.list_tables(dataset, retry=bq.API_RETRY, timeout=bq.CALL_TIMEOUT)
        if t.table_id.startswith(bq.STAGING_PREFIX)
    ]
    if not staging:
        return []
    finished = run_log.finished_runs(client, dataset, now - ABANDONED_AFTER - bq.STAGING_EXPIRY)
    dropped = []
    for table in staging:
        rest = table.table_id[len(bq.STAGING_PREFIX) :]
        old = table.created is not None and now - table.created > ABANDONED_AFTER
        if old or any(rest.startswith(f"{run_id}_") for run_id in finished):
            client.delete_table(
                table.reference, not_found_ok=True, retry=bq.API_RETRY, timeout=bq.CALL_TIMEOUT
            )
            dropped.append(table.table_id)
    return dropped


def drop_staging_of(
    client: bigquery.Client, dataset: str, run_id: str, destinations: Iterable[str]
) -> None:
    """Drop ``run_id``'s staging tables of ``destinations`` (missing ones are fine):
    by exact name, since one run id may begin another's."""
    for destination in destinations:
        client.delete_table(
            f"{client.project}.{dataset}.{bq.staging_table_name(run_id, destination)}",
            not_found_ok=True,
            retry=bq.API_RETRY,
            timeout=bq.CALL_TIMEOUT,
        )
