"""Every BigQuery table the sync writes, in one list, and the run's staging tables.

The user tables come from ``schemas/``; the dead-letter and audit tables from
their modules. The launcher (``prepare_tables``) and ``scripts/setup_bigquery.py``
both create tables from :func:`definitions`, so the two cannot differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.cloud import bigquery

from pipelines import audit, dead_letters
from pipelines import bigquery as bq
from pipelines.table_spec import TableSpec

if TYPE_CHECKING:
    from pipelines.options import SyncConfig


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
    """The synced tables of ``specs``, then the dead-letter and audit tables."""
    tables = [definition(spec) for spec in specs]
    for module in (dead_letters, audit):
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


def destination_schemas(config: SyncConfig) -> dict[str, list[dict[str, str]]]:
    """Schemas of the tables rows are staged for: the synced tables and dead letters."""
    schemas = {spec.name: spec.bigquery_schema() for spec in config.tables}
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
    """Create the dataset, the tables and this run's staging tables (launcher side)."""
    client = bq.make_client(config.project, config.location)
    bq.ensure_dataset(client, config.dataset, config.location)
    for table in definitions(config.tables):
        ensure(client, config.dataset, table)
    expires = config.started_at + bq.STAGING_EXPIRY
    for destination, schema in destination_schemas(config).items():
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


def drop_staging_tables(config: SyncConfig) -> None:
    """Remove this run's staging tables (they would expire on their own anyway)."""
    client = bq.make_client(config.project, config.location)
    for destination in destination_schemas(config):
        drop_staging_table(client, config, destination)


def drop_staging_table(client: bigquery.Client, config: SyncConfig, destination: str) -> None:
    client.delete_table(
        f"{config.project}.{config.dataset}.{bq.staging_table_name(config.run_id, destination)}",
        not_found_ok=True,
        timeout=bq.CALL_TIMEOUT,
    )
