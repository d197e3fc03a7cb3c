"""Sequences of runs a user mixes, each against the emulators: the tables end equal
to a full rebuild and the audit says what is true.

The findings of issue 14, one test each; ``tests/integration/test_sequence_machine.py`` explores
the sequences nobody thought of.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from devtools import REPO_ROOT
from pipelines import firestore_to_bq
from pipelines.cli import status
from pipelines.state import run_log
from tests.support.documents import interaction, task
from tests.support.fault_proxy import FaultProxy
from tests.support.sync_helpers import PROJECT, seed, table_rows, unique_dataset, verdicts

UTC = datetime.UTC


def _day(offset: int) -> str:
    return (datetime.datetime.now(UTC).date() + datetime.timedelta(days=offset)).isoformat()


def _run(dataset: str, *args: str):
    argv = ["--project", PROJECT, "--dataset", dataset, "--collections", "tasks", *args]
    summary = firestore_to_bq.run(argv)
    assert summary.reconciles, summary.render()
    return summary


@pytest.mark.parametrize(
    "dated",
    [
        ("--start_date", _day(-5), "--end_date", _day(-1)),
        ("--date", _day(-3)),
    ],
    ids=["backfill", "one-date"],
)
def test_an_edit_after_a_dated_run_reaches_the_table_by_the_next_nightly(
    firestore_db, bq_client, dated
) -> None:
    """Dated runs record no change watermark. The nightly after them rebuilds the whole
    table, unless they cover it from its oldest document (the backfill of days -5..-1
    here): then it reads from the dated run's snapshot (issue 26). Either way the edit
    made after the dated run arrives."""
    seed(firestore_db, {f"users/u/tasks/t{i}": task(_day(-i), hour=8) for i in range(1, 6)})
    dataset = unique_dataset("seq_backfill")
    _run(dataset, *dated)
    now = datetime.datetime.now(UTC)
    firestore_db.document("users/u/tasks/t5").update({"completed": True, "updated_at": now})
    nightly = _run(dataset)
    rows = {r["_document_path"]: r for r in table_rows(bq_client, dataset, "tasks")}
    assert rows["users/u/tasks/t5"]["completed"] is True
    (entry,) = nightly.tables
    assert entry.status == "succeeded"
    # ...and the one after it is incremental again, from the watermark it recorded.
    firestore_db.document("users/u/tasks/t4").update({"completed": True, "updated_at": now})
    _run(dataset)
    rows = {r["_document_path"]: r for r in table_rows(bq_client, dataset, "tasks")}
    assert rows["users/u/tasks/t4"]["completed"] is True
    audit = table_rows(bq_client, dataset, "_sync_runs")
    first_nightly = "incremental" if dated[0] == "--start_date" else "full"
    assert [t["mode"] for row in audit for t in row["tables"]][-2:] == [
        first_nightly, "incremental"
    ]


# --------------------------------------------------------------------------------------
# Interruptions: a lost server, SIGTERM mid-commit. The command runs as a subprocess,
# as a scheduler runs it.
# --------------------------------------------------------------------------------------

SYNCED = ("tasks", "user_interactions")


def _seed_week(db) -> None:
    docs = {}
    for i in range(1, 6):
        for user in ("alice", "bob"):
            docs[f"users/{user}/tasks/t{i}"] = task(_day(-i), hour=8)
            docs[f"users/{user}/interactions/i{i}"] = interaction(_day(-i), hour=9)
    seed(db, docs)


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.firestore_to_bq", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def assert_audit_is_true(bq_client, dataset: str) -> dict[str, set[str]]:
    """Every run id found in a table has a ``_sync_commits`` row saying that run
    replaced that table; returns the run ids found per table."""
    commits = {
        (c["run_id"], c["table_name"]) for c in table_rows(bq_client, dataset, "_sync_commits")
    }
    found = {}
    for table in SYNCED:
        rows = table_rows(bq_client, dataset, table, keep_run_metadata=True)
        found[table] = {r["_run_id"] for r in rows}
        missing = {run for run in found[table] if (run, table) not in commits}
        assert not missing, f"{table} holds rows of runs with no commit record: {missing}"
    return found


def _staging(bq_client, dataset: str) -> list[str]:
    names = [t.table_id for t in bq_client.list_tables(dataset)]
    return [name for name in names if name.startswith("_staging_")]


def test_bigquery_lost_mid_stage_fails_within_2_minutes_and_the_run_stays_visible(
    emulators, firestore_db, bq_client
) -> None:
    _seed_week(firestore_db)
    dataset = unique_dataset("seq_lost")
    common = ["--project", PROJECT, "--dataset", dataset, "--collections", ",".join(SYNCED)]
    first = firestore_to_bq.run([*common, "--start_date", _day(-5), "--end_date", _day(-1)])
    before = {t: table_rows(bq_client, dataset, t) for t in SYNCED}
    # The ``running`` row is one upload (2 requests: start, data); then the staging.
    proxy = FaultProxy(emulators.bigquery_port, die_on=b"/upload/", die_at=3)
    env = {**os.environ, **emulators.env(), "BIGQUERY_EMULATOR_HOST": proxy.host}
    started = time.monotonic()
    try:
        process = _cli(env, *common, "--date", _day(-2), "--run_id", "lost_run")
        out, err = process.communicate(timeout=300)
    finally:
        proxy.close()
    elapsed = time.monotonic() - started
    assert proxy.died.is_set(), "the proxy never saw a staging upload: the test proved nothing"
    assert process.returncode == 1, err
    assert "Traceback" not in out + err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    # The line says which server went away and what to do, not only the runner's timeout.
    assert "BIGQUERY_EMULATOR_HOST" in errors[0] and "start the emulator" in errors[0], errors
    assert elapsed < 120, f"took {elapsed:.0f} s to give up on a lost BigQuery"
    assert {t: table_rows(bq_client, dataset, t) for t in SYNCED} == before
    runs = table_rows(bq_client, dataset, "_sync_runs", keep_run_metadata=True)
    assert [r["status"] for r in runs if r["run_id"] == "lost_run"] == ["running"]
    # status: still the earlier success, and the unfinished run named as the last failure.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status.main(["--project", PROJECT, "--dataset", dataset, "--max_lag_days", "9"])
    assert first.config.run_id in printed.getvalue()
    assert "last failure: run lost_run" in printed.getvalue()
    assert "unfinished" in printed.getvalue()
    assert _staging(bq_client, dataset), "the dead run left no staging table to clean up"
    # The next run, more than a day later, drops what the dead run left.
    later = datetime.datetime.now(UTC) + datetime.timedelta(days=1, hours=1)
    firestore_to_bq.run([*common, "--date", _day(-1)], now=later)
    assert _staging(bq_client, dataset) == []
    assert_audit_is_true(bq_client, dataset)


def test_sigterm_after_the_verdict_is_recorded_reports_that_verdict(
    emulators, firestore_db, bq_client, capsys
) -> None:
    """SIGTERM (Cloud Run's timeout, a scheduler) arriving once RecordRun has written
    a success: the tables and the audit are that success's, so the run exits 0 with
    its summary, not 130 "interrupted", and holds no lease afterwards."""
    _seed_week(firestore_db)
    dataset = unique_dataset("seq_sigterm_late")
    common = ["--project", PROJECT, "--dataset", dataset, "--collections", ",".join(SYNCED)]
    firestore_to_bq.main([*common, "--date", _day(-3)])
    seen: list[str] = []

    def terminate(data: bytes) -> None:
        # The first request after the verdict's upload (its rows say "succeeded").
        if not seen and b"late_run" in data and re.search(rb'"status": ?"succeeded"', data):
            seen.append("verdict")
        elif seen == ["verdict"] and data.split(b" ", 1)[0] in (b"GET", b"POST", b"DELETE"):
            seen.append("signal")
            os.kill(os.getpid(), signal.SIGTERM)

    proxy = FaultProxy(emulators.bigquery_port, on_send=terminate)
    saved = os.environ["BIGQUERY_EMULATOR_HOST"]
    os.environ["BIGQUERY_EMULATOR_HOST"] = proxy.host
    capsys.readouterr()
    try:
        code = firestore_to_bq.main([*common, "--date", _day(-2), "--run_id", "late_run"])
    finally:
        os.environ["BIGQUERY_EMULATOR_HOST"] = saved
        proxy.close()
    out, err = capsys.readouterr()
    assert seen == ["verdict", "signal"], "the signal was never sent: the test proved nothing"
    assert code == 0, err
    assert "error:" not in err and "Traceback" not in err
    assert "late_run" in out
    (verdict,) = [r for r in verdicts(bq_client, dataset) if r["run_id"] == "late_run"]
    assert verdict["status"] == "succeeded"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status.main([*common[:4]])
    assert "lease:" not in printed.getvalue()
    assert _staging(bq_client, dataset) == []  # the stop trial's stop79 left one
    assert_audit_is_true(bq_client, dataset)


def test_sigterm_during_the_commits_records_exactly_the_tables_it_replaced(
    emulators, firestore_db, bq_client
) -> None:
    """SIGTERM as soon as the first table's commit lands: the run stops with exit 130,
    its verdict says which tables it replaced, and those are exactly the tables
    holding its rows. Tried up to 3 times, since the run may commit every table
    before the signal arrives."""
    _seed_week(firestore_db)
    tables = "emotional_memories,projects,routines,tasks,user_interactions"
    for attempt in range(3):
        dataset = unique_dataset("seq_sigterm")
        common = ["--project", PROJECT, "--dataset", dataset, "--collections", tables]
        firestore_to_bq.run([*common, "--date", _day(-3)])
        run_id = f"sigterm_{attempt}"
        process = _cli({**os.environ, **emulators.env()}, *common, "--date", _day(-2),
                       "--run_id", run_id)  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if run_log.committed(bq_client, dataset, run_id).get(run_id):
                process.send_signal(signal.SIGTERM)
                break
            time.sleep(0.05)
        out, err = process.communicate(timeout=120)
        if process.returncode == 0:
            continue  # every commit landed first; try again
        assert process.returncode == 130, err
        assert "Traceback" not in out + err, err
        assert [line for line in err.splitlines() if line.startswith("error:")] == [
            "error: run interrupted (SIGINT or SIGTERM); the tables it had not committed "
            "are as before"
        ]
        landed = set(run_log.committed(bq_client, dataset, run_id).get(run_id, {}))
        assert landed, "the signal arrived before any commit"
        (verdict,) = [r for r in verdicts(bq_client, dataset) if r["run_id"] == run_id]
        assert verdict["status"] == "interrupted"
        replaced = {t["table"] for t in verdict["tables"] if t["replaced"]}
        assert replaced <= landed  # a commit in flight may land after the verdict
        found = assert_audit_is_true(bq_client, dataset)
        holding = {t for t, runs in found.items() if run_id in runs}
        assert holding == landed & set(SYNCED)
        assert _staging(bq_client, dataset) == []
        return
    pytest.skip("every attempt committed all tables before SIGTERM arrived")
