"""The run's stamp on everything it writes: its id, its snapshot and its start.

Every row, dead letter, commit and verdict carries these three; the steps that
write them take this small value rather than the run's configuration.
"""

from __future__ import annotations

import dataclasses
import datetime

from pipelines.convert.conversion import format_timestamp


@dataclasses.dataclass(frozen=True)
class RunStamp:
    run_id: str
    #: The Firestore snapshot the run reads (``_read_time`` of its rows).
    read_time: datetime.datetime
    started_at: datetime.datetime

    @property
    def read_time_text(self) -> str:
        return format_timestamp(self.read_time)

    @property
    def started_text(self) -> str:
        return format_timestamp(self.started_at)
