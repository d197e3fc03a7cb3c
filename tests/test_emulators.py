"""Smoke tests for the emulator tooling: both emulators answer the real client libraries."""

from __future__ import annotations

import io
import json
import uuid
from typing import TYPE_CHECKING

import pytest
from google.cloud import bigquery, firestore

if TYPE_CHECKING:
    from conftest import Emulators

pytestmark = pytest.mark.integration

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
