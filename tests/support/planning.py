"""The fixed calendar the planner's unit tests share: a today, a watermark, the specs."""

from __future__ import annotations

import datetime

from pipelines.convert.table_spec import load_specs
from pipelines.plan.windows import TableState

UTC = datetime.UTC
TODAY = datetime.date(2026, 11, 25)
YESTERDAY = TODAY - datetime.timedelta(days=1)
SPECS = load_specs()
TASKS, INTERACTIONS = SPECS["tasks"], SPECS["user_interactions"]
WATERMARK = datetime.datetime(2026, 11, 24, 3, tzinfo=UTC)


def days_ago(n: int) -> datetime.date:
    return TODAY - datetime.timedelta(days=n)


def synced(table: str, newest: datetime.date | None) -> TableState:
    """A table last replaced through ``newest`` by a run that left ``WATERMARK``."""
    return TableState(table, newest_day=newest, watermark=WATERMARK)
