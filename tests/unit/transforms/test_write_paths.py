"""Paths of the write and the snapshot that a plain sync does not take.

Spilling a staging batch to disk, several load jobs per table, a load retried
after it had landed (staged twice), the Secret Manager key, and one snapshot
pinned across two tables.
"""

from __future__ import annotations

import datetime
import sys
import types

from pipelines.cli.options import SyncConfig
from pipelines.transforms import write_bigquery
from pipelines.transforms.write_bigquery import _Batch
from tests.support.documents import interaction, task
from tests.support.sync_helpers import seed

DAYS = ("2026-11-01", "2026-11-02")
WINDOW = ("--start_date", DAYS[0], "--end_date", DAYS[1])


def test_a_batch_spills_to_a_temporary_file_past_its_memory_limit(monkeypatch) -> None:
    monkeypatch.setattr(write_bigquery, "SPOOL_IN_MEMORY", 100)
    batch = _Batch()
    lines = [f'{{"n": {i}, "pad": "{"x" * 20}"}}\n'.encode() for i in range(10)]
    for line in lines[:2]:
        batch.write(line)
    assert batch.buffer.name is None  # 2 lines: still under 100 bytes, in memory
    assert batch.buffer.mode in ("rb", "r+b", "rb+")  # what the BigQuery client uploads
    for line in lines[2:]:
        batch.write(line)
    assert batch.buffer.name is not None  # spilled to a temporary file
    assert batch.buffer.mode in ("rb", "r+b", "rb+")
    batch.buffer.seek(0)
    assert batch.buffer.read() == b"".join(lines)
    assert (batch.rows, batch.size) == (10, sum(map(len, lines)))
    batch.buffer.close()


def test_the_secret_manager_key_is_read_from_the_named_version(monkeypatch) -> None:
    asked = []

    class FakeClient:
        def access_secret_version(self, name: str):
            asked.append(name)
            return types.SimpleNamespace(payload=types.SimpleNamespace(data=b"k3y"))

    fake = types.ModuleType("google.cloud.secretmanager")
    fake.SecretManagerServiceClient = FakeClient
    monkeypatch.setitem(sys.modules, "google.cloud.secretmanager", fake)
    monkeypatch.setattr("google.cloud.secretmanager", fake, raising=False)
    monkeypatch.setenv("F2BQ_HASH_KEY", "not this one")
    version = "projects/p/secrets/f2bq-hash-key/versions/3"
    config = SyncConfig(
        project="p", dataset="d", start_date=datetime.date(2026, 11, 1),
        end_date=datetime.date(2026, 11, 1), tables=(), run_id="r",
        read_time=datetime.datetime(2026, 11, 2, tzinfo=datetime.UTC),
        started_at=datetime.datetime(2026, 11, 2, tzinfo=datetime.UTC),
        hash_key_secret=version,
    )  # fmt: skip
    assert config.hashing.key() == b"k3y"
    assert asked == [version]


def _seed_days(db) -> dict:
    docs = {}
    for i, day in enumerate(DAYS):
        for user in ("alice", "bob"):
            for n in range(3):
                docs[f"users/{user}/tasks/t{i}{n}"] = task(day, hour=8 + n)
                docs[f"users/{user}/interactions/i{i}{n}"] = interaction(day, hour=9 + n)
    seed(db, docs)
    return docs


