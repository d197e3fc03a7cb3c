"""The unit that flows from the Firestore read into conversion."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FirestoreDocument:
    """A document as read at the run's snapshot.

    ``path`` is relative to the database root (``users/u1/tasks/t1``); ``data``
    holds the client library's Python values (``DatetimeWithNanoseconds``,
    ``GeoPoint``, …) as read, so conversion sees what Firestore stored. The one
    change: a reference is rebuilt as a ``BaseDocumentReference`` with the same
    path but no client (see ``firestore._detached``), since the client cannot be
    pickled between stages.
    """

    table: str
    path: str
    data: dict[str, Any]
    update_time: datetime.datetime | None = None
    #: When Firestore created it: a document created after the snapshot the
    #: table's rows hold has no old row to look for.
    create_time: datetime.datetime | None = None
    #: Returned by an incremental run's change query (changed since the watermark):
    #: its row is upserted wherever its day is, and its old row removed.
    changed: bool = False
    #: Returned again by a range read after the change query returned it: counted
    #: as a Firestore read, converted once (``data`` is left empty).
    duplicate: bool = False

    @property
    def segments(self) -> list[str]:
        return self.path.split("/")

    @property
    def document_id(self) -> str:
        return self.segments[-1]
