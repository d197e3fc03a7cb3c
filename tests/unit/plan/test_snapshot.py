"""Unit tests of the snapshot horizon (pipelines.plan.snapshot): no server."""

from __future__ import annotations

import datetime

import pytest

from pipelines.plan import snapshot
from pipelines.plan.snapshot import Horizon, SnapshotTooShort, check_fits, remedy, snapshot_time

UTC = datetime.UTC
START = datetime.datetime(2026, 11, 25, 3, 0, 41, 123456, tzinfo=UTC)
HOUR = datetime.timedelta(hours=1)
WEEK = datetime.timedelta(days=7)
NO_PITR = Horizon(HOUR)
PITR = Horizon(WEEK, pitr=True)


def _remedy(fraction: float) -> str:
    return remedy("p", "d", "(default)", None, fraction, "")


def test_pitr_floors_the_snapshot_to_the_whole_minute_which_it_keeps_for_the_retention() -> None:
    floored = snapshot_time(START, PITR)
    assert floored == datetime.datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    assert PITR.deadline(floored) == floored + WEEK
    # A microsecond snapshot is served for an hour only, PITR or not.
    assert PITR.deadline(START) == START + HOUR
    assert snapshot_time(START, NO_PITR) == START
    assert NO_PITR.deadline(START) == START + HOUR


def test_a_read_that_fits_in_the_hour_is_estimated() -> None:
    # 5 million documents at 2,000/s: 42 minutes, within 54 (the hour less 10 %).
    estimate = check_fits(5_000_000, 2000, START, START, NO_PITR, _remedy)
    assert estimate.seconds == 2500 and estimate.deadline == START + HOUR


def test_a_read_past_the_hour_is_refused_with_what_to_do() -> None:
    # 10 million documents at 2,000/s: 83 minutes.
    with pytest.raises(SnapshotTooShort) as caught:
        check_fits(10_000_000, 2000, START, START, NO_PITR, _remedy)
    message = str(caught.value)
    assert "\n" not in message
    assert "about 10,000,000 documents, about 1.4 h at --read_docs_per_second 2000" in message
    assert "nothing was read" in message and "--enable-pitr" in message
    # With PITR and a whole-minute snapshot the same read fits.
    floored = snapshot_time(START, PITR)
    check_fits(10_000_000, 2000, floored, START, PITR, _remedy)


def test_time_already_spent_counts_against_the_horizon() -> None:
    late = START + datetime.timedelta(minutes=50)
    check_fits(1_000_000, 2000, START, START + datetime.timedelta(minutes=5), NO_PITR, _remedy)
    with pytest.raises(SnapshotTooShort):
        check_fits(1_000_000, 2000, START, late, NO_PITR, _remedy)  # 8 min, 4 left
    # A --read_time older than the horizon is refused whatever it reads.
    with pytest.raises(SnapshotTooShort):
        check_fits(0, 2000, START - 2 * HOUR, START, NO_PITR, _remedy)


def test_a_dated_run_is_told_the_chunked_backfill_that_fits() -> None:
    days = (datetime.date(2026, 1, 1), datetime.date(2026, 10, 27))  # 300 days
    text = remedy("p", "d", "(default)", days, 0.25, "tasks,user_interactions")
    assert (
        "firestore-to-bq backfill --start_date 2026-01-01 --end_date 2026-10-27 "
        "--chunk_days 75 -- --project p --dataset d --collections tasks,user_interactions"
    ) in text
    assert "--chunk_days 1 " in remedy("p", "d", "(default)", days, 0.0, "")


def test_where_the_horizon_cannot_be_read_one_hour_is_assumed(monkeypatch, caplog) -> None:
    monkeypatch.delenv(snapshot.ASSUMED_HORIZON_ENV, raising=False)
    with caplog.at_level("INFO", logger="pipelines.plan.snapshot"):
        horizon = snapshot.database_horizon("p", "(default)", emulator=True)
    assert horizon == Horizon(HOUR, assumed="the Firestore emulator has no Admin API")
    assert "1.0 h (assumed: the Firestore emulator has no Admin API)" in caplog.text
    monkeypatch.setenv(snapshot.ASSUMED_HORIZON_ENV, "90")
    assert snapshot.database_horizon("p", "(default)", emulator=True).retention.seconds == 90


class _Admin:
    """The Admin API client's one call the horizon makes (a unit-test seam)."""

    answer: object = None

    def get_database(self, name: str, timeout: float):
        assert name == "projects/p/databases/(default)" and timeout > 0
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_the_horizon_is_read_from_the_admin_api(monkeypatch) -> None:
    from google.api_core import exceptions
    from google.cloud import firestore_admin_v1
    from google.cloud.firestore_admin_v1.types import Database

    monkeypatch.setattr(firestore_admin_v1, "FirestoreAdminClient", _Admin)
    enabled = Database.PointInTimeRecoveryEnablement
    _Admin.answer = Database(
        point_in_time_recovery_enablement=enabled.POINT_IN_TIME_RECOVERY_ENABLED,
        version_retention_period=WEEK,
    )
    assert snapshot.database_horizon("p", "(default)", emulator=False) == PITR
    _Admin.answer = Database(
        point_in_time_recovery_enablement=enabled.POINT_IN_TIME_RECOVERY_DISABLED,
        version_retention_period=HOUR,
    )
    assert snapshot.database_horizon("p", "(default)", emulator=False) == NO_PITR
    _Admin.answer = exceptions.PermissionDenied("no datastore.databases.get")
    horizon = snapshot.database_horizon("p", "(default)", emulator=False)
    assert horizon.retention == HOUR and not horizon.pitr
    assert horizon.assumed == "databases.get failed: PermissionDenied"


# --------------------------------------------------------------------------------------
# located_at: previous versions are read during the run, so their snapshot must be served
# --------------------------------------------------------------------------------------

NOW = datetime.datetime(2026, 11, 25, 3, 0, tzinfo=datetime.UTC)


def test_a_previous_snapshot_within_the_hour_is_served_for_the_read() -> None:
    fifty_minutes = NOW - datetime.timedelta(minutes=50)
    assert snapshot.located_in_time(fifty_minutes, Horizon(), 60, NOW)
    assert not snapshot.located_in_time(fifty_minutes, Horizon(), 600, NOW)


def test_last_nights_snapshot_is_served_only_with_pitr_and_only_at_a_whole_minute() -> None:
    last_night = NOW - datetime.timedelta(days=1)
    week = Horizon(datetime.timedelta(days=7), pitr=True)
    assert not snapshot.located_in_time(last_night, Horizon(), 60, NOW)
    assert snapshot.located_in_time(last_night, week, 60, NOW)
    odd = last_night + datetime.timedelta(seconds=7)  # taken before PITR was on
    assert not snapshot.located_in_time(odd, week, 60, NOW)


def test_past_the_horizon_a_table_is_unlocated_and_its_delete_scans_it(caplog) -> None:
    import dataclasses

    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.cli.options import resolve
    from pipelines.plan.windows import RunPlan, TableWindow

    day = NOW.date()
    last_night = NOW - datetime.timedelta(days=1)
    plan = RunPlan(
        (
            TableWindow("tasks", "incremental", day, day, located_at=last_night),
            TableWindow("user_interactions", "incremental", day, day, located_at=NOW),
        ),
        day,
    )
    config = resolve(PipelineOptions(["--project", "p", "--dataset", "d"]), now=NOW)
    config = dataclasses.replace(config, plan=plan)
    out = snapshot.unlocated_past_horizon(config, Horizon(), 10, NOW)
    assert out.plan.window("tasks").located_at is None
    assert out.plan.window("user_interactions").located_at == NOW
    assert "tasks: previous snapshot" in caplog.text and "scans the whole table" in caplog.text
