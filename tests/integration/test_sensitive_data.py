"""Column policies are applied on the worker: nothing protected reaches BigQuery raw."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from tests.support import example_app
from tests.support.documents import interaction
from tests.support.sync_helpers import seed, sync, table_rows, unique_dataset

DAY = "2026-11-03"
KEY = "test-only-hmac-key"
SECRET_IN = "my bank password is hunter2"
SECRET_OUT = "noted, I will remember hunter2"


def _schemas(tmp_path: Path) -> Path:
    schema = json.loads((example_app.SCHEMAS / "user_interactions.json").read_text())
    for field in schema["fields"]:
        if field["name"] == "message_in":
            field["policy"] = "hash"
        if field["name"] == "message_out":
            field["policy"] = "drop"
    (tmp_path / "user_interactions.json").write_text(json.dumps(schema))
    return tmp_path


def test_hash_and_drop_policies_reach_tables_and_dead_letters(
    firestore_db, bq_client, tmp_path, monkeypatch
):
    monkeypatch.setenv("F2BQ_HASH_KEY", KEY)
    seed(
        firestore_db,
        {
            "users/alice/interactions/ok": interaction(
                DAY, message_in=SECRET_IN, message_out=SECRET_OUT
            ),
            # Broken elsewhere, so its raw document goes to the dead-letter table.
            "users/alice/interactions/bad": interaction(
                DAY, message_in=SECRET_IN, message_out=SECRET_OUT, tokens_in="many"
            ),
        },
    )
    dataset = unique_dataset("policy")
    sync(dataset, "--date", DAY, "--schemas_dir", str(_schemas(tmp_path)))

    (row,) = table_rows(bq_client, dataset, "user_interactions")
    expected = hmac.new(KEY.encode(), SECRET_IN.encode(), hashlib.sha256).hexdigest()
    assert row["message_in"] == expected
    assert row["message_out"] is None
    (dead,) = table_rows(bq_client, dataset, "_dead_letters")
    raw = json.loads(dead["raw_document"])
    assert raw["message_in"] == expected and "message_out" not in raw
    everything = json.dumps([row, dead], default=str)
    assert "hunter2" not in everything
