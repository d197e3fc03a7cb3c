"""Unit tests of the shrink guard and of the per-table verdict recorded in _sync_runs."""

from __future__ import annotations

import datetime

from pipelines.plan.day_plan import TablePlan, Tally, plan_incremental_table
from pipelines.plan.windows import TableWindow
from pipelines.state.verdict import RunStatus, TableStatus, TableVerdict, worst
from pipelines.transforms.record_run import table_verdict
from pipelines.transforms.write_bigquery import shrink_refusal

D1, D2, D3 = (datetime.date(2026, 11, d) for d in (22, 23, 24))
WINDOW = TableWindow("tasks", "full", D1, D2)


def _plan(read: int, rows: dict, **extra) -> TablePlan:
    return TablePlan(
        table="tasks", days=tuple(rows), late_days=(), read=read, rows_per_day=rows,
        dead_lettered=0, outside_window=0, **extra,
    )  # fmt: skip


def test_an_empty_read_over_days_with_rows_is_refused() -> None:
    message = shrink_refusal(_plan(0, {D1: 0, D2: 0}), {D1: 3, D2: 0})
    assert message == (
        "the read returned no documents but 2026-11-22 hold 3 row(s); "
        "check --project, --firestore_database and --collections, or re-run with "
        "--allow_shrink to empty them"
    )


def test_a_day_losing_more_than_half_of_100_rows_is_refused() -> None:
    message = shrink_refusal(_plan(60, {D1: 49, D2: 11}), {D1: 100, D2: 12})
    assert message is not None and "2026-11-22: 100 -> 49" in message
    assert "2026-11-23" not in message  # 12 rows is under the threshold
    assert shrink_refusal(_plan(60, {D1: 50}), {D1: 100}) is None
    assert shrink_refusal(_plan(5, {D1: 0}), {D1: 99}) is None


def test_an_empty_read_over_empty_days_is_fine() -> None:
    assert shrink_refusal(_plan(0, {D1: 0}), {D1: 0}) is None


def test_verdict_succeeds_only_when_counts_reconcile() -> None:
    plan = _plan(3, {D1: 2, D2: 1})
    ok = table_verdict(plan, {"replaced": True, "written": {D1: 2, D2: 1}}, WINDOW)
    assert ok.status is TableStatus.SUCCEEDED and ok.replaced_days == (D1, D2)
    assert ok.fresh is True and not ok.advances_watermark and not ok.intraday
    short = table_verdict(plan, {"replaced": True, "written": {D1: 2, D2: 0}}, WINDOW)
    assert short.status is TableStatus.NOT_RECONCILED and "table holds 2" in (short.error or "")
    assert short.fresh is False  # only a success is fresh as of its snapshot
    refused = table_verdict(plan, {"replaced": False, "refused": True, "error": "no"}, WINDOW)
    assert refused.status is TableStatus.REFUSED and refused.replaced_days == ()
    failed = table_verdict(plan, {"replaced": False, "error": "boom"}, WINDOW)
    assert failed.status is TableStatus.FAILED


def test_run_status_is_the_worst_table() -> None:
    def tables(*statuses: TableStatus) -> list[TableVerdict]:
        return [TableVerdict(f"t{i}", status) for i, status in enumerate(statuses)]

    ok, off = TableStatus.SUCCEEDED, TableStatus.NOT_RECONCILED
    assert worst(tables(ok), True) is RunStatus.SUCCEEDED
    assert worst(tables(ok, off), True) is RunStatus.NOT_RECONCILED
    assert worst(tables(TableStatus.REFUSED, off), True) is RunStatus.FAILED
    assert worst(tables(ok), False) is RunStatus.FAILED


def test_incremental_plan_accounts_for_every_document() -> None:
    tally = Tally(read=6)
    tally.rows.update({D3: 2, D1: 1, D2: 2})
    tally.changed.update({D1: 1, D2: 1})  # two late edits, on days not replaced
    tally.rows[datetime.date(2026, 11, 26)] += 1  # changed onto a future day
    tally.changed[datetime.date(2026, 11, 26)] += 1
    tally.bad[None] += 1
    plan = plan_incremental_table("tasks", tally, [D3], [], upsert_through=D3)
    assert plan.rows_per_day == {D3: 2}
    assert plan.late_rows == 2
    assert plan.outside_window == 2  # D2's unchanged row, and the one changed onto a future day
    assert plan.dead_lettered == 1


def test_audit_tables_description_names_every_key_a_verdict_writes() -> None:
    """``_sync_runs.tables`` is documented in its column description (and so in
    docs/tables.md): the keys listed there are the keys RecordRun writes."""
    import re

    from pipelines.state import run_log

    [column] = [f for f in run_log.SCHEMA if f["name"] == "tables"]
    listed = re.sub(r"\([^)]*\)", "", column["description"]).removeprefix("Per table: ")
    keys = {k.strip() for k in listed.rstrip(".").split(",")}
    verdict = table_verdict(_plan(1, {D1: 1}), {"replaced": True, "written": {D1: 1}}, WINDOW)
    assert keys == set(verdict.to_json())
