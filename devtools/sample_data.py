"""Realistic sample data for the demo, the tests and the benchmark.

Deterministic for a given seed, so runs can be compared. Writes per-user
subcollections ``users/{user_id}/{interactions,tasks,memories,projects,routines}``
with batched writes (500 per commit, Firestore's limit).
"""

from __future__ import annotations

import argparse
import datetime
import random
import sys
from collections.abc import Iterator
from typing import Any

UTC = datetime.UTC
INTENTS = ["create_task", "small_talk", "plan_day", "reflect", "reminder", "weather"]
LANGUAGES = ["en", "fr", "de", "es"]
MODELS = ["gemini-2.5-flash", "gemini-2.5-pro"]
TRIGGERS = ["deadline", "family call", "workout", "meeting", "good sleep"]
ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def auto_id(rng: random.Random) -> str:
    """A Firestore-style 20-character id."""
    return "".join(rng.choice(ID_CHARS) for _ in range(20))


def documents(
    users: int, days: int, end: datetime.date, per_user_per_day: int = 3, seed: int = 7
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path, data)`` pairs spread over ``users`` and the ``days`` ending at ``end``."""
    rng = random.Random(seed)
    start = end - datetime.timedelta(days=days - 1)
    for _ in range(users):
        uid = auto_id(rng)
        routine_items = [f"item-{auto_id(rng)[:8]}" for _ in range(3)]
        for d in range(days):
            day = start + datetime.timedelta(days=d)
            for _ in range(per_user_per_day):
                at = datetime.datetime.combine(day, datetime.time(), tzinfo=UTC)
                at += datetime.timedelta(seconds=rng.randrange(86_400))
                kind = rng.random()
                if kind < 0.45:
                    intent = rng.choice(INTENTS)
                    yield (
                        f"users/{uid}/interactions/{auto_id(rng)}",
                        {
                            "timestamp": at,
                            "message_in": f"Can you help me with {intent.replace('_', ' ')}?",
                            "message_out": "Sure, here is what I suggest.",
                            "intent": intent,
                            "language": rng.choice(LANGUAGES),
                            "duration_ms": rng.randrange(150, 4000),
                            "model_used": rng.choice(MODELS),
                            "tokens_in": rng.randrange(10, 600),
                            "tokens_out": rng.randrange(20, 900),
                            "error_code": None if rng.random() > 0.03 else "MODEL_TIMEOUT",
                        },
                    )
                elif kind < 0.75:
                    origin = rng.choice(["user_added", "routine", "google_calendar"])
                    yield (
                        f"users/{uid}/tasks/{auto_id(rng)}",
                        {
                            "description": rng.choice(["Call mum", "Gym", "Pay rent", "Read"]),
                            "date": (day + datetime.timedelta(days=rng.randrange(3))).isoformat(),
                            "time": f"{rng.randrange(7, 22):02d}:{rng.choice([0, 15, 30, 45]):02d}",
                            "duration_minutes": rng.choice([15, 30, 45, 60]),
                            "completed": rng.random() < 0.6,
                            "origin": origin,
                            "routine_item_id": rng.choice(routine_items)
                            if origin == "routine"
                            else None,
                            "google_calendar_event_id": (
                                auto_id(rng) if origin == "google_calendar" else None
                            ),
                            "created_at": at,
                            "updated_at": at,
                        },
                    )
                elif kind < 0.9:
                    yield (
                        f"users/{uid}/memories/{auto_id(rng)}",
                        {
                            "description": "Felt proud after finishing the report.",
                            "emotional_valence": round(rng.uniform(-1, 1), 3),
                            "trigger": rng.choice(TRIGGERS),
                            "context": "At work, late afternoon.",
                            "timestamp": at,
                        },
                    )
                elif kind < 0.96:
                    yield (
                        f"users/{uid}/projects/{auto_id(rng)}",
                        {
                            "name": rng.choice(["Move flat", "Learn Spanish", "Marathon"]),
                            "description": "A longer-running goal.",
                            "status": rng.choice(["active", "paused", "completed"]),
                            "priority": rng.randrange(1, 6),
                            "due_date": (day + datetime.timedelta(days=30)).isoformat(),
                            "progress": round(rng.random(), 2),
                            "task_ids": [auto_id(rng) for _ in range(rng.randrange(4))],
                            "created_at": at,
                            "updated_at": at,
                        },
                    )
                else:
                    yield (
                        f"users/{uid}/routines/{auto_id(rng)}",
                        {
                            "name": rng.choice(["Morning", "Evening wind-down"]),
                            "frequency": rng.choice(["daily", "weekdays"]),
                            "days_of_week": [1, 2, 3, 4, 5],
                            "start_time": "07:30",
                            "active": True,
                            "items": [
                                {
                                    "routine_item_id": i,
                                    "description": "Stretch",
                                    "duration_minutes": 10,
                                }
                                for i in routine_items
                            ],
                            "created_at": at,
                            "updated_at": at,
                        },
                    )


def broken_documents(day: datetime.date) -> list[tuple[str, dict[str, Any]]]:
    """Documents with an unparsable date and a missing partition value."""
    at = datetime.datetime.combine(day, datetime.time(9), tzinfo=UTC)
    return [
        (
            "users/demo-broken/tasks/unparsable-date",
            {"description": "x", "date": "tomorrow", "created_at": at},
        ),
        ("users/demo-broken/interactions/no-timestamp", {"message_in": "hi"}),
    ]


def write(db, pairs) -> int:
    """Write ``(path, data)`` pairs with batched commits; returns how many."""
    batch, pending, total = db.batch(), 0, 0
    for path, data in pairs:
        batch.set(db.document(path), data)
        pending += 1
        if pending == 500:
            batch.commit()
            total += pending
            batch, pending = db.batch(), 0
    if pending:
        batch.commit()
        total += pending
    return total


def main(argv: list[str] | None = None) -> int:
    from google.cloud import firestore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--end_date", default=None, help="Last day (default: yesterday, UTC).")
    parser.add_argument("--per_user_per_day", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    end = (
        datetime.date.fromisoformat(args.end_date)
        if args.end_date
        else datetime.datetime.now(UTC).date() - datetime.timedelta(days=1)
    )
    db = firestore.Client(project=args.project)
    n = write(db, documents(args.users, args.days, end, args.per_user_per_day, args.seed))
    print(f"seeded {n} documents", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
