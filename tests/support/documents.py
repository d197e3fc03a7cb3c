"""Valid test documents, one builder per collection: what the app writes, on a given day.

A test changes what it is about (``task("2026-11-01", completed=True)``); the corpus in
``tests/support/bad_documents.py`` breaks one field of the same documents per entry. Only the
standard library is imported, so unit tests stay fast.
"""

from __future__ import annotations

import datetime
from typing import Any


def at(day: str, hour: int = 12, minute: int = 0) -> datetime.datetime:
    return datetime.datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}:00+00:00")


#: Each collection's fields apart from the ones that carry the document's day.
BASES: dict[str, dict[str, Any]] = {
    "interactions": {
        "message_in": "What's on today?",
        "message_out": "Two tasks and a call.",
        "intent": "plan_day",
        "language": "en",
        "duration_ms": 420,
        "model_used": "gemini-2.5-flash",
        "tokens_in": 12,
        "tokens_out": 30,
        "error_code": None,
    },
    "tasks": {
        "description": "Water the plants",
        "time": "09:30",
        "duration_minutes": 15,
        "completed": False,
        "origin": "user_added",
    },
    "memories": {
        "description": "Nervous before the interview",
        "emotional_valence": -0.4,
        "trigger": "interview",
        "context": "Morning",
    },
    "projects": {
        "name": "Learn Spanish",
        "status": "active",
        "priority": 3,
        "due_date": "2027-01-01",
        "progress": 0.5,
        "task_ids": ["t1"],
    },
    "routines": {
        "name": "Morning",
        "frequency": "daily",
        "days_of_week": [1, 2, 3],
        "start_time": "07:30",
        "active": True,
        "items": [{"routine_item_id": "stretch", "duration_minutes": 10}],
    },
}
#: The timestamp fields that put a document on its day (``tasks.date`` is the day itself).
STAMPED = {
    "interactions": ("timestamp",),
    "tasks": ("created_at", "updated_at"),
    "memories": ("timestamp",),
    "projects": ("created_at", "updated_at"),
    "routines": ("created_at", "updated_at"),
}


def document(collection: str, day: str, hour: int = 12, **fields: Any) -> dict[str, Any]:
    """A valid ``collection`` document on ``day`` at ``hour`` (UTC), ``fields`` changed."""
    data = {**BASES[collection], **dict.fromkeys(STAMPED[collection], at(day, hour))}
    if collection == "tasks":
        data["date"] = day
    return {**data, **fields}


def interaction(day: str, hour: int = 12, **fields: Any) -> dict[str, Any]:
    return document("interactions", day, hour, **fields)


def task(day: str, hour: int = 12, **fields: Any) -> dict[str, Any]:
    return document("tasks", day, hour, **fields)


def memory(day: str, hour: int = 12, **fields: Any) -> dict[str, Any]:
    return document("memories", day, hour, **fields)


def project(day: str, hour: int = 12, **fields: Any) -> dict[str, Any]:
    return document("projects", day, hour, **fields)


def routine(day: str, hour: int = 12, **fields: Any) -> dict[str, Any]:
    return document("routines", day, hour, **fields)
