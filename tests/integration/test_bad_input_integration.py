"""The hostile-document corpus among good documents, synced end to end on the emulators.

One sync over the fixed window 2026-11-01..2026-11-05 (run once per module) must
not crash, must reconcile, and must account for every document: each "dead"
corpus entry in ``_dead_letters`` with its path, field, reason and raw JSON;
each "written" entry and each good document as a row with its values intact.
"""

from __future__ import annotations

import datetime
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pytest
from google.cloud import firestore

from pipelines.cli.summary import RunSummary
from pipelines.convert.conversion import (
    ConversionError,
    document_to_row,
    format_timestamp,
    raw_document_json,
)
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import load_specs
from pipelines.services import firestore as fs
from tests.support.bad_documents import (
    CORPUS,
    DAYS,
    DEAD,
    END,
    START,
    TABLES,
    WRITTEN,
    at,
    materialize,
    table_of,
)
from tests.support.documents import interaction, memory, task
from tests.support.sync_helpers import seed, sync, table_rows, unique_dataset, verdicts

TRUNCATED = "…[truncated]"


def good_documents() -> dict[str, dict[str, Any]]:
    """30 well-formed documents spread over the window and all five collections."""
    docs: dict[str, dict[str, Any]] = {}
    for i, day in enumerate(DAYS):
        for user in ("alice", "bob"):
            docs[f"users/{user}/tasks/t{i}"] = task(day, hour=8 + i)
            docs[f"users/{user}/interactions/i{i}"] = interaction(day, hour=9 + i)
        docs[f"users/alice/memories/m{i}"] = memory(day)
    for i, day in enumerate(DAYS[:3]):
        docs[f"users/alice/projects/p{i}"] = {
            "name": f"Project {i}",
            "status": "active",
            "priority": i + 1,
            "task_ids": [f"t{i}"],
            "created_at": at(day),
            "updated_at": at(day),
        }
    for i, day in enumerate(DAYS[3:]):
        docs[f"users/bob/routines/r{i}"] = {
            "name": f"Routine {i}",
            "frequency": "weekdays",
            "days_of_week": [1, 2, 3, 4, 5],
            "start_time": "07:30",
            "active": True,
            "created_at": at(day),
            "updated_at": at(day),
        }
    assert len(docs) == 30
    return docs


@dataclass
class Synced:
    summary: RunSummary
    good: dict[str, dict[str, Any]]
    rows: dict[str, dict[str, dict[str, Any]]]  # table -> path -> row
    dead: dict[str, dict[str, Any]]  # path -> dead-letter row
    runs: list[dict[str, Any]]
    db: firestore.Client

    def tally(self, table: str):
        return next(t for t in self.summary.tables if t.table == table)


@pytest.fixture(scope="module")
def seeded(emulators) -> tuple[firestore.Client, dict[str, dict[str, Any]]]:
    """The corpus among 30 good documents; Unicode ids and 1 MiB strings included."""
    emulators.reset_firestore()
    db = firestore.Client(project=emulators.project)
    good = good_documents()
    seed(db, good)
    seed(db, {e.path: materialize(e.data, db) for e in CORPUS})
    return db, good


@pytest.fixture(scope="module")
def synced(seeded, bq_client_module) -> Synced:
    db, good = seeded
    dataset = unique_dataset("bad_input")
    summary = sync(dataset, "--start_date", START, "--end_date", END)
    rows = {
        table: {r["_document_path"]: r for r in table_rows(bq_client_module, dataset, table)}
        for table in TABLES.values()
    }
    dead_rows = table_rows(bq_client_module, dataset, "_dead_letters")
    dead = {r["document_path"]: r for r in dead_rows}
    assert len(dead) == len(dead_rows), "a document was dead-lettered twice"
    runs = verdicts(bq_client_module, dataset)
    return Synced(summary, good, rows, dead, runs, db)


@pytest.fixture(scope="module")
def bq_client_module(emulators):
    import google.auth.credentials
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    return bigquery.Client(
        project=emulators.project,
        credentials=google.auth.credentials.AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=emulators.bigquery_endpoint),
    )


def json_form(value: Any) -> Any:
    """A value read back from BigQuery in the JSON-ready form the converter produces."""
    if isinstance(value, datetime.datetime):
        return format_timestamp(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [json_form(v) for v in value]
    return value


def test_documents_as_read_survive_beams_coder(seeded) -> None:
    """Beam may encode any element (between fused stages, and when it samples
    element sizes inside one), so every document exactly as the read step yields
    it must survive the coder Beam uses for it and convert the same afterwards."""
    db, _ = seeded
    coder = beam.coders.registry.get_coder(FirestoreDocument)
    read_time = datetime.datetime.now(datetime.UTC)
    failures = {}
    for spec in load_specs().values():
        query = fs.base_query(db, spec)
        for doc in fs.stream_documents(query, spec.name, read_time, fs.read_retry(30.0)):
            try:
                decoded = coder.decode(coder.encode(doc))
            except Exception as exc:  # noqa: BLE001 - collected and reported per document
                failures[doc.path] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                continue
            if _outcome(spec, decoded) != _outcome(spec, doc):
                failures[doc.path] = "converts differently after encoding"
    assert not failures, failures


def _outcome(spec, doc: FirestoreDocument) -> Any:
    try:
        return document_to_row(spec, doc, "run", "2026-11-06T00:00:00.000000Z")
    except ConversionError as error:
        return ("dead", error.field, error.reason)


def test_sync_of_hostile_documents_completes_and_reconciles(synced: Synced) -> None:
    assert synced.summary.reconciles, synced.summary.render()
    assert [r["status"] for r in synced.runs] == ["succeeded"]
    expected_reads = Counter(table_of(e) for e in CORPUS)
    expected_reads.update(TABLES[path.split("/")[2]] for path in synced.good)
    for table in TABLES.values():
        t = synced.tally(table)
        assert t.read == expected_reads[table], table
        assert t.read == t.written + t.dead_lettered + t.outside_window, table
    audited = {t["table"]: t for t in synced.runs[0]["tables"]}
    for table in TABLES.values():
        t = synced.tally(table)
        assert audited[table]["documents_read"] == t.read
        assert audited[table]["dead_lettered"] == t.dead_lettered


def test_no_document_counts_as_outside_the_window(synced: Synced) -> None:
    """Every partition value is in the window or unusable; none may be skipped silently."""
    outside = {t.table: t.outside_window for t in synced.summary.tables if t.outside_window}
    assert not outside, f"documents neither written nor dead-lettered: {outside}"


def test_every_dead_document_is_dead_lettered_with_field_reason_and_raw_json(
    synced: Synced,
) -> None:
    assert set(synced.dead) <= {e.path for e in DEAD}, "a good document was dead-lettered"
    for entry in DEAD:
        row = synced.dead.get(entry.path)
        if row is None:
            continue  # reported below, once every present row is checked
        assert row["table_name"] == table_of(entry), entry.path
        assert row["field"] == entry.expected_field, entry.path
        assert row["reason"] and row["reason"].strip(), entry.path
        assert row["run_id"] == synced.summary.config.run_id
        raw = row["raw_document"]
        if raw.endswith(TRUNCATED):
            continue
        local = FirestoreDocument(table_of(entry), entry.path, materialize(entry.data, synced.db))
        assert json.loads(raw) == json.loads(raw_document_json(local)), entry.path
    missing = sorted(e.path for e in DEAD if e.path not in synced.dead)
    assert not missing, f"dead documents not in _dead_letters: {missing}"
    for table in TABLES.values():
        count = sum(1 for e in DEAD if table_of(e) == table)
        assert synced.tally(table).dead_lettered == count, table


def test_every_written_and_good_document_is_a_row(synced: Synced) -> None:
    for table in TABLES.values():
        expected = {e.path for e in WRITTEN if table_of(e) == table}
        expected |= {p for p in synced.good if TABLES[p.split("/")[2]] == table}
        assert set(synced.rows[table]) == expected, table
        assert synced.tally(table).written == len(expected), table


def test_hostile_values_round_trip_exactly(synced: Synced) -> None:
    """Unicode, emoji, control characters, 1 MiB strings, int64 extremes, NaN and
    ±Infinity, pre-1970 values, hostile field names and deep nesting come back
    from BigQuery exactly as the converter wrote them."""
    mismatches = {}
    for entry in WRITTEN:
        row = synced.rows[table_of(entry)][entry.path]
        segments = entry.path.split("/")
        assert row["user_id"] == segments[1]
        for column, expected in entry.check.items():
            actual = json_form(row[column])
            if actual != expected:
                mismatches[f"{entry.path}:{column}"] = (_short(actual), _short(expected))
    assert not mismatches, mismatches


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:120]}… ({len(text)} chars)"
