"""Faults mid-run, against the real emulators: nothing half-written, nothing lost.

Firestore faults go through :class:`FaultProxy`, a loopback TCP proxy that
resets the client's connections after a number of bytes, as a dropped network
path or a dying server does. BigQuery's "Transaction is aborted due to concurrent
update" goes through :class:`AbortingBigQueryProxy`, an HTTP proxy in front of
bqemulator (which serialises transactions and so never aborts one).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import subprocess
import sys

from apache_beam.options.pipeline_options import PipelineOptions

from devtools import REPO_ROOT, sample_data
from pipelines import firestore_to_bq
from pipelines.cli import status
from pipelines.cli.options import resolve
from pipelines.convert.table_spec import load_specs
from pipelines.services import bigquery as bq
from pipelines.state import commit_log, leases
from tests.support.bigquery_fault_proxy import AbortingBigQueryProxy
from tests.support.fault_proxy import FaultProxy
from tests.support.sync_helpers import PROJECT, seed, sync, table_rows, unique_dataset, verdicts

START, END = "2026-11-01", "2026-11-05"
WINDOW = ("--start_date", START, "--end_date", END)


def _documents(edited: bool = False) -> dict[str, dict]:
    """About 2,000 documents over 5 days; ``edited`` changes some of them."""
    end = datetime.date.fromisoformat(END)
    docs = dict(sample_data.documents(users=20, days=5, end=end, per_user_per_day=20, seed=3))
    if edited:
        for i, path in enumerate(sorted(docs)):
            if "/interactions/" in path and i % 7 == 0:
                docs[path] = {**docs[path], "intent": "edited"}
            if "/tasks/" in path and i % 5 == 0:
                docs[path] = {**docs[path], "completed": True}
    return docs


def _tables(bq_client, dataset: str) -> dict[str, list[dict]]:
    return {t: table_rows(bq_client, dataset, t) for t in load_specs()}


def _staging_left(bq_client, dataset: str) -> list[str]:
    return [t.table_id for t in bq_client.list_tables(dataset) if t.table_id.startswith("_stag")]


def test_transient_read_errors_are_retried_without_duplicates_or_gaps(
    emulators, firestore_db, bq_client, monkeypatch
):
    seed(firestore_db, _documents())
    clean = unique_dataset("clean")
    sync(clean, *WINDOW)

    proxy = FaultProxy(emulators.firestore_port, cut_every=120_000, max_cuts=4)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", proxy.host)
    faulty = unique_dataset("faulty")
    try:
        summary = sync(faulty, *WINDOW)
    finally:
        proxy.close()
    assert proxy.cuts >= 2, "the proxy never cut a stream: the test proved nothing"
    assert summary.documents_read == sum(t.read for t in summary.tables) > 1500
    assert _tables(bq_client, faulty) == _tables(bq_client, clean)


def test_firestore_dying_mid_read_fails_cleanly_and_a_rerun_matches_a_clean_run(
    emulators, firestore_db, bq_client, monkeypatch, capsys
):
    seed(firestore_db, _documents())
    dataset = unique_dataset("dies")
    sync(dataset, *WINDOW)
    before = _tables(bq_client, dataset)
    seed(firestore_db, _documents(edited=True))  # a finished run would change the tables

    proxy = FaultProxy(
        emulators.firestore_port, cut_every=100_000, max_cuts=1, on_cut=emulators.stop_firestore
    )
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", proxy.host)
    try:
        code = firestore_to_bq.main(
            ["--project", PROJECT, "--dataset", dataset, *WINDOW, "--firestore_retry_timeout", "4"]
        )
        err = capsys.readouterr().err.strip().splitlines()
    finally:
        proxy.close()
        emulators.start_firestore()  # empty again: the emulator keeps data in memory
    assert code == 1
    assert err[-1].startswith("error: run failed: ")
    assert proxy.cuts == 1
    assert _tables(bq_client, dataset) == before
    assert _staging_left(bq_client, dataset) == []
    runs = verdicts(bq_client, dataset)
    assert [r["status"] for r in runs] == ["succeeded", "failed"]

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulators.firestore_host)
    seed(firestore_db, _documents(edited=True))
    sync(dataset, *WINDOW)
    clean = unique_dataset("clean")
    sync(clean, *WINDOW)
    assert _tables(bq_client, dataset) == _tables(bq_client, clean)


def _break_tasks_table(bq_client, dataset: str) -> None:
    """Recreate ``tasks`` without its ``extra`` column, keeping its rows: inserts now fail."""
    spec = load_specs()["tasks"]
    keep = [c for c in spec.column_names if c != "extra"]
    table = f"{bq_client.project}.{dataset}.tasks"
    cols = ", ".join(keep)
    bq_client.query(
        f"CREATE TABLE `{table}_copy` AS SELECT {cols} FROM `{table}`", timeout=60
    ).result(timeout=60)
    bq_client.delete_table(table, timeout=60)
    from google.cloud import bigquery

    broken = bigquery.Table(
        table,
        schema=[
            bigquery.SchemaField.from_api_repr(f)
            for f in spec.bigquery_schema()
            if f["name"] != "extra"
        ],
    )
    broken.time_partitioning = bigquery.TimePartitioning(field=spec.partition_column)
    bq_client.create_table(broken, timeout=60)
    bq_client.query(
        f"INSERT INTO `{table}` ({cols}) SELECT {cols} FROM `{table}_copy`", timeout=60
    ).result(timeout=60)
    bq_client.delete_table(f"{table}_copy", timeout=60)


def test_bigquery_failing_on_one_table_leaves_it_whole_and_says_which(
    firestore_db, bq_client, capsys
):
    seed(firestore_db, _documents())
    dataset = unique_dataset("bqfail")
    sync(dataset, *WINDOW)
    _break_tasks_table(bq_client, dataset)
    tasks_before = table_rows(bq_client, dataset, "tasks")
    seed(firestore_db, _documents(edited=True))

    code = firestore_to_bq.main(["--project", PROJECT, "--dataset", dataset, *WINDOW])
    err = capsys.readouterr().err
    assert code == 1
    assert "tasks: NOT replaced" in err and "user_interactions: replaced" in err
    assert err.strip().splitlines()[-1].startswith("error: run failed: TablesNotReplaced: ")
    assert table_rows(bq_client, dataset, "tasks") == tasks_before  # rolled back whole
    assert _staging_left(bq_client, dataset) == []

    clean = unique_dataset("clean")
    sync(clean, *WINDOW)
    for table in ("user_interactions", "emotional_memories", "projects", "routines"):
        assert table_rows(bq_client, dataset, table) == table_rows(bq_client, clean, table)
    failed = verdicts(bq_client, dataset)[-1]
    assert failed["status"] == "failed" and "tasks" in failed["error"]
    replaced = {t["table"]: t["replaced"] for t in failed["tables"]}
    assert replaced == {
        "emotional_memories": True,
        "projects": True,
        "routines": True,
        "tasks": False,
        "user_interactions": True,
    }


def test_two_runs_at_once_take_turns_through_the_table_leases(emulators, firestore_db, bq_client):
    """BigQuery would abort one of two transactions on a table (bqemulator serialises
    them); the table leases make the second run wait for the first instead."""
    seed(firestore_db, _documents())
    dataset = unique_dataset("concurrent")
    sync(dataset, *WINDOW)  # create the tables first, as the nightly job finds them
    env = {**os.environ, **emulators.env()}
    cmd = [sys.executable, "-m", "pipelines.firestore_to_bq", "--project", PROJECT,
           "--dataset", dataset, *WINDOW, "--lease_wait_seconds", "600"]  # fmt: skip
    procs = [
        subprocess.Popen(
            [*cmd, "--run_id", f"both_{i}"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    errs = [p.communicate(timeout=900)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    waited = [i for i, err in enumerate(errs) if "waiting for a lease" in err]
    assert len(waited) == 1, errs  # exactly one found the other holding the tables
    holder = f"both_{1 - waited[0]}"
    assert f"lease held by run {holder} since " in errs[waited[0]]
    # Both were started together (their intervals overlap), yet the waiting run
    # committed only after the holder had recorded its verdict.
    first, *runs = verdicts(bq_client, dataset)
    assert len(runs) == 2, runs
    assert max(r["started_at"] for r in runs) < min(r["finished_at"] for r in runs), runs
    held_until = next(r["finished_at"] for r in runs if r["run_id"] == holder)
    commits = table_rows(bq_client, dataset, commit_log.TABLE, keep_run_metadata=True)
    later = [c for c in commits if c["run_id"] == f"both_{waited[0]}"]
    assert len(later) == len(load_specs()) and all(c["committed_at"] > held_until for c in later)
    clean = unique_dataset("clean")
    sync(clean, *WINDOW)
    assert _tables(bq_client, dataset) == _tables(bq_client, clean)


def test_a_run_refuses_tables_another_run_leases_and_status_shows_the_lease(
    firestore_db, bq_client, capsys
):
    seed(firestore_db, _documents())
    dataset = unique_dataset("leased")
    sync(dataset, *WINDOW)
    before, runs_before = _tables(bq_client, dataset), verdicts(bq_client, dataset)
    seed(firestore_db, _documents(edited=True))  # a run that went ahead would change tasks
    weekly = resolve(
        PipelineOptions(["--project", PROJECT, "--dataset", dataset, "--run_id", "weekly_1",
                         "--collections", "tasks"])
    )  # fmt: skip
    leases.take(weekly)

    code = firestore_to_bq.main(
        ["--project", PROJECT, "--dataset", dataset, *WINDOW, "--lease_wait_seconds", "0"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("error: tasks: lease held by run weekly_1 since "), err
    assert "nothing was written" in err[-1]
    assert _tables(bq_client, dataset) == before
    assert verdicts(bq_client, dataset) == runs_before
    assert _staging_left(bq_client, dataset) == []

    status.main(["--project", PROJECT, "--dataset", dataset])
    out = capsys.readouterr().out.splitlines()
    tasks = next(i for i, line in enumerate(out) if line.startswith("tasks "))
    assert out[tasks + 1].startswith("  lease: held by run weekly_1 since "), out

    # A run that died without giving its lease back blocks only until it expires.
    leases.release(weekly)
    lapsed = dataclasses.replace(weekly, lease_minutes=1)
    leases.take(lapsed, now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5))
    sync(dataset, *WINDOW, "--lease_wait_seconds", "0")
    assert _tables(bq_client, dataset) != before  # it ran
    status.main(["--project", PROJECT, "--dataset", dataset])
    assert "lease:" not in capsys.readouterr().out  # and gave its leases back


def _aborting(emulators, dataset: str, table: str, times: int) -> AbortingBigQueryProxy:
    """BigQuery's answer to a transaction cancelled by a concurrent update, for the
    first ``times`` commits of ``table``."""
    commit = ["BEGIN TRANSACTION", f"DELETE FROM `{PROJECT}.{dataset}.{table}`"]
    return AbortingBigQueryProxy(emulators.bigquery_endpoint, commit, f"{dataset}.{table}", times)


def test_a_commit_aborted_by_a_concurrent_update_is_run_again_and_the_run_succeeds(
    emulators, firestore_db, bq_client, monkeypatch
):
    seed(firestore_db, _documents())
    dataset = unique_dataset("aborted")
    proxy = _aborting(emulators, dataset, "tasks", times=2)
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", proxy.endpoint)
    try:
        sync(dataset, *WINDOW)
    finally:
        proxy.close()
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", emulators.bigquery_endpoint)
    assert len(proxy.aborted) == 2, "the proxy never aborted a commit: the test proved nothing"
    commits = table_rows(bq_client, dataset, commit_log.TABLE, keep_run_metadata=True)
    assert sorted(c["table_name"] for c in commits) == sorted(load_specs())  # tasks once
    clean = unique_dataset("clean")
    sync(clean, *WINDOW)
    assert _tables(bq_client, dataset) == _tables(bq_client, clean)


def test_a_commit_aborted_every_time_is_not_replaced_after_a_bounded_number_of_tries(
    emulators, firestore_db, bq_client, monkeypatch, capsys
):
    seed(firestore_db, _documents())
    dataset = unique_dataset("abort_all")
    monkeypatch.setattr(
        bq, "concurrent_update_retry", functools.partial(bq.concurrent_update_retry, initial=0.05)
    )
    proxy = _aborting(emulators, dataset, "tasks", times=100)
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", proxy.endpoint)
    try:
        code = firestore_to_bq.main(["--project", PROJECT, "--dataset", dataset, *WINDOW])
    finally:
        proxy.close()
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", emulators.bigquery_endpoint)
    err = capsys.readouterr().err
    assert code == 1
    assert len(proxy.aborted) == bq.CONCURRENT_UPDATE_ATTEMPTS
    assert "tasks: NOT replaced (" in err and "concurrent update" in err
    assert "routines: replaced" in err
    assert table_rows(bq_client, dataset, "tasks") == []
    assert _staging_left(bq_client, dataset) == []


def test_transient_errors_in_incremental_range_reads_resume_from_the_cursor(
    emulators, firestore_db, bq_client, monkeypatch
):
    """Partition-range queries (ordered by the field and ``__name__``) resume too."""
    seed(firestore_db, _documents())
    clean = unique_dataset("clean_inc")
    sync(clean, *WINDOW)

    proxy = FaultProxy(emulators.firestore_port, cut_every=120_000, max_cuts=4)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", proxy.host)
    faulty = unique_dataset("faulty_inc")
    try:
        summary = sync(faulty, *WINDOW, "--mode", "incremental")
    finally:
        proxy.close()
    assert proxy.cuts >= 2, "the proxy never cut a stream: the test proved nothing"
    assert summary.documents_returned == summary.documents_read > 1500
    assert _tables(bq_client, faulty) == _tables(bq_client, clean)
