"""The verdict model (``pipelines.state.verdict``): today's entries written key for key,
every older ``_sync_runs`` entry shape decoded on read, unknown statuses refused."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from pipelines.state import run_log
from pipelines.state.verdict import (
    VERSION,
    Counts,
    RunStatus,
    TableStatus,
    TableVerdict,
    UnknownVerdict,
    entries,
    is_verdict,
    run_status,
)

D1, D2, D3, D4 = (datetime.date(2026, 11, d) for d in (21, 22, 23, 24))
UTC = datetime.UTC

#: An entry as RecordRun writes it today (key order included).
VERDICT: dict[str, Any] = {
    "table": "tasks", "mode": "incremental", "status": "succeeded", "replaced": True,
    "replaced_days": ["2026-11-24"], "documents_read": 5, "documents_returned": 7,
    "count_queries": 4, "previous_reads": 2, "delete_days": ["2026-11-21", "2026-11-24"],
    "verified_days": ["2026-11-22", "2026-11-23"], "lookup_days": ["2026-11-21"],
    "rows_written": 4, "late_edits": 1, "dead_lettered": 1,
    "dead_letter_reasons": [{"field": "created_at", "reason": "missing partition value",
                             "count": 1}],
    "outside_window": 0, "days_replaced": 1, "late_edit_days": ["2026-11-21"],
    "drift_days": ["2026-11-22"], "rows_per_day": {"2026-11-24": 3},
    "rows_before": {"2026-11-24": 2}, "error": None, "advances_watermark": True,
    "intraday": False, "fresh": True,
}  # fmt: skip
#: An entry of a run that ended before its verdict, from ``_sync_commits`` (no counts).
STOPPED: dict[str, Any] = {
    "table": "tasks", "mode": "incremental", "status": "committed", "replaced": True,
    "advances_watermark": True, "intraday": False, "fresh": False,
    "replaced_days": ["2026-11-24"], "error": None,
}  # fmt: skip
#: The same before stopped runs' entries said ``fresh`` (2026-12-07).
STOPPED_BEFORE_FRESH = {key: value for key, value in STOPPED.items() if key != "fresh"}


def _pairs(entry: dict[str, Any]) -> list[tuple[str, Any]]:
    return list(entry.items())  # compares keys in order, not only as a set


# --------------------------------------------------------------------------------------
# Today's shapes: written key for key, and read back whole
# --------------------------------------------------------------------------------------


def test_a_verdict_reads_typed_and_writes_back_key_for_key() -> None:
    entry = TableVerdict.from_json(VERDICT)
    assert entry.status is TableStatus.SUCCEEDED and entry.mode == "incremental"
    assert entry.replaced_days == (D4,) and entry.fresh is True and entry.makes_fresh
    counts = entry.counts
    assert counts is not None and counts.delete_days == (D1, D4)
    assert counts.rows_per_day == {D4: 3} and counts.rows_before == {D4: 2}
    assert counts.dead_letter_reasons == (("created_at", "missing partition value", 1),)
    assert _pairs(entry.to_json()) == _pairs(VERDICT)
    assert json.dumps(entry.to_json()) == json.dumps(VERDICT)  # the stored text, too
    assert TableVerdict.from_json(entry.to_json()) == entry


def test_a_stopped_runs_entry_keeps_its_shorter_shape() -> None:
    entry = TableVerdict.from_json(STOPPED_BEFORE_FRESH)
    assert entry.status is TableStatus.COMMITTED and entry.status.replaced_ok
    assert entry.counts is None and entry.fresh is None
    assert _pairs(entry.to_json()) == _pairs(STOPPED_BEFORE_FRESH)
    assert _pairs(TableVerdict.from_json(STOPPED).to_json()) == _pairs(STOPPED)
    assert entry.counted == Counts()  # a report's figures: nothing counted


def test_committed_entries_and_abandoned_rows_write_that_shape() -> None:
    landed = {"tasks": {"mode": "incremental", "newest_day": D4, "advances_watermark": True}}
    (stopped,) = run_log.committed_entries(["tasks"], landed)
    assert _pairs(stopped.to_json()) == _pairs(STOPPED)
    row = run_log.abandoned_row("dead", ["tasks"], landed, None, datetime.datetime.now(UTC), "x")
    assert row["status"] == "interrupted" and row["tables"] == [STOPPED]


def test_a_null_delete_and_empty_lists_round_trip() -> None:
    entry = TableVerdict("t", TableStatus.REFUSED, mode="full", fresh=False, counts=Counts())
    stored = entry.to_json()
    assert stored["delete_days"] is None and stored["lookup_days"] == []
    assert TableVerdict.from_json(json.loads(json.dumps(stored))) == entry


# --------------------------------------------------------------------------------------
# Older shapes, decoded on read (the rows are never rewritten)
# --------------------------------------------------------------------------------------

#: The first verdicts (2026-11-25): no status, mode or replaced_days, fewer counts.
FIRST: dict[str, Any] = {
    "table": "tasks", "documents_read": 3, "rows_written": 3, "dead_lettered": 0,
    "outside_window": 0, "days_replaced": 2, "replaced": True,
    "rows_per_day": {"2026-11-22": 1, "2026-11-23": 2}, "error": None,
}  # fmt: skip


def test_the_first_verdicts_take_their_status_from_the_run() -> None:
    ok = TableVerdict.from_json(FIRST, RunStatus.SUCCEEDED)
    assert ok.status is TableStatus.SUCCEEDED and ok.mode is None
    assert TableVerdict.from_json(FIRST, RunStatus.FAILED).status is TableStatus.FAILED
    not_replaced = {**FIRST, "replaced": False, "rows_per_day": {}}
    assert TableVerdict.from_json(not_replaced, RunStatus.SUCCEEDED).status is TableStatus.FAILED
    assert TableVerdict.from_json(FIRST).status is TableStatus.FAILED  # no run status known


def test_the_first_verdicts_replaced_the_days_they_counted() -> None:
    assert TableVerdict.from_json(FIRST, RunStatus.SUCCEEDED).replaced_days == (D2, D3)
    failed = TableVerdict.from_json({**FIRST, "replaced": False}, RunStatus.FAILED)
    assert failed.replaced_days == ()


def test_the_first_verdicts_missing_counts_read_as_zero_or_empty() -> None:
    counts = TableVerdict.from_json({**FIRST, "late_edit_days": ["2026-11-21"]}).counts
    assert counts is not None and counts.rows_written == 3 and counts.late_edit_days == (D1,)
    assert counts.documents_returned == counts.count_queries == counts.previous_reads == 0
    assert counts.delete_days is None and counts.verified_days == counts.lookup_days == ()
    assert counts.dead_letter_reasons == () and counts.rows_before == {}


def test_entries_of_a_first_verdict_row_use_the_rows_status() -> None:
    row = {"run_id": "a", "status": "succeeded", "tables": [FIRST]}
    (entry,) = entries(row)
    assert entry.status is TableStatus.SUCCEEDED


#: Per-table statuses (incremental mode), before intraday, previous_reads,
#: delete_days, fresh, verified_days, lookup_days and dead_letter_reasons.
PER_TABLE: dict[str, Any] = {
    "table": "tasks", "mode": "incremental", "status": "succeeded", "replaced": True,
    "replaced_days": ["2026-11-24"], "documents_read": 2, "documents_returned": 2,
    "count_queries": 3, "rows_written": 2, "late_edits": 0, "dead_lettered": 0,
    "outside_window": 0, "days_replaced": 1, "late_edit_days": [], "drift_days": [],
    "rows_per_day": {"2026-11-24": 2}, "rows_before": {}, "error": None,
    "advances_watermark": False,
}  # fmt: skip


def test_keys_added_later_read_as_what_their_absence_meant() -> None:
    entry = TableVerdict.from_json(PER_TABLE)
    assert entry.intraday is False and entry.fresh is None
    counts = entry.counts
    assert counts is not None and counts.previous_reads == 0
    assert counts.delete_days is None  # the delete of old rows scanned the table
    assert counts.verified_days == counts.lookup_days == () and counts.dead_letter_reasons == ()


@pytest.mark.parametrize(
    ("extra", "fresh"),
    [
        ({}, True),  # incremental: fresh by the rule of its time
        ({"mode": "full"}, False),  # a full run that did not advance the watermark
        ({"mode": "full", "advances_watermark": True}, True),
        ({"mode": "full", "intraday": True}, True),
    ],
)
def test_verdicts_before_fresh_say_it_by_the_old_rule_and_are_never_dated(
    extra: dict[str, Any], fresh: bool
) -> None:
    entry = TableVerdict.from_json({**PER_TABLE, **extra})
    assert entry.makes_fresh is fresh
    assert not entry.dated  # they give no dated window: no backfill coverage


def test_a_recorded_fresh_wins_and_false_means_dated_unless_intraday() -> None:
    dated = TableVerdict.from_json({**PER_TABLE, "fresh": False})
    assert not dated.makes_fresh and dated.dated
    intraday = TableVerdict.from_json({**PER_TABLE, "fresh": False, "intraday": True})
    assert not intraday.dated
    assert TableVerdict.from_json({**PER_TABLE, "mode": "full", "fresh": True}).makes_fresh


def test_verified_days_without_lookup_days_looked_up_on_the_verified_days() -> None:
    entry = TableVerdict.from_json({**PER_TABLE, "verified_days": ["2026-11-22", "2026-11-23"]})
    assert entry.counts is not None and entry.counts.lookup_days == (D2, D3)


def test_a_stopped_runs_entry_before_intraday_and_its_old_freshness() -> None:
    old = {key: value for key, value in STOPPED_BEFORE_FRESH.items() if key != "intraday"}
    entry = TableVerdict.from_json(old)
    assert entry.intraday is False and entry.counts is None
    assert entry.makes_fresh  # it advanced the watermark
    stalled = TableVerdict.from_json({**old, "mode": "full", "advances_watermark": False})
    assert not stalled.makes_fresh and not stalled.dated


def test_a_planned_but_unknown_mode_is_none() -> None:
    entry = TableVerdict.from_json({**STOPPED, "mode": None, "status": "failed"})
    assert entry.mode is None and entry.status is TableStatus.FAILED


def test_a_day_stored_as_a_longer_iso_text_is_its_date() -> None:
    entry = TableVerdict.from_json({**STOPPED, "replaced_days": ["2026-11-24T00:00:00"]})
    assert entry.replaced_days == (D4,)


def test_the_tables_cell_parsed_as_text_null_or_with_stray_items() -> None:
    assert [e.table for e in entries({"status": "failed", "tables": json.dumps([STOPPED])})] == [
        "tasks"
    ]
    assert entries({"status": "failed", "tables": None}) == []
    assert entries({"status": "failed", "tables": ""}) == []
    assert [e.table for e in entries({"status": "failed", "tables": [1, "x", STOPPED]})] == [
        "tasks"
    ]


def test_the_fold_reads_a_first_verdict_as_a_success_of_the_days_it_counted() -> None:
    started = datetime.datetime(2026, 11, 25, 2, tzinfo=UTC)
    routines = {**FIRST, "table": "routines", "replaced": False, "error": "e"}
    row = {"run_id": "a", "status": "succeeded", "error": None, "started_at": started,
           "read_time": started, "window_start": D2, "window_end": D3,
           "tables": [FIRST, routines]}  # fmt: skip
    states = run_log.fold_states([row], {}, ["tasks", "routines"])
    assert states["tasks"].last_success_run_id == "a" and states["tasks"].newest_day == D3
    assert states["tasks"].last_rows == 3 and states["tasks"].fresh_read_time is None
    assert states["tasks"].dated_windows == ()
    assert states["routines"].last_failure_error == "e"


# --------------------------------------------------------------------------------------
# Statuses and versions it does not know: refused, with a clear message
# --------------------------------------------------------------------------------------


def test_an_unknown_entry_status_is_refused_naming_the_table_and_the_known_ones() -> None:
    with pytest.raises(UnknownVerdict) as refused:
        TableVerdict.from_json({**STOPPED, "status": "partially_done"})
    message = str(refused.value)
    assert "table 'tasks'" in message and "'partially_done'" in message
    assert "succeeded, not_reconciled, refused, failed, committed" in message
    assert "newer version" in message


def test_an_unknown_run_status_is_refused_naming_the_run() -> None:
    row = {"run_id": "r9", "status": "paused", "tables": []}
    with pytest.raises(UnknownVerdict, match=r"run 'r9'.*unknown status 'paused'.*running"):
        run_status(row)
    with pytest.raises(UnknownVerdict, match="unknown status None"):
        is_verdict({"run_id": "r9", "status": None})
    with pytest.raises(UnknownVerdict, match="paused"):  # through the fold too
        run_log.fold_states([{**row, "started_at": datetime.datetime.now(UTC)}], {}, ["t"])


def test_a_newer_shape_version_is_refused_and_the_current_one_read() -> None:
    with pytest.raises(UnknownVerdict, match=f"shape version {VERSION + 1} is newer"):
        TableVerdict.from_json({**STOPPED, "v": VERSION + 1})
    assert TableVerdict.from_json({**STOPPED, "v": VERSION}) == TableVerdict.from_json(STOPPED)


def test_the_statuses_are_the_stored_strings() -> None:
    assert [s.value for s in TableStatus] == [
        "succeeded", "not_reconciled", "refused", "failed", "committed"
    ]  # fmt: skip
    assert [s.value for s in RunStatus] == [
        "running", "succeeded", "failed", "not_reconciled", "interrupted"
    ]  # fmt: skip
    assert {s for s in TableStatus if s.replaced_ok} == {
        TableStatus.SUCCEEDED, TableStatus.COMMITTED
    }  # fmt: skip
    assert is_verdict({"status": "interrupted"}) and not is_verdict({"status": "running"})
