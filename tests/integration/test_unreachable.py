"""Unreachable services: bounded waits and one ``error:`` line that says what to check.

The command runs as a subprocess, as a user runs it, so the console is the
real one (logging handlers, Beam's own records and all). A closed loopback
port stands for an emulator that is not running.
"""

from __future__ import annotations

import datetime
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from devtools import REPO_ROOT, sample_data
from pipelines.convert.table_spec import load_specs
from tests.support.fault_proxy import FaultProxy
from tests.support.network import closed_port
from tests.support.sync_helpers import PROJECT, seed, sync, table_rows, unique_dataset

START, END = "2026-11-01", "2026-11-05"
WINDOW = ["--start_date", START, "--end_date", END]


def run_cli(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.firestore_to_bq", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def error_lines(out: str, err: str) -> list[str]:
    assert "Traceback" not in out + err, err
    return [line for line in (out + err).splitlines() if line.startswith("error:")]


def test_unreachable_bigquery_fails_within_60_s_naming_the_endpoint(emulators) -> None:
    port = closed_port()
    env = {**os.environ, **emulators.env(), "BIGQUERY_EMULATOR_HOST": f"127.0.0.1:{port}"}
    args = ["--project", PROJECT, "--dataset", "unreachable", "--date", END]
    code, out, err, seconds = run_cli(args, env, timeout=120)
    assert code == 1, out + err
    assert seconds < 60
    assert error_lines(out, err) == [
        f"error: the BigQuery emulator at http://127.0.0.1:{port} (BIGQUERY_EMULATOR_HOST) "
        "did not answer within 12 s (ConnectionError: Failed to establish a new connection: "
        "[Errno 111] Connection refused); "
        "start the emulator or unset BIGQUERY_EMULATOR_HOST"
    ]


def test_unreachable_firestore_fails_within_30_s_before_anything_is_written(
    emulators, bq_client
) -> None:
    port = closed_port()
    env = {**os.environ, **emulators.env(), "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{port}"}
    dataset = unique_dataset("nofs")
    code, out, err, seconds = run_cli(
        ["--project", PROJECT, "--dataset", dataset, "--date", END], env, timeout=120
    )
    assert code == 1, out + err
    assert seconds < 30
    [line] = error_lines(out, err)
    assert line.startswith(
        f"error: the Firestore emulator at 127.0.0.1:{port} (FIRESTORE_EMULATOR_HOST) "
        "did not answer within 12 s (ServiceUnavailable: "
    )
    assert line.endswith(
        'start the emulator (eval "$(scripts/emulators.py up)") or, to use Firestore '
        "itself, unset FIRESTORE_EMULATOR_HOST"
    )
    assert dataset not in [d.dataset_id for d in bq_client.list_datasets()]


def test_no_credentials_fails_at_once_without_an_auth_wait(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "FIRESTORE_EMULATOR_HOST",
            "BIGQUERY_EMULATOR_HOST",
            "GOOGLE_APPLICATION_CREDENTIALS",
        }
    }
    env.update(HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"))
    code, out, err, seconds = run_cli(
        ["--project", PROJECT, "--dataset", "d", "--date", END], env, timeout=120
    )
    assert code == 1, out + err
    assert seconds < 30
    assert error_lines(out, err) == [
        "error: no Google credentials: run `gcloud auth application-default login`, or point "
        "the run at the emulators (FIRESTORE_EMULATOR_HOST, BIGQUERY_EMULATOR_HOST)"
    ]


def _documents() -> dict[str, dict]:
    end = datetime.date.fromisoformat(END)
    return dict(sample_data.documents(users=20, days=5, end=end, per_user_per_day=20, seed=3))


def test_each_firestore_retry_is_logged_with_its_range_and_attempt(
    emulators, firestore_db, bq_client, monkeypatch, caplog
) -> None:
    seed(firestore_db, _documents())
    proxy = FaultProxy(emulators.firestore_port, cut_every=120_000, max_cuts=3)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", proxy.host)
    caplog.set_level(logging.WARNING, logger="pipelines.services.firestore")
    dataset = unique_dataset("retrylog")
    try:
        summary = sync(dataset, *WINDOW)
    finally:
        proxy.close()
    assert proxy.cuts >= 2, "the proxy never cut a stream: the test proved nothing"
    assert summary.documents_read > 1500
    lines = [r.getMessage() for r in caplog.records if r.name == "pipelines.services.firestore"]
    # A cut breaks the stream whose bytes crossed the line (others may be idle).
    assert lines, "no retry was logged"
    tables = {spec.name for spec in load_specs().values()}
    for line in lines:
        assert line.startswith("Firestore read of "), line
        assert line.split()[3].rstrip(",") in tables, line
        assert " resuming after users/" in line or " resuming at the start of its range" in line
        assert ": attempt " in line and "failed (ServiceUnavailable: " in line
        assert "\n" not in line
    assert table_rows(bq_client, dataset, "_sync_runs")[-1]["status"] != "failed"


def test_firestore_dying_mid_run_shows_one_error_line_with_a_hint_and_no_traceback(
    emulators, firestore_db, bq_client
) -> None:
    seed(firestore_db, _documents())
    proxy = FaultProxy(
        emulators.firestore_port, cut_every=100_000, max_cuts=1, on_cut=emulators.stop_firestore
    )
    env = {**os.environ, **emulators.env(), "FIRESTORE_EMULATOR_HOST": proxy.host}
    dataset = unique_dataset("fsdies")
    args = ["--project", PROJECT, "--dataset", dataset, *WINDOW, "--firestore_retry_timeout", "4"]
    try:
        code, out, err, _ = run_cli(args, env, timeout=300)
    finally:
        proxy.close()
        emulators.start_firestore()
    assert proxy.cuts == 1
    assert code == 1, out + err
    [line] = error_lines(out, err)
    assert line.startswith("error: run failed: RetryError: ")
    assert line.endswith("or, to use Firestore itself, unset FIRESTORE_EMULATOR_HOST")
    assert "WARNING pipelines.services.firestore: Firestore read of " in err
    assert "attempt 1 failed" in err
