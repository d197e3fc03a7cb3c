"""Smoke tests for the emulator tooling: both emulators answer the real client libraries;
``down`` forgets both emulators' data, ``down --keep_data`` keeps both."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import google.auth.credentials
import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.cloud import bigquery, firestore

from devtools import emulators as emulators_cli
from devtools.emulators import Emulators

# An emulator error (HTTP 500) is retried by the BigQuery client for minutes by default;
# bound every call so a broken emulator fails the test quickly.
BQ_TIMEOUT = 30
JOB_TIMEOUT = 60


def test_firestore_round_trip(firestore_db: firestore.Client) -> None:
    doc = firestore_db.collection("users").document("alice")
    doc.set({"name": "Alice", "age": 30, "tags": ["a", "b"]})

    snapshot = doc.get()

    assert snapshot.exists
    assert snapshot.to_dict() == {"name": "Alice", "age": 30, "tags": ["a", "b"]}


def test_firestore_reset_clears_data(emulators: Emulators, firestore_db: firestore.Client) -> None:
    firestore_db.collection("tmp").document("x").set({"v": 1})

    emulators.reset_firestore()

    assert not firestore_db.collection("tmp").document("x").get().exists


def test_bigquery_load_and_query(bq_client: bigquery.Client, emulators: Emulators) -> None:
    dataset_id = f"{emulators.project}.smoke_{uuid.uuid4().hex[:8]}"
    bq_client.create_dataset(dataset_id, timeout=BQ_TIMEOUT)
    schema = [
        bigquery.SchemaField("id", "STRING", mode="REQUIRED"),
        bigquery.SchemaField("n", "INT64"),
    ]
    table = bq_client.create_table(
        bigquery.Table(f"{dataset_id}.rows", schema=schema), timeout=BQ_TIMEOUT
    )
    rows = [{"id": "a", "n": 1}, {"id": "b", "n": 2}]
    payload = io.BytesIO("".join(json.dumps(r) + "\n" for r in rows).encode())
    job_config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON, schema=schema
    )

    # No `size`: the client then uses a resumable upload, as Beam's file loads do.
    load_job = bq_client.load_table_from_file(
        payload, table, job_config=job_config, timeout=BQ_TIMEOUT
    )
    load_job.result(timeout=JOB_TIMEOUT)

    query = f"SELECT id, n FROM `{dataset_id}.rows` ORDER BY id"
    result = bq_client.query(query, timeout=BQ_TIMEOUT).result(timeout=JOB_TIMEOUT)
    assert [(r.id, r.n) for r in result] == [("a", 1), ("b", 2)]


def test_firestore_restart_keeps_port(emulators: Emulators) -> None:
    host_before = emulators.firestore_host
    pid_before = emulators.firestore_pid

    emulators.stop_firestore()
    assert not emulators.firestore_ready()

    emulators.start_firestore()

    assert emulators.firestore_host == host_before
    assert emulators.firestore_pid != pid_before
    assert emulators.firestore_ready()
    # A fresh client on the same address works again after the restart.
    client = firestore.Client(project=emulators.project)
    client.collection("after_restart").document("d").set({"ok": True})
    assert client.collection("after_restart").document("d").get().to_dict() == {"ok": True}


def test_bigquery_restart_keeps_port_and_data(
    bq_client: bigquery.Client, emulators: Emulators
) -> None:
    dataset_id = f"{emulators.project}.restart_{uuid.uuid4().hex[:8]}"
    bq_client.create_dataset(dataset_id, timeout=BQ_TIMEOUT)
    endpoint_before = emulators.bigquery_endpoint

    emulators.stop_bigquery()
    assert not emulators.bigquery_ready()
    emulators.start_bigquery()

    assert emulators.bigquery_endpoint == endpoint_before
    # Data lives in the persistent data dir, so the dataset survives the restart.
    dataset = bq_client.get_dataset(dataset_id, timeout=BQ_TIMEOUT)
    assert dataset.dataset_id == dataset_id.split(".")[1]


def _clients(emu: Emulators, monkeypatch: pytest.MonkeyPatch):
    for key, value in emu.env().items():
        monkeypatch.setenv(key, value)
    bq = bigquery.Client(
        project=emu.project,
        credentials=google.auth.credentials.AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=emu.bigquery_endpoint),
    )
    return firestore.Client(project=emu.project), bq


def _has_data(emu: Emulators, monkeypatch: pytest.MonkeyPatch) -> tuple[bool, bool]:
    """(the Firestore document is there, the BigQuery dataset is there)."""
    db, bq = _clients(emu, monkeypatch)
    try:
        bq.get_dataset(f"{emu.project}.kept", timeout=BQ_TIMEOUT)
        dataset = True
    except exceptions.NotFound:
        dataset = False
    return db.document("users/u/tasks/t").get().exists, dataset


def test_down_forgets_both_emulators_data_unless_told_to_keep_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"

    def up() -> Emulators:
        assert emulators_cli.main(["up", "--state-dir", str(state)]) == 0
        emu = emulators_cli.emulators_from_state(state)
        assert emu is not None
        return emu

    def down(*flags: str) -> None:
        assert emulators_cli.main(["down", "--state-dir", str(state), *flags]) == 0

    emu = up()
    try:
        db, bq = _clients(emu, monkeypatch)
        db.document("users/u/tasks/t").set({"description": "kept?"})
        bq.create_dataset(f"{emu.project}.kept", timeout=BQ_TIMEOUT)
        assert _has_data(emu, monkeypatch) == (True, True)

        down("--keep_data")
        assert not (emu.firestore_alive() or emu.bigquery_alive())
        emu = up()
        assert _has_data(emu, monkeypatch) == (True, True)

        down()
        assert not (state / "firestore").exists() and not (state / "bigquery").exists()
        emu = up()
        assert _has_data(emu, monkeypatch) == (False, False)
    finally:
        emu.stop()


def test_the_documented_query_reaches_the_local_bigquery(
    emulators: Emulators, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/emulators.md#querying-the-local-bigquery: its Python, as written, against the
    emulator the session started (the dataset renamed to one of its own)."""
    from devtools import REPO_ROOT
    from pipelines.services import bigquery as bq

    text = (REPO_ROOT / "docs" / "emulators.md").read_text(encoding="utf-8")
    snippet = text.split("## Querying the local BigQuery")[1].split("```python")[1]
    snippet = snippet.split("```")[0]
    dataset = f"querying_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", emulators.bigquery_endpoint)
    client = bq.make_client(emulators.project)
    schema = [{"name": "created_at", "type": "TIMESTAMP", "mode": "REQUIRED"}]
    bq.ensure_dataset(client, dataset, None)
    bq.ensure_table(client, dataset, "tasks", schema, "created_at")
    rows = [{"created_at": f"2026-11-2{d}T10:00:00Z"} for d in (1, 2, 2)]
    bq.load_rows(client, dataset, "tasks", schema, rows)

    exec(snippet.replace("app_analytics", dataset), {})  # the docs' own code

    assert capsys.readouterr().out.splitlines() == ["2026-11-21 1", "2026-11-22 2"]
