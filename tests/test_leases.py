"""Unit tests of table leases (pipelines.leases) and the retry of aborted commits."""

from __future__ import annotations

import datetime

import pytest
from google.api_core import exceptions

from pipelines import bigquery as bq
from pipelines import leases

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
