"""The snapshot horizon against the emulators, through a proxy that keeps Firestore's:
a read that cannot end before the snapshot expires is refused before it reads,
and the same read let through dies part-way with Firestore's real error."""

from __future__ import annotations

import datetime

import pytest

from devtools import sample_data
from pipelines import firestore_to_bq
from pipelines.convert.table_spec import load_specs
from pipelines.plan import snapshot
from tests.support.snapshot_proxy import TOO_OLD, SnapshotHorizonProxy
from tests.support.sync_helpers import PROJECT, seed, sync, table_rows, unique_dataset, verdicts

START, END = "2026-11-01", "2026-11-05"
WINDOW = ("--start_date", START, "--end_date", END)
#: The scaled-down horizon (seconds) and how fast the proxy lets documents through.
HORIZON, DOCS_PER_SECOND = 10, 10


def _documents(edited: bool = False) -> dict[str, dict]:
    end = datetime.date.fromisoformat(END)
    docs = dict(sample_data.documents(users=4, days=5, end=end, per_user_per_day=10, seed=5))
    if edited:
        docs = {p: {**d, "completed": True} if "/tasks/" in p else d for p, d in docs.items()}
    return docs


def _tables(bq_client, dataset: str) -> dict[str, list[dict]]:
    return {t: table_rows(bq_client, dataset, t) for t in load_specs()}


def test_a_read_longer_than_the_horizon_is_refused_before_it_reads(
    emulators, firestore_db, bq_client, monkeypatch, capsys
) -> None:
    docs = _documents()
    seed(firestore_db, docs)
    dataset = unique_dataset("horizon")
    sync(dataset, *WINDOW)
    before = _tables(bq_client, dataset)
    seed(firestore_db, _documents(edited=True))  # a new run would change the tasks

    proxy = SnapshotHorizonProxy(emulators.firestore_host, HORIZON, DOCS_PER_SECOND)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", proxy.host)
    monkeypatch.setenv(snapshot.ASSUMED_HORIZON_ENV, str(HORIZON))
    argv = ["--project", PROJECT, "--dataset", dataset, *WINDOW]
    try:
        # Told the truth about its rate, the run sees that its read (len(docs)
        # documents at 10/s) cannot end within 10 s, and refuses having read only counts.
        code = firestore_to_bq.main([*argv, "--read_docs_per_second", str(DOCS_PER_SECOND)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert err[-1].startswith(
            f"error: this run would read about {len(docs):,} documents, about "
        ), err
        assert "nothing was read: enable point-in-time recovery" in err[-1]
        assert "firestore-to-bq backfill --start_date 2026-11-01 --end_date 2026-11-05" in err[-1]
        # Read: the reachability probe (one document) and the counts.
        assert proxy.streamed == 1 and proxy.refused == 0
        assert proxy.calls == ["RunQuery"] + ["RunAggregationQuery"] * len(load_specs())
        assert _tables(bq_client, dataset) == before

        # Told a rate it does not reach, the run starts reading, and Firestore
        # (the proxy) refuses its queries once the snapshot is too old: the
        # failure the refusal spares. Nothing is replaced either way.
        with pytest.raises(firestore_to_bq.RunFailed, match="snapshot version is too old"):
            firestore_to_bq.run([*argv, "--read_docs_per_second", "1000000"])
        assert 0 < proxy.streamed < len(docs) and proxy.refused > 0
        assert _tables(bq_client, dataset) == before
        assert verdicts(bq_client, dataset)[-1]["status"] == "failed"
        assert TOO_OLD.rstrip(".") in (verdicts(bq_client, dataset)[-1]["error"] or "")
    finally:
        proxy.close()
