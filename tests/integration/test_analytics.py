"""f2bq_analytics/analytics.py against the emulators: seed Firestore, run the real sync, ask.

Every expected figure below is worked out by hand from the seeded documents.
The window is ``[AS_OF - 7 days, AS_OF]`` = ``[EDGE, AS_OF]``, both ends in.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from google.cloud import bigquery, firestore

from devtools import REPO_ROOT
from devtools import setup_bigquery as setup
from f2bq_analytics import analytics
from tests.support.documents import interaction, memory, task
from tests.support.sync_helpers import PROJECT, seed, sync, unique_dataset

UTC = datetime.UTC
US = datetime.timedelta(microseconds=1)
AS_OF = datetime.datetime(2026, 11, 10, 12, tzinfo=UTC)
DAYS = 7
EDGE = AS_OF - datetime.timedelta(days=DAYS)  # 2026-11-03T12:00:00Z, included
ALICE, BOB = "alice", "bob"


def ts(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def chat(at: datetime.datetime, text: str, **fields: Any) -> dict[str, Any]:
    return interaction(
        "2026-11-01", timestamp=at, intent="chat", message_in=f"{text} in",
        message_out=f"{text} out", **fields,
    )  # fmt: skip


def turn(at: datetime.datetime, intent: str | None, t_in, t_out, ms, error) -> dict[str, Any]:
    return interaction(
        "2026-11-01", timestamp=at, intent=intent, tokens_in=t_in, tokens_out=t_out,
        duration_ms=ms, error_code=error,
    )  # fmt: skip


# Alice's interactions in the window (13): intents chat 3, reflect 3, create_task 2,
# plan_day 2, weather 2, NULL 1.
ALICE_TURNS = {
    "i01": turn(EDGE, "reflect", 10, 20, 100, None),
    "i02": turn(ts("2026-11-05T08:00"), "reflect", None, 5, None, ""),
    "i03": turn(ts("2026-11-05T23:59:59.999998"), "plan_day", None, None, 300, "MODEL_TIMEOUT"),
    "i04": turn(ts("2026-11-06T00:00"), "create_task", 7, 8, 200, None),
    "i05": chat(ts("2026-11-06T09:00"), "c1", tokens_in=3, tokens_out=4, duration_ms=50),
    "i06": chat(
        ts("2026-11-07T09:00"),
        "c2",
        tokens_in=5,
        tokens_out=6,
        duration_ms=None,
        error_code="RATE_LIMITED",
    ),  # fmt: skip
    "i07": turn(ts("2026-11-07T10:00"), None, 3, 3, 40, None),
    "i08": turn(ts("2026-11-08T10:00"), "weather", 1, 1, 150, ""),
    "i09": turn(ts("2026-11-08T11:00"), "plan_day", 2, 2, 250, None),
    "i10": turn(ts("2026-11-09T10:00"), "create_task", 0, 0, 350, None),
    "i11": turn(ts("2026-11-09T11:00"), "weather", None, 10, None, None),
    "i12": turn(ts("2026-11-10T11:00"), "reflect", 4, 4, 450, None),
    "i13": chat(AS_OF, "c3", tokens_in=1, tokens_out=2, duration_ms=60),
    # Outside the window: a microsecond before its start, after its end, days before.
    "o1": turn(EDGE - US, "reflect", 1000, 1000, 9999, "OLD"),
    "o2": chat(AS_OF + US, "future", tokens_in=1000, tokens_out=1000, duration_ms=9999),
    "o3": chat(ts("2026-11-02T09:00"), "old"),
}
BOB_TURNS = {
    "b1": turn(ts("2026-11-06T09:30"), "aaa", 500, 500, 1, "E"),
    "b2": turn(ts("2026-11-06T09:31"), "aaa", 500, 500, 1, "E"),
    "b3": turn(ts("2026-11-06T09:32"), "aaa", 500, 500, 1, "E"),
    "b4": chat(ts("2026-11-08T09:00"), "bob"),
}
ALICE_TASKS = {
    "t1": task("2026-11-03", created_at=EDGE, completed=True),
    "t2": task("2026-11-05", completed=False),
    "t3": task("2026-11-06", completed=None),
    "t4": task("2026-11-09", completed=True),
    "t5": task("2026-11-10", created_at=AS_OF, completed=True),
    "o1": task("2026-11-03", created_at=EDGE - US, completed=True),
    "o2": task("2026-11-10", created_at=AS_OF + US, completed=True),
}
BOB_TASKS = {"b1": task("2026-11-06", completed=False), "b2": task("2026-11-06", completed=False)}
ALICE_MEMORIES = {
    "m1": memory("2026-11-03", timestamp=EDGE, emotional_valence=0.5),
    "m2": memory("2026-11-05", hour=9, emotional_valence=-0.25),
    "m3": memory("2026-11-05", hour=20, emotional_valence=None),
    "m4": memory("2026-11-05", hour=21, emotional_valence=0.75),
    "m5": memory("2026-11-08", hour=9, emotional_valence=-0.5),
    "m6": memory("2026-11-10", timestamp=AS_OF, emotional_valence=1.0),
    "o1": memory("2026-11-03", timestamp=EDGE - US, emotional_valence=-1.0),
}
BOB_MEMORIES = {"b1": memory("2026-11-05", emotional_valence=-1.0)}


@pytest.fixture(scope="module")
def synced(emulators) -> tuple[str, analytics.Analytics]:
    """Seed both users, create tables and views, sync 2026-11-01..12 once for the module."""
    emulators.reset_firestore()
    db = firestore.Client(project=emulators.project)
    docs: dict[str, dict[str, Any]] = {}
    for user, collection, items in [
        (ALICE, "interactions", ALICE_TURNS),
        (BOB, "interactions", BOB_TURNS),
        (ALICE, "tasks", ALICE_TASKS),
        (BOB, "tasks", BOB_TASKS),
        (ALICE, "memories", ALICE_MEMORIES),
        (BOB, "memories", BOB_MEMORIES),
    ]:
        docs.update({f"users/{user}/{collection}/{k}": v for k, v in items.items()})
    seed(db, docs)
    dataset = unique_dataset("analytics")
    assert setup.main(["--project", PROJECT, "--dataset", dataset]) == 0
    summary = sync(dataset, "--start_date", "2026-11-01", "--end_date", "2026-11-12")
    assert summary.reconciles
    return dataset, analytics.Analytics(PROJECT, dataset)


def test_user_analytics_counts_exactly_the_window(synced):
    _, a = synced
    assert a.user_analytics(ALICE, days=DAYS, as_of=AS_OF) == {
        "total_interactions": 13,
        # 11-03, 11-05, 11-06 (i03 is on 11-05 by a hair), 11-07, 11-08, 11-09, 11-10
        "active_days": 7,
        # (100+300+200+50+40+150+250+350+450+60) / 10 non-NULL durations
        "avg_duration_ms": 195.0,
        # 30+5+0+15+7+11+6+2+4+0+10+8+3, NULL tokens as 0
        "total_tokens": 101,
        # MODEL_TIMEOUT and RATE_LIMITED; "" and NULL are not errors
        "error_count": 2,
        # chat and reflect tie at 3 (by name), then create_task wins the tie at 2
        "top_intents": [
            {"value": "chat", "count": 3},
            {"value": "reflect", "count": 3},
            {"value": "create_task", "count": 2},
        ],
    }


def test_the_window_start_is_inclusive_to_the_microsecond(synced):
    _, a = synced
    at_edge = a.user_analytics(ALICE, days=DAYS, as_of=AS_OF)
    moved = a.user_analytics(ALICE, days=DAYS, as_of=AS_OF - US)  # EDGE-1us in, AS_OF out
    assert moved["total_interactions"] == at_edge["total_interactions"]
    assert moved["error_count"] == 3  # o1 "OLD" in, nothing lost with i13
    assert moved["total_tokens"] == 101 - 3 + 2000
    assert a.task_completion_rate(ALICE, days=DAYS, as_of=AS_OF + US) == {
        "tasks": 5, "completed": 3, "rate": 0.6,  # t1 out, o2 in
    }  # fmt: skip


def test_user_without_data_gets_zeros_none_and_empty(synced):
    _, a = synced
    assert a.user_analytics("carol", as_of=AS_OF) == {
        "total_interactions": 0,
        "active_days": 0,
        "avg_duration_ms": None,
        "total_tokens": 0,
        "error_count": 0,
        "top_intents": [],
    }
    assert a.task_completion_rate("carol", as_of=AS_OF) == {
        "tasks": 0, "completed": 0, "rate": None,
    }  # fmt: skip
    assert a.chat_history("carol", as_of=AS_OF) == []
    assert a.emotional_trend("carol", as_of=AS_OF) == {"days": [], "avg_valence": None}


def test_task_completion_rate(synced):
    _, a = synced
    # t1 (at EDGE) .. t5 (at AS_OF); t3's NULL is not completed; o1, o2 and Bob's are out.
    assert a.task_completion_rate(ALICE, days=DAYS, as_of=AS_OF) == {
        "tasks": 5, "completed": 3, "rate": 0.6,
    }  # fmt: skip
    assert a.task_completion_rate(BOB, days=DAYS, as_of=AS_OF) == {
        "tasks": 2, "completed": 0, "rate": 0.0,
    }  # fmt: skip


def test_chat_history_newest_first_limited_to_the_window(synced):
    _, a = synced
    c3 = {"message_in": "c3 in", "message_out": "c3 out", "timestamp": AS_OF}
    c2 = {"message_in": "c2 in", "message_out": "c2 out", "timestamp": ts("2026-11-07T09:00")}
    c1 = {"message_in": "c1 in", "message_out": "c1 out", "timestamp": ts("2026-11-06T09:00")}
    assert a.chat_history(ALICE, days=DAYS, as_of=AS_OF) == [c3, c2, c1]
    assert a.chat_history(ALICE, days=DAYS, limit=2, as_of=AS_OF) == [c3, c2]
    assert a.chat_history(ALICE, days=DAYS, limit=1, as_of=AS_OF - US) == [c2]


def test_emotional_trend_per_day_oldest_first(synced):
    _, a = synced
    assert a.emotional_trend(ALICE, days=DAYS, as_of=AS_OF) == {
        "days": [
            {"day": datetime.date(2026, 11, 3), "memories": 1, "avg_valence": 0.5},
            # m3's NULL valence counts as a memory, not in the average: (-0.25 + 0.75) / 2
            {"day": datetime.date(2026, 11, 5), "memories": 3, "avg_valence": 0.25},
            {"day": datetime.date(2026, 11, 8), "memories": 1, "avg_valence": -0.5},
            {"day": datetime.date(2026, 11, 10), "memories": 1, "avg_valence": 1.0},
        ],
        # (0.5 - 0.25 + 0.75 - 0.5 + 1.0) / 5
        "avg_valence": pytest.approx(0.3),
    }


def test_async_twins_give_the_same_answers(synced):
    dataset, a = synced
    b = analytics.AsyncAnalytics(PROJECT, dataset)

    async def ask() -> list[Any]:
        return await asyncio.gather(
            b.user_analytics(ALICE, days=DAYS, as_of=AS_OF),
            b.task_completion_rate(ALICE, days=DAYS, as_of=AS_OF),
            b.chat_history(ALICE, days=DAYS, limit=2, as_of=AS_OF),
            b.emotional_trend(ALICE, days=DAYS, as_of=AS_OF),
        )

    assert asyncio.run(ask()) == [
        a.user_analytics(ALICE, days=DAYS, as_of=AS_OF),
        a.task_completion_rate(ALICE, days=DAYS, as_of=AS_OF),
        a.chat_history(ALICE, days=DAYS, limit=2, as_of=AS_OF),
        a.emotional_trend(ALICE, days=DAYS, as_of=AS_OF),
    ]


def _view(client: bigquery.Client, dataset: str, name: str) -> dict[tuple, dict[str, Any]]:
    sql = f"SELECT * FROM `{client.project}.{dataset}.{name}`"
    rows = [dict(r) for r in client.query(sql, timeout=60).result(timeout=60)]
    return {(r.pop("user_id"), r.pop("day")): r for r in rows}


def _day_end(day: datetime.date) -> datetime.datetime:
    """With days=1 the window is this whole UTC day (plus the previous day's last
    microsecond, where nothing is seeded)."""
    return datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), UTC) - US


def test_views_return_the_same_figures_as_the_methods(synced, bq_client):
    dataset, a = synced
    activity = _view(bq_client, dataset, "daily_user_activity")
    tasks = _view(bq_client, dataset, "daily_task_completion")
    valence = _view(bq_client, dataset, "daily_emotional_valence")
    assert set(next(iter(activity.values()))) == {
        "interactions", "total_tokens", "errors", "avg_duration_ms",
    }  # fmt: skip
    assert set(next(iter(tasks.values()))) == {"tasks", "completed", "completion_rate"}
    assert set(next(iter(valence.values()))) == {"memories", "avg_valence"}
    assert activity[(ALICE, datetime.date(2026, 11, 5))] == {
        "interactions": 2, "total_tokens": 5, "errors": 1, "avg_duration_ms": 300.0,
    }  # fmt: skip

    assert len(activity) == 10  # alice: 11-02, 11-03 .. 11-10 but 11-04; bob: 11-06, 11-08
    for (user, day), row in activity.items():
        got = a.user_analytics(user, days=1, as_of=_day_end(day))
        assert row == {
            "interactions": got["total_interactions"],
            "total_tokens": got["total_tokens"],
            "errors": got["error_count"],
            "avg_duration_ms": got["avg_duration_ms"],
        }, (user, day)
    assert len(tasks) == 6
    for (user, day), row in tasks.items():
        got = a.task_completion_rate(user, days=1, as_of=_day_end(day))
        assert row == {
            "tasks": got["tasks"], "completed": got["completed"], "completion_rate": got["rate"],
        }, (user, day)  # fmt: skip
    # Eight whole days 11-03..11-10 in one call, o1 (EDGE - 1us) included this time.
    trend = a.emotional_trend(ALICE, days=8, as_of=_day_end(datetime.date(2026, 11, 10)))
    assert trend["days"] == [
        {"day": day, **row} for (user, day), row in sorted(valence.items()) if user == ALICE
    ]
    assert trend["days"][0] == {
        "day": datetime.date(2026, 11, 3), "memories": 2, "avg_valence": -0.25,
    }  # fmt: skip


def test_cli_prints_the_same_json(synced, capsys):
    dataset, a = synced
    common = ["--project", PROJECT, "--dataset", dataset, "--user_id", ALICE]
    common += ["--days", "7", "--as_of", "2026-11-10T12:00:00Z"]
    assert analytics.main(["emotional_trend", *common]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "days": [
            {"day": "2026-11-03", "memories": 1, "avg_valence": 0.5},
            {"day": "2026-11-05", "memories": 3, "avg_valence": 0.25},
            {"day": "2026-11-08", "memories": 1, "avg_valence": -0.5},
            {"day": "2026-11-10", "memories": 1, "avg_valence": 1.0},
        ],
        "avg_valence": pytest.approx(0.3),
    }
    assert analytics.main(["chat_history", *common, "--limit", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"message_in": "c3 in", "message_out": "c3 out", "timestamp": "2026-11-10T12:00:00Z"}
    ]
    result = subprocess.run(
        [sys.executable, "-m", "f2bq_analytics", "user_analytics", *common],
        cwd=REPO_ROOT, env=os.environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == a.user_analytics(ALICE, days=DAYS, as_of=AS_OF)


def test_unknown_user_on_the_cli_is_an_empty_result(synced, capsys):
    dataset, _ = synced
    argv = ["--project", PROJECT, "--dataset", dataset, "--user_id", "nobody"]
    assert analytics.main(["task_completion_rate", *argv]) == 0
    assert json.loads(capsys.readouterr().out) == {"tasks": 0, "completed": 0, "rate": None}
