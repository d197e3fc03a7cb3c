"""The app, as the sequence tests see it: writes documents as it would.

``updated_at`` comes from the real clock (Firestore's own times do too); the day a
document belongs to comes from the simulated "today" a test passes in.
"""

from __future__ import annotations

import datetime

from tests.support.documents import interaction, task

UTC = datetime.UTC


def _at(today: datetime.date, offset: int, hour: int = 10) -> datetime.datetime:
    day = today + datetime.timedelta(days=offset)
    return datetime.datetime.combine(day, datetime.time(hour), UTC)


class World:
    """The app: writes documents as it would, with ``updated_at`` from its clock."""

    def __init__(self, db) -> None:
        self.db = db
        self.paths: list[str] = []
        self.serial = 0

    def _new(self, collection: str, user: int) -> str:
        self.serial += 1
        path = f"users/u{user}/{collection}/d{self.serial}"
        self.paths.append(path)
        return path

    def apply(self, op: tuple[str, int, int], today: datetime.date) -> None:
        kind, which, offset = op
        now = datetime.datetime.now(UTC)
        when = _at(today, offset, hour=self.serial % 24)
        if kind == "create_task":
            path = self._new("tasks", which)
            self.db.document(path).set(
                task(when.date().isoformat(), created_at=when, updated_at=now)
            )
        elif kind == "malformed_task":
            path = self._new("tasks", which)
            data = task(when.date().isoformat(), created_at=when, updated_at=now)
            data["duration_minutes"] = "soon"
            self.db.document(path).set(data)
        elif kind == "create_interaction":
            path = self._new("interactions", which)
            self.db.document(path).set(interaction(when.date().isoformat(), timestamp=when))
        else:
            tasks = [p for p in self.paths if "/tasks/" in p] if kind != "delete" else self.paths
            if not tasks:
                return
            path = tasks[which % len(tasks)]
            if kind == "delete":
                self.db.document(path).delete()
                self.paths.remove(path)
            elif kind == "edit_task":
                self.db.document(path).update({"completed": True, "updated_at": now})
            elif kind == "fix_task":  # a malformed task made valid again
                self.db.document(path).update({"duration_minutes": 15, "updated_at": now})
            else:  # move_task
                self.db.document(path).update({"created_at": when, "updated_at": now})
