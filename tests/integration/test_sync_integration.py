"""End-to-end syncs against the Firestore and BigQuery emulators."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

from google.cloud import firestore
from google.cloud.firestore_v1 import GeoPoint

from pipelines.convert.table_spec import load_specs
from tests.support import example_app
from tests.support.documents import at, interaction, memory, task
from tests.support.sync_helpers import rows_by_day, seed, sync, table_rows, unique_dataset, verdicts

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]


def _week(db) -> dict[str, dict]:
    """Two users, a task and an interaction per day each, one memory a day for alice."""
    docs = {}
    for i, day in enumerate(DAYS):
        for user in ("alice", "bob"):
            docs[f"users/{user}/tasks/t{i}"] = task(day, hour=8 + i)
            docs[f"users/{user}/interactions/i{i}"] = interaction(day, hour=9 + i)
        docs[f"users/alice/memories/m{i}"] = memory(day)
    docs["users/alice/projects/p1"] = {
        "name": "Marathon",
        "status": "active",
        "priority": 2,
        "due_date": "2027-04-01",
        "progress": 0.25,
        "task_ids": ["t0", "t1"],
        "created_at": at(DAYS[0]),
        "updated_at": at(DAYS[0]),
    }
    docs["users/bob/routines/r1"] = {
        "name": "Morning",
        "frequency": "daily",
        "days_of_week": [1, 2, 3, 4, 5],
        "start_time": "07:30",
        "active": True,
        "items": [{"routine_item_id": "stretch", "duration_minutes": 10}],
        "created_at": at(DAYS[1]),
        "updated_at": at(DAYS[1]),
    }
    seed(db, docs)
    return docs


def test_backfill_lands_typed_rows_in_partitioned_clustered_tables(firestore_db, bq_client):
    _week(firestore_db)
    dataset = unique_dataset("backfill")
    summary = sync(dataset, "--start_date", DAYS[0], "--end_date", DAYS[-1])

    by_table = {t.table: t for t in summary.tables}
    assert by_table["tasks"].read == 10 and by_table["tasks"].written == 10
    assert by_table["user_interactions"].written == 10
    assert by_table["emotional_memories"].written == 5
    assert by_table["projects"].written == 1 and by_table["routines"].written == 1
    assert rows_by_day(bq_client, dataset, "tasks", "created_at") == {d: 2 for d in DAYS}

    for spec in load_specs().values():
        table = bq_client.get_table(f"{bq_client.project}.{dataset}.{spec.name}", timeout=30)
        assert table.time_partitioning.field == spec.partition_column
        assert table.time_partitioning.type_ == "DAY"
        assert (table.clustering_fields or []) == list(spec.clustering)

    tasks = table_rows(bq_client, dataset, "tasks")
    first = next(r for r in tasks if r["_document_path"] == "users/alice/tasks/t0")
    assert first["user_id"] == "alice" and first["task_id"] == "t0"
    assert first["date"] == datetime.date(2026, 11, 1)
    assert first["time"] == datetime.time(9, 30)
    assert first["created_at"] == at(DAYS[0], 8)
    assert first["completed"] is False and first["duration_minutes"] == 15
    assert first["extra"] is None
    runs = verdicts(bq_client, dataset)
    assert [r["status"] for r in runs] == ["succeeded"]
    assert runs[0]["run_id"] == summary.config.run_id
    audited = {t["table"]: t for t in runs[0]["tables"]}
    assert audited["tasks"]["documents_read"] == 10 and audited["tasks"]["rows_written"] == 10
    assert audited["tasks"]["days_replaced"] == 5 and audited["tasks"]["replaced"] is True
    routine = table_rows(bq_client, dataset, "routines")[0]
    assert routine["days_of_week"] == [1, 2, 3, 4, 5]
    assert routine["start_time"] == datetime.time(7, 30)


def test_rerun_of_the_same_window_gives_identical_tables(firestore_db, bq_client):
    _week(firestore_db)
    dataset = unique_dataset("rerun")
    sync(dataset, "--start_date", DAYS[0], "--end_date", DAYS[-1])
    first = {t: table_rows(bq_client, dataset, t) for t in load_specs()}
    sync(dataset, "--start_date", DAYS[0], "--end_date", DAYS[-1])
    second = {t: table_rows(bq_client, dataset, t) for t in load_specs()}
    assert first == second
    assert sum(len(rows) for rows in first.values()) == 27


def test_nightly_run_picks_up_late_edits_and_lookback_picks_up_deletes(firestore_db, bq_client):
    _week(firestore_db)
    dataset = unique_dataset("late")
    sync(dataset, "--start_date", DAYS[0], "--end_date", DAYS[-1])

    # Tonight's run (just after midnight: ``tomorrow``) covers today; edits made after
    # this instant are tonight's edits (the seeding above also happened today, so
    # --edits_since tells them apart).
    edits_since = datetime.datetime.now(datetime.UTC)
    night = edits_since.date().isoformat()
    tomorrow = edits_since + datetime.timedelta(days=1)
    # Completed weeks after it was created: Firestore's update time is in the window.
    firestore_db.document("users/alice/tasks/t1").update({"completed": True})
    firestore_db.document("users/bob/tasks/t5").set(task(night))
    firestore_db.document("users/bob/tasks/t4").delete()  # hard delete: leaves no trace
    firestore_db.document("users/bob/interactions/i0").update({"intent": "edited"})

    summary = sync(
        dataset, "--date", night, "--edits_since", edits_since.isoformat(), now=tomorrow
    )
    tasks = {r["_document_path"]: r for r in table_rows(bq_client, dataset, "tasks")}
    assert tasks["users/alice/tasks/t1"]["completed"] is True  # late edit rebuilt its day
    assert "users/bob/tasks/t5" in tasks  # tonight's day written
    assert "users/bob/tasks/t4" in tasks  # its day was not rebuilt: still there
    by_table = {t.table: t for t in summary.tables}
    assert by_table["tasks"].days_replaced == 2  # tonight and DAYS[1]
    assert by_table["tasks"].outside_window == 7  # the days nobody touched
    # Every table gets late edits: Firestore's update time, not an app field.
    interactions = table_rows(bq_client, dataset, "user_interactions")
    i0 = next(r for r in interactions if r["_document_path"] == "users/bob/interactions/i0")
    assert i0["intent"] == "edited"
    runs = verdicts(bq_client, dataset)
    late = {t["table"]: t["late_edit_days"] for t in runs[-1]["tables"]}
    assert late["tasks"] == [DAYS[1]] and late["user_interactions"] == [DAYS[0]]

    lookback = (edits_since.date() - datetime.date.fromisoformat(DAYS[-1])).days
    sync(dataset, "--date", night, "--lookback_days", str(lookback), now=tomorrow)
    tasks = {r["_document_path"]: r for r in table_rows(bq_client, dataset, "tasks")}
    assert "users/bob/tasks/t4" not in tasks  # the look-back rebuilt DAYS[-1]


def test_emptied_day_is_emptied_and_days_outside_the_window_are_untouched(firestore_db, bq_client):
    _week(firestore_db)
    dataset = unique_dataset("window")
    sync(dataset, "--start_date", DAYS[0], "--end_date", DAYS[-1])
    before = table_rows(bq_client, dataset, "user_interactions")

    # Day 3 loses every document; day 1 changes, but day 1 is outside the next window.
    for user in ("alice", "bob"):
        firestore_db.document(f"users/{user}/interactions/i2").delete()
        firestore_db.document(f"users/{user}/tasks/t2").delete()
    firestore_db.document("users/alice/memories/m2").delete()
    firestore_db.document("users/alice/interactions/i0").update({"message_out": "changed"})

    summary = sync(dataset, "--start_date", DAYS[2], "--end_date", DAYS[3])
    after = table_rows(bq_client, dataset, "user_interactions")
    counts = rows_by_day(bq_client, dataset, "user_interactions", "timestamp")
    assert DAYS[2] not in counts
    assert counts == {DAYS[0]: 2, DAYS[1]: 2, DAYS[3]: 2, DAYS[4]: 2}
    untouched = [r for r in before if r["timestamp"].date().isoformat() in (DAYS[0], DAYS[1])]
    assert [r for r in after if r["timestamp"].date().isoformat() in (DAYS[0], DAYS[1])] == (
        untouched
    )
    tasks = next(t for t in summary.tables if t.table == "tasks")
    assert tasks.written_per_day == {DAYS[2]: 0, DAYS[3]: 2}
    assert tasks.outside_window == 6
    assert tasks.days_replaced == 2  # seeded today, before the window: no late edits


def test_dead_letters_reconcile_with_reads(firestore_db, bq_client):
    _week(firestore_db)
    seed(
        firestore_db,
        {
            "users/alice/tasks/bad_date": task(DAYS[0], date="24/11/2026"),
            "users/alice/tasks/no_created": {"description": "no partition value"},
            "users/alice/tasks/bad_origin": task(DAYS[1], origin="email"),
            "users/bob/interactions/bad_tokens": interaction(DAYS[2], tokens_in="many"),
            "users/bob/memories/nan": memory(DAYS[3], emotional_valence=math.nan),
            "users/bob/memories/geo": memory(DAYS[3], where=GeoPoint(48.85, 2.35)),
            "stray/x/tasks/elsewhere": task(DAYS[0]),
        },
    )
    dataset = unique_dataset("dlq")
    summary = sync(dataset, "--start_date", DAYS[0], "--end_date", DAYS[-1])
    by_table = {t.table: t for t in summary.tables}
    assert by_table["tasks"].read == 14
    assert by_table["tasks"].dead_lettered == 4 and by_table["tasks"].written == 10
    assert by_table["user_interactions"].dead_lettered == 1
    assert by_table["emotional_memories"].dead_lettered == 0
    assert by_table["emotional_memories"].written == 7
    for t in summary.tables:
        assert t.read == t.written + t.dead_lettered + t.outside_window

    dead = {r["document_path"]: r for r in table_rows(bq_client, dataset, "_dead_letters")}
    assert set(dead) == {
        "users/alice/tasks/bad_date",
        "users/alice/tasks/no_created",
        "users/alice/tasks/bad_origin",
        "users/bob/interactions/bad_tokens",
        "stray/x/tasks/elsewhere",
    }
    assert dead["users/alice/tasks/bad_date"]["field"] == "date"
    assert "24/11/2026" in dead["users/alice/tasks/bad_date"]["reason"]
    assert dead["users/alice/tasks/no_created"]["field"] == "created_at"
    assert dead["users/alice/tasks/no_created"]["partition_day"] is None
    assert json.loads(dead["users/bob/interactions/bad_tokens"]["raw_document"])["tokens_in"] == (
        "many"
    )
    memories = {
        r["_document_path"]: r for r in table_rows(bq_client, dataset, "emotional_memories")
    }
    assert math.isnan(memories["users/bob/memories/nan"]["emotional_valence"])
    assert memories["users/bob/memories/geo"]["extra"] == {
        "where": {"latitude": 48.85, "longitude": 2.35}
    }


def test_collection_subset_touches_only_those_tables(firestore_db, bq_client):
    _week(firestore_db)
    dataset = unique_dataset("subset")
    summary = sync(
        dataset,
        "--start_date",
        DAYS[0],
        "--end_date",
        DAYS[-1],
        "--collections",
        "tasks,interactions",
    )
    assert sorted(t.table for t in summary.tables) == ["tasks", "user_interactions"]
    tables = {t.table_id for t in bq_client.list_tables(dataset, timeout=30)}
    assert {"tasks", "user_interactions", "_dead_letters"} <= tables
    assert not tables & {"emotional_memories", "projects", "routines"}
    assert not [t for t in tables if t.startswith("_staging_")]


def test_dry_run_writes_nothing(firestore_db, bq_client):
    _week(firestore_db)
    dataset = unique_dataset("dry")
    summary = sync(dataset, "--start_date", DAYS[0], "--end_date", DAYS[-1], dry_run=True)
    assert next(t for t in summary.tables if t.table == "tasks").rows == 10
    assert dataset not in {d.dataset_id for d in bq_client.list_datasets(timeout=30)}


def test_top_level_collection_layout_with_field_map(firestore_db, bq_client, tmp_path: Path):
    schema = json.loads((example_app.SCHEMAS / "user_interactions.json").read_text())
    schema["source"] = {"collection": "chat_log", "layout": "top_level"}
    schema["field_map"] = {"message_in": "text", "timestamp": ["meta", "sent_at"]}
    (tmp_path / "user_interactions.json").write_text(json.dumps(schema))
    seed(
        firestore_db,
        {
            f"chat_log/c{i}": {
                "user_id": "carol",
                "text": f"hello {i}",
                "meta": {"sent_at": at(DAYS[i]), "client": "ios"},
                "intent": "small_talk",
            }
            for i in range(3)
        },
    )
    # Documents of the same collection id under users/… are not this table's.
    firestore_db.document("users/x/chat_log/other").set({"user_id": "x"})
    dataset = unique_dataset("toplevel")
    summary = sync(
        dataset, "--start_date", DAYS[0], "--end_date", DAYS[-1], "--schemas_dir", str(tmp_path)
    )
    assert summary.tables[0].written == 3
    rows = table_rows(bq_client, dataset, "user_interactions")
    assert [r["message_in"] for r in rows] == ["hello 0", "hello 1", "hello 2"]
    assert {r["user_id"] for r in rows} == {"carol"}
    assert rows[1]["timestamp"] == at(DAYS[1])
    assert rows[0]["extra"] == {"meta": {"client": "ios"}}  # meta.sent_at went to a column


def test_snapshot_is_pinned_at_the_read_time(firestore_db, bq_client):
    _week(firestore_db)
    read_time = datetime.datetime.now(datetime.UTC)
    firestore_db.document("users/carol/tasks/later").set(task(DAYS[0]))
    dataset = unique_dataset("snapshot")
    summary = sync(
        dataset, "--date", DAYS[0], "--collections", "tasks", "--read_time", read_time.isoformat()
    )
    assert summary.tables[0].written == 2
    assert isinstance(firestore_db, firestore.Client)
