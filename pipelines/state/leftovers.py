"""What a run that died left behind, found and settled by the next run.

A run that is killed outright (``kill -9``, a lost VM) or loses BigQuery cannot
record how it ended nor give back what it took. Its leases stop being renewed
and lapse within ``--lease_minutes`` (:mod:`pipelines.state.leases`); that lapse is
how the next run knows it is over. Once it holds its own leases, that run (any
run of the dataset, whatever its tables) settles each such dead run:

* writes the verdict it never wrote (``interrupted``, naming the tables whose
  commits landed, from ``_sync_commits``) unless it wrote one itself;
* drops its staging tables;
* clears its lapsed leases, so ``status`` shows no holder and a commit it might
  still attempt is fenced out (``leases.fence_sql``).

A run that only stalled for a whole time to live (its renewals failing) is
treated as dead too: it can no longer commit over the run that settled it, and
its own verdict, if it writes one later, is the newer row.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping

from google.cloud import bigquery

from pipelines.services import bigquery as bq
from pipelines.state import dead_letters, leases, run_log
from pipelines.state.tables import drop_staging_of
from pipelines.state.verdict import is_verdict

_LOG = logging.getLogger(__name__)
#: How far before its lease a dead run's ``running`` row can be: its planning.
PLANNING_AT_MOST = datetime.timedelta(days=1)


def settle(
    client: bigquery.Client,
    project: str,
    dataset: str,
    found: Mapping[str, list[leases.Lease]],
    recorded_by: str,
    now: datetime.datetime,
) -> list[str]:
    """Settle every dead run in ``found`` (``leases.lapsed``); the run ids settled.

    Each step is best effort and idempotent: a run that fails halfway leaves the
    rest to the next run, which finds the same lapsed leases."""
    settled = []
    for run_id, held in sorted(found.items()):
        if run_id == recorded_by:
            continue
        tables = sorted({lease.table for lease in held})
        taken_at = min(lease.taken_at for lease in held)
        rows = run_log.verdict_rows(
            client, dataset, run_id, since=taken_at - PLANNING_AT_MOST, with_start=True
        )
        if not any(is_verdict(r) for r in rows):
            landed = run_log.committed(client, dataset, run_id, now=now).get(run_id, {})
            expired = max(lease.expires_at for lease in held)
            why = (
                f"its lease lapsed at {expired:%Y-%m-%dT%H:%M:%SZ} with no verdict: the run "
                f"was killed or lost BigQuery; recorded by run {recorded_by}"
            )
            row = run_log.abandoned_row(run_id, tables, landed, (rows or [None])[-1], taken_at, why)
            run_log.append_row(client, dataset, row)
        drop_staging_of(client, dataset, run_id, (*tables, dead_letters.TABLE))
        bq.concurrent_update_retry()(bq.run_query)(
            client, leases.release_sql(project, dataset, run_id, lapsed_by=now)
        )
        _LOG.warning(
            "run %s had ended without giving back its leases (%s); recorded and cleaned up",
            run_id,
            ", ".join(tables),
        )
        settled.append(run_id)
    return settled
