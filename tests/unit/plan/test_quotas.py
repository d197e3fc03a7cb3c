"""Unit tests of the BigQuery limits a run's plan must stay inside (pipelines.plan.quotas)."""

from __future__ import annotations

import datetime

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.cli.options import resolve
from pipelines.convert.table_spec import load_specs
from pipelines.firestore_to_bq import plan_run
from pipelines.plan import quotas
from pipelines.plan.windows import TableState, plan_windows

UTC = datetime.UTC
TODAY = datetime.date(2026, 11, 25)
SPECS = load_specs()
TASKS = SPECS["tasks"]
TARGET = "--project p --dataset d "


def _dated(start: str, end: str):
    dates = (datetime.date.fromisoformat(start), datetime.date.fromisoformat(end))
    return plan_windows([TASKS], {}, today=TODAY, dates=dates)


def _check(plan, **kw) -> None:
    kw.setdefault("load_batch_rows", 500_000)
    kw.setdefault("num_splits", 8)
    quotas.check(plan, target=TARGET, **kw)


def test_the_limits_are_bigquerys_numbers() -> None:
    assert quotas.PARTITIONS_PER_JOB == 4_000
    assert quotas.PARTITIONS_PER_TRANSACTION == 100_000
    assert quotas.PARTITIONS_PER_TABLE == 10_000
    assert quotas.TABLE_MODIFICATIONS_PER_DAY == 1_500
    assert (quotas.MUTATING_DML_RUNNING_PER_TABLE, quotas.MUTATING_DML_QUEUED_PER_TABLE) == (2, 20)


def test_a_dated_run_of_4000_days_in_one_commit_is_within_the_job_limit() -> None:
    plan = _dated("2015-12-13", "2026-11-24")  # 4,000 days
    (need,) = quotas.needs(plan, load_batch_rows=500_000, num_splits=8)
    assert need.days == 4_000
    _check(plan)


def test_a_dated_run_of_more_than_4000_days_is_refused_with_the_chunked_backfill() -> None:
    plan = _dated("2015-12-12", "2026-11-24")  # 4,001 days
    with pytest.raises(quotas.OverQuota) as info:
        _check(plan)
    message = str(info.value)
    assert "\n" not in message
    assert "tasks: replacing 4,001 days in one commit exceeds BigQuery's 4,000" in message
    assert message.endswith(
        "firestore-to-bq backfill --start_date 2015-12-12 --end_date 2026-11-24 "
        "--chunk_days 365 -- --project p --dataset d --collections tasks"
    )


def test_the_look_back_counts_against_the_job_limit() -> None:
    plan = _dated("2017-01-01", "2026-11-24")  # 3,615 days
    _check(plan, lookback_days=385)
    with pytest.raises(quotas.OverQuota, match="replacing 4,001 days.*--lookback_days 386$"):
        _check(plan, lookback_days=386)


def test_drift_checked_days_count_against_the_job_limit() -> None:
    mark = datetime.datetime(2026, 11, 24, tzinfo=UTC)
    state = {"tasks": TableState("tasks", TODAY - datetime.timedelta(days=2), watermark=mark)}
    ok = plan_windows([TASKS], state, today=TODAY, verify_days=4_000)  # yesterday among them
    _check(ok)
    over = plan_windows([TASKS], state, today=TODAY, verify_days=4_002)
    with pytest.raises(quotas.OverQuota, match="up to 4,002 days .*by at least 2$"):
        _check(over)


def test_a_commit_transaction_touches_its_days_and_one_commit_log_partition() -> None:
    (need,) = quotas.needs(_dated("2026-11-01", "2026-11-24"), load_batch_rows=1, num_splits=1)
    assert need.transaction_partitions == 25 <= quotas.PARTITIONS_PER_TRANSACTION


def test_a_whole_history_rebuild_has_no_day_count_before_reading() -> None:
    plan = plan_windows([TASKS], {}, today=TODAY)  # never synced: full, every day
    (need,) = quotas.needs(plan, load_batch_rows=500_000, num_splits=8)
    assert need.days is None and need.transaction_partitions is None
    _check(plan)


def test_load_jobs_into_staging_stay_under_1500_per_table_per_day() -> None:
    plan = plan_windows([TASKS], {}, today=TODAY)
    rows = {"tasks": 100_000_000}
    (need,) = quotas.needs(plan, load_batch_rows=500_000, num_splits=8, expected_rows=rows)
    assert need.load_jobs == 208
    _check(plan, expected_rows=rows)
    with pytest.raises(quotas.OverQuota) as info:
        _check(plan, expected_rows=rows, load_batch_rows=50_000)
    assert str(info.value) == (
        "tasks: about 2,008 load jobs into its staging table (~100,000,000 rows at "
        "--load_batch_rows 50,000) exceed BigQuery's 1,500 table modifications per table "
        "per day; raise --load_batch_rows to at least 67,025"
    )


def test_one_run_sends_one_mutating_statement_per_table() -> None:
    """With the table lease, one run at a time: far inside 2 running and 20 queued."""
    plan = plan_windows(SPECS.values(), {}, today=TODAY)
    found = quotas.needs(plan, load_batch_rows=500_000, num_splits=8)
    assert {n.table for n in found} == set(SPECS)
    assert all(n.mutating_dml == 1 for n in found)


def test_plan_run_refuses_an_over_quota_plan_before_reading() -> None:
    now = datetime.datetime(2026, 11, 25, 3, tzinfo=UTC)
    options = PipelineOptions(
        ["--project", "p", "--start_date", "2017-01-01", "--end_date", "2026-11-24",
         "--lookback_days", "400", "--collections", "tasks"]
    )  # fmt: skip
    config = resolve(options, dry_run=True, now=now)
    with pytest.raises(quotas.OverQuota, match="exceeds BigQuery's 4,000 partitions modified by"):
        plan_run(config, now)
