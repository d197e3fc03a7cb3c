"""Unit tests of table leases (pipelines.state.leases) and the retry of aborted commits."""

from __future__ import annotations

import datetime

import pytest
from google.api_core import exceptions

from pipelines.services import bigquery as bq
from pipelines.state import leases

UTC = datetime.UTC
NOW = datetime.datetime(2026, 11, 25, 3, tzinfo=UTC)
LATER = NOW + datetime.timedelta(hours=6)
ABORTED = exceptions.BadRequest(
    "Transaction is aborted due to concurrent update against table p:d.tasks. "
    "Transaction ID: x"
)


def test_taking_is_one_transaction_that_updates_only_when_no_other_run_holds_one() -> None:
    sql = leases.take_sql("p", "d", "20261125T030000_ab12cd", ["tasks", "routines"], NOW, LATER)
    assert sql.startswith("BEGIN TRANSACTION;\n") and sql.endswith("COMMIT TRANSACTION;")
    assert "UNNEST(['routines', 'tasks'])" in sql
    assert "SET `run_id` = '20261125T030000_ab12cd'" in sql
    assert "AND `run_id` != '20261125T030000_ab12cd' AND `expires_at` > TIMESTAMP" in sql
    assert "TIMESTAMP '2026-11-25 09:00:00.000000+00:00'" in sql  # the expiry
    assert "@" not in sql  # the emulator takes no parameters inside scripts


@pytest.mark.parametrize(
    ("run_id", "tables"), [("x'; DROP TABLE t; --", ["tasks"]), ("run", ["tasks`; --"])]
)
def test_nothing_unvalidated_reaches_the_lease_sql(run_id: str, tables: list[str]) -> None:
    with pytest.raises(bq.UnsafeIdentifier):
        leases.take_sql("p", "d", run_id, tables, NOW, LATER)


def test_release_gives_back_only_the_runs_own_leases() -> None:
    assert leases.release_sql("p", "d", "run_1").endswith("WHERE `run_id` = 'run_1'")


def test_a_refusal_is_one_line_naming_the_holder_and_when_its_lease_expires() -> None:
    held = {
        "tasks": leases.Lease("tasks", "weekly_1", NOW, LATER),
        "routines": leases.Lease("routines", "weekly_1", NOW, LATER),
        "projects": leases.Lease("projects", "mine", NOW, LATER),
    }
    blockers = leases.blocking(held, "mine")
    assert [b.table for b in blockers] == ["routines", "tasks"]
    assert leases.refusal(blockers, 0) == (
        "routines, tasks: lease held by run weekly_1 since 2026-11-25T03:00:00Z, "
        "expires 2026-11-25T09:00:00Z; nothing was written; run again when it has "
        "finished, or raise --lease_wait_seconds"
    )
    assert "(waited 30 s)" in leases.refusal(blockers, 30.2)


def test_only_a_concurrent_update_abort_counts_as_one() -> None:
    assert bq.is_concurrent_update(ABORTED)
    assert not bq.is_concurrent_update(exceptions.BadRequest("Syntax error: Unexpected keyword"))
    assert not bq.is_concurrent_update(RuntimeError(str(ABORTED)))


def test_an_aborted_transaction_is_run_again_a_bounded_number_of_times() -> None:
    calls = []

    def commit() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ABORTED
        return "committed"

    assert bq.concurrent_update_retry(initial=0.001)(commit)() == "committed"
    assert len(calls) == 3

    calls.clear()

    def always() -> None:
        calls.append(1)
        raise ABORTED

    with pytest.raises(exceptions.BadRequest):
        bq.concurrent_update_retry(attempts=4, initial=0.001)(always)()
    assert len(calls) == 4


def test_other_errors_are_not_retried() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise exceptions.BadRequest("Syntax error")

    with pytest.raises(exceptions.BadRequest):
        bq.concurrent_update_retry(initial=0.001)(broken)()
    assert len(calls) == 1


# --------------------------------------------------------------------------------------
# Short leases: renewal, the fence, settling a dead run (issue 23)
# --------------------------------------------------------------------------------------


def test_a_renewal_only_extends_a_lease_the_run_still_holds() -> None:
    sql = leases.renew_sql("p", "d", "run_1", LATER)
    assert sql.endswith("WHERE `run_id` = 'run_1'")  # given back or taken over: untouched
    assert "GREATEST(`expires_at`, TIMESTAMP '2026-11-25 09:00:00.000000+00:00')" in sql


def test_the_fence_fails_a_commit_unless_the_run_holds_the_tables_lease() -> None:
    sql = leases.fence_sql("p", "d", "run_1", "tasks")
    assert "WHERE `table_name` = 'tasks' AND `run_id` = 'run_1'" in sql
    assert sql.startswith("SELECT IF(EXISTS (") and "ERROR('lease lost" in sql
    with pytest.raises(bq.UnsafeIdentifier):
        leases.fence_sql("p", "d", "run'); --", "tasks")
    commit = bq.replace_days_sql(
        "p", "d", "tasks", "stage", ["a"], "created_at", [NOW.date()], ["a"], fence=sql
    )
    assert commit.startswith(f"BEGIN TRANSACTION;\n{sql}\nDELETE FROM ")


def test_a_flex_template_launch_leases_for_dataflow_start_up_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.cli.options import resolve

    monkeypatch.setattr(bq, "make_client", lambda *a, **k: object())
    config = resolve(PipelineOptions(["--project", "p", "--dataset", "d", "--date", "2026-11-24"]))
    assert config.lease_minutes == leases.DEFAULT_TTL_MINUTES == 10
    assert leases.holder(config).ttl == datetime.timedelta(minutes=10)
    handed = leases.holder(config, handover=True).ttl
    assert handed == datetime.timedelta(minutes=10) + leases.HANDOVER_START


def test_workers_renew_at_most_once_per_third_of_the_time_to_live_per_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = []
    monkeypatch.setattr(bq, "make_client", lambda *a, **k: object())
    monkeypatch.setattr(bq, "run_query", lambda client, sql: sent.append(sql))
    clock = iter([0.0, 10.0, 199.0, 200.0, 201.0, 401.0])
    first, second = (leases.WorkerRenewal("p", None, "d", "run_w", 10) for _ in range(2))
    for renewal in (first, second, first, second, first, second):
        renewal.beat(monotonic=lambda: next(clock))
    assert len(sent) == 3  # at 0, 200 and 401 s: two DoFn instances share one clock
    assert all("WHERE `run_id` = 'run_w'" in sql for sql in sent)


def test_a_dead_runs_verdict_names_the_commits_that_landed() -> None:
    from pipelines.state import run_log
    from pipelines.state.verdict import RunStatus, TableStatus, entries

    landed = {"tasks": {"mode": "incremental", "newest_day": NOW.date(),
                        "advances_watermark": True}}  # fmt: skip
    started = {"run_id": "dead", "runner": "DirectRunner", "started_at": NOW,
               "read_time": NOW, "window_start": NOW.date(), "window_end": NOW.date()}  # fmt: skip
    row = run_log.abandoned_row("dead", ["routines", "tasks"], landed, started, LATER, "why")
    assert row["status"] == RunStatus.INTERRUPTED and row["error"] == "why"
    assert row["started_at"] == NOW.isoformat() and row["read_time"] == NOW.isoformat()
    by_table = {e.table: e for e in entries(row)}
    assert by_table["tasks"].status is TableStatus.COMMITTED and by_table["tasks"].replaced
    assert by_table["routines"].status is TableStatus.FAILED and not by_table["routines"].replaced
    # Folded with its running row: the verdict wins, the commit stands, no "unfinished".
    states = run_log.fold_states(
        [{**started, "status": RunStatus.RUNNING, "error": None, "tables": []},
         {**row, "started_at": NOW, "read_time": NOW}],
        {"dead": {"tasks": {**landed["tasks"]}}}, ["tasks", "routines"],
    )  # fmt: skip
    assert states["tasks"].last_success_run_id == "dead"
    # Its plan is unknown (a dated incremental run advances the watermark too):
    # the commit does not make the table fresh, too early being safe.
    assert states["tasks"].fresh_read_time is None
    assert states["routines"].last_failure_error == "not replaced: the run stopped first"
    # A run that never wrote its running row: the lease's time stands for its start.
    bare = run_log.abandoned_row("dead", ["tasks"], {}, None, LATER, "why")
    assert bare["started_at"] == LATER.isoformat() and bare["read_time"] is None
