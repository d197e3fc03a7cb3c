"""``firestore-to-bq status`` after real syncs against the emulators (and its arguments, *unit*)."""

from __future__ import annotations

import datetime
import re

import pytest
from google.cloud import bigquery

from pipelines.cli import status
from pipelines.convert.table_spec import load_specs
from pipelines.firestore_to_bq import main
from tests.support.documents import interaction, task
from tests.support.sync_helpers import PROJECT, seed, sync, unique_dataset

UTC = datetime.UTC
TABLES = sorted(load_specs())


def days_ago(n: int) -> str:
    return (datetime.datetime.now(UTC).date() - datetime.timedelta(days=n)).isoformat()


def table_line(out: str, table: str) -> list[str]:
    [line] = [x for x in out.splitlines() if x.startswith(f"{table} ")]
    return line.split()


def run_status(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["status", "--project", PROJECT, *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.integration
def test_status_after_a_nightly_and_a_backfill_of_yesterday(firestore_db, capsys) -> None:
    yesterday = days_ago(1)
    seed(
        firestore_db,
        {
            "users/u1/tasks/t1": task(yesterday),
            "users/u1/tasks/bad": task(yesterday, origin="nowhere"),
            "users/u1/interactions/i1": interaction(yesterday),
        },
    )
    dataset = unique_dataset("status")
    nightly = sync(dataset, "--run_id", "nightly_run")  # the first: every day up to yesterday
    # A backfill of one day after it brings that day up to date, not the table:
    # it is the last success, but the table stays fresh as of the nightly.
    summary = sync(dataset, "--date", yesterday, "--run_id", "status_run")
    capsys.readouterr()

    code, out, err = run_status(capsys, "--dataset", dataset)
    assert code == 0, out + err
    assert out.splitlines()[0] == (
        f"status of {PROJECT}.{dataset}: yesterday (UTC) is {yesterday}; "
        "dead letters of the last 7 days"
    )
    snapshot = summary.config.read_time_text
    fresh = status.fresh_as_of(nightly.config.read_time, datetime.datetime.now(UTC)).split()
    for table in TABLES:
        dead = "2" if table == "tasks" else "0"  # both runs dead-lettered the bad task
        assert table_line(out, table) == [
            table, "status_run", snapshot, yesterday, "0", dead, *fresh, "ok"
        ]  # fmt: skip
    assert "last failure" not in out
    assert out.splitlines()[-1] == "every table is at most 1 day(s) behind"


@pytest.mark.integration
def test_status_exits_1_when_a_table_is_more_than_max_lag_days_behind(firestore_db, capsys) -> None:
    three_days_ago = days_ago(3)
    seed(firestore_db, {"users/u1/tasks/t1": task(three_days_ago)})
    dataset = unique_dataset("status_late")
    sync(dataset, "--date", three_days_ago, "--collections", "tasks")
    capsys.readouterr()

    code, out, _ = run_status(capsys, "--dataset", dataset)
    assert code == 1
    line = table_line(out, "tasks")
    # A dated run: the table was never fresh as a whole ("-").
    assert line[-4:-2] == ["2", "0"] and line[-2:] == ["-", "LATE"]
    # Never synced tables are late too.
    assert table_line(out, "projects") == ["projects", "-", "-", "-", "never", "0", "-", "LATE"]
    assert out.splitlines()[-1] == (
        "5 table(s) more than 1 day(s) behind: emotional_memories, projects, routines, "
        "tasks, user_interactions"
    )
    code, out, _ = run_status(capsys, "--dataset", dataset, "--max_lag_days", "2")
    assert code == 1  # the never-synced tables
    assert table_line(out, "tasks")[-1] == "ok"


@pytest.mark.integration
def test_status_names_the_last_failure(firestore_db, bq_client, capsys) -> None:
    yesterday = days_ago(1)
    seed(firestore_db, {"users/u1/tasks/t1": task(yesterday)})
    dataset = unique_dataset("status_fail")
    sync(dataset, "--date", yesterday, "--collections", "tasks", "--run_id", "good_run")
    # Drop the tasks table's `extra` column: the next commit of tasks fails.
    ref = f"{PROJECT}.{dataset}.tasks"
    table = bq_client.get_table(ref)
    bq_client.delete_table(ref)
    broken = bigquery.Table(ref, schema=[f for f in table.schema if f.name != "extra"])
    broken.time_partitioning = table.time_partitioning
    bq_client.create_table(broken)
    args = ["--project", PROJECT, "--dataset", dataset, "--date", yesterday]
    assert main([*args, "--collections", "tasks", "--run_id", "bad_run"]) == 1
    capsys.readouterr()

    code, out, err = run_status(capsys, "--dataset", dataset, "--collections_ignored")
    assert code == 2 and err.startswith("error: unknown option --collections_ignored")
    code, out, _ = run_status(capsys, "--dataset", dataset)
    assert table_line(out, "tasks")[1] == "good_run"
    lines = out.splitlines()
    failure = lines[lines.index(next(x for x in lines if x.startswith("tasks "))) + 1]
    assert re.match(r"  last failure: run bad_run at \d{4}-\d\d-\d\dT[\d:.]+Z: \w+", failure)


@pytest.mark.integration
def test_status_of_a_dataset_nothing_synced_to(emulators, capsys) -> None:
    code, out, err = run_status(capsys, "--dataset", "never_synced_here")
    assert code == 1 and out == ""
    assert err == (
        f"error: {PROJECT}.never_synced_here._sync_runs not found: no run has written there "
        "yet (check --project and --dataset)\n"
    )


@pytest.mark.integration
def test_max_lag_minutes_pages_when_the_last_snapshot_is_too_old(firestore_db, capsys) -> None:
    yesterday = days_ago(1)
    seed(firestore_db, {"users/u1/tasks/t1": task(yesterday)})
    dataset = unique_dataset("status_fresh")
    summary = sync(dataset, "--collections", "tasks")
    capsys.readouterr()
    argv = ["--project", PROJECT, "--dataset", dataset, "--max_lag_minutes", "60"]
    soon = summary.config.read_time + datetime.timedelta(minutes=30)
    assert status.main(argv, now=soon) == 1  # the other tables were never synced
    out = capsys.readouterr().out
    line = table_line(out, "tasks")
    assert line[-3:] == [f"{summary.config.read_time:%H:%M}", "UTC", "ok"]
    later = summary.config.read_time + datetime.timedelta(minutes=61)
    status.main(argv, now=later)
    out = capsys.readouterr().out
    assert table_line(out, "tasks")[-1] == "STALE"
    assert "table(s) not fresh within 60 minute(s): " in out
    assert "tasks" in out.splitlines()[-1]


@pytest.mark.integration
def test_release_leases_gives_back_a_dead_runs_tables_and_only_its_own(
    firestore_db, bq_client, capsys
) -> None:
    from pipelines.services import bigquery as bq
    from pipelines.state import leases

    seed(firestore_db, {"users/u1/tasks/t1": task(days_ago(1))})
    dataset = unique_dataset("status_release")
    sync(dataset, "--collections", "tasks")
    now = datetime.datetime.now(UTC)
    later = now + datetime.timedelta(hours=6)
    # A run killed outright after taking its leases, and a live one on another table.
    bq.run_query(bq_client, leases.take_sql(PROJECT, dataset, "dead_run", ["tasks"], now, later))
    bq.run_query(bq_client, leases.take_sql(PROJECT, dataset, "live_run", ["projects"], now, later))
    capsys.readouterr()
    argv = ["--project", PROJECT, "--dataset", dataset]

    code, out, err = run_status(capsys, *argv, "--release_leases", "dead_run")
    assert (code, out, err) == (0, "gave back the leases of run dead_run on tasks\n", "")
    held = leases.held(bq_client, dataset, TABLES, datetime.datetime.now(UTC))
    assert {t: lease.run_id for t, lease in held.items()} == {"projects": "live_run"}

    code, out, err = run_status(capsys, *argv, "--release_leases", "dead_run")
    assert code == 1 and out == ""
    assert err == (
        f"error: run dead_run holds no lease in {dataset} (status lists the leases held)\n"
    )
    code, _, err = run_status(capsys, *argv, "--release_leases", "no'quote")
    assert code == 2 and err.startswith("error: run id") and err.count("\n") == 1


