"""The composites' wiring, without a server: Beam's ``TestPipeline`` with ``assert_that``.

As Beam's own ``*_test.py`` do: tagged outputs, side inputs and empty inputs of
``ConvertDocuments``, ``PlanDays`` and ``WriteDayPartitions`` on the in-process
runner. The write's only seam is the BigQuery client (``bigquery.make_client``),
replaced here by a narrow fake that records what it is asked; that a sync works
is proven against the emulators (``tests/integration/test_sync_integration.py``), not here.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
from collections import Counter
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.cli.options import SyncConfig, resolve
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import DOCUMENT_PATH_COLUMN
from pipelines.firestore_to_bq import parse_options
from pipelines.plan.day_plan import TablePlan, Tally
from pipelines.plan.read_plan import IncrementalPlan
from pipelines.plan.windows import TableState, plan_windows
from pipelines.services import bigquery as bq
from pipelines.state import dead_letters
from pipelines.transforms.convert_documents import ConvertDocuments
from pipelines.transforms.plan_days import PlanDays
from pipelines.transforms.write_bigquery import WriteDayPartitions
from tests.support.documents import at, interaction, task

DAY = datetime.date(2026, 11, 2)
BEFORE = datetime.date(2026, 10, 30)
NOW = datetime.datetime(2026, 11, 3, 3, tzinfo=datetime.UTC)
TABLES = ("tasks", "user_interactions")


def _config(*args: str, dry_run: bool = True) -> SyncConfig:
    argv = ["--project", "demo-project", "--collections", ",".join(TABLES), *args]
    return resolve(parse_options(argv), dry_run=dry_run, now=NOW)


def _pipeline() -> BeamTestPipeline:
    """The runner local runs use (``firestore_to_bq.local_runner``): the DirectRunner
    would first try to download Prism."""
    return BeamTestPipeline(runner=FnApiRunner())


def _doc(table: str, path: str, data: dict[str, Any], edited: datetime.date) -> FirestoreDocument:
    return FirestoreDocument(table, path, data, update_time=at(edited.isoformat()))


def _destination_and_path(destination: str, row: dict[str, Any]) -> tuple[str, str]:
    return destination, row.get(DOCUMENT_PATH_COLUMN) or row["document_path"]  # or a dead letter


ORIGIN_NOT_ALLOWED = """"…" is not one of ['user_added', 'routine', 'google_calendar']"""


def test_convert_documents_tags_rows_and_dead_letters_and_sums_tallies(monkeypatch) -> None:
    monkeypatch.delenv("F2BQ_HASH_KEY", raising=False)
    config = _config("--date", DAY.isoformat())
    docs = [
        _doc("tasks", "users/a/tasks/t1", task(DAY.isoformat()), DAY),
        _doc("tasks", "users/a/tasks/t2", task(BEFORE.isoformat()), DAY),  # a late edit
        _doc("tasks", "users/a/tasks/bad", task(DAY.isoformat(), origin="nope"), DAY),
        _doc("user_interactions", "users/a/interactions/i1", interaction(DAY.isoformat()), DAY),
        dataclasses.replace(  # returned again by a range read: counted, not converted
            _doc("user_interactions", "users/a/interactions/i1", {}, DAY), duplicate=True
        ),
    ]
    with _pipeline() as p:
        convert = ConvertDocuments(config.tables, config.stamp, config.edit_window)
        rows, tallies = p | beam.Create(docs) | convert
        assert_that(
            rows | beam.MapTuple(_destination_and_path),
            equal_to(
                [
                    ("tasks", "users/a/tasks/t1"),
                    ("tasks", "users/a/tasks/t2"),
                    (dead_letters.TABLE, "users/a/tasks/bad"),
                    ("user_interactions", "users/a/interactions/i1"),
                ]
            ),
            label="Rows",
        )
        # The tallies are emitted from finish_bundle, in the global window, and
        # summed per table: one each, whatever the bundles were.
        assert_that(
            tallies,
            equal_to(
                [
                    (
                        "tasks",
                        Tally(
                            read=3,
                            returned=3,
                            rows=Counter({DAY: 1, BEFORE: 1}),
                            bad=Counter({DAY: 1}),
                            edited={DAY, BEFORE},
                            # why, by field: the value ("nope") is not kept
                            reasons=Counter({(DAY, "origin", ORIGIN_NOT_ALLOWED): 1}),
                        ),
                    ),
                    (
                        "user_interactions",
                        Tally(read=1, returned=2, rows=Counter({DAY: 1}), edited={DAY}),
                    ),
                ]
            ),
            label="Tallies",
        )


def test_plan_days_joins_tallies_and_read_plans_and_plans_a_table_with_no_documents() -> None:
    states = {  # tasks has a watermark: incremental; user_interactions never synced: full
        "tasks": TableState("tasks", newest_day=DAY - datetime.timedelta(days=1), watermark=NOW),
    }
    config = _config()
    config = dataclasses.replace(config, plan=plan_windows(config.tables, states, today=NOW.date()))
    assert config.window("tasks").incremental and not config.window("user_interactions").incremental
    read_plan = IncrementalPlan("tasks", days=(DAY,), drift_days=(BEFORE,), count_queries=3)
    tally = Tally(read=1, returned=1, rows=Counter({DAY: 1}))
    with _pipeline() as p:
        read_plans = p | "ReadPlans" >> beam.Create([("tasks", read_plan)])
        plans = p | beam.Create([("tasks", tally)]) | PlanDays(
            config.windows, config.required_days, config.yesterday, read_plans=read_plans
        )
        assert_that(
            plans
            | beam.MapTuple(
                lambda table, plan: (table, plan.mode, plan.days, plan.drift_days, plan.read)
            ),
            equal_to(
                [
                    ("tasks", "incremental", (DAY,), (BEFORE,), 1),  # days from the side input
                    ("user_interactions", "full", (DAY,), (), 0),  # no documents: still planned
                ]
            ),
        )


class _FakeJob:
    job_id = "fake_job"
    errors = None

    def result(self, **_: Any) -> list:
        return []  # every count query finds no rows


class _FakeClient:
    """The calls the write makes, recorded in order; the seam is ``bq.make_client``."""

    calls: list[tuple[str, str]] = []
    lock = threading.Lock()

    def __init__(self, project: str, location: str | None = None) -> None:
        self.project = project

    def _record(self, kind: str, what: str) -> _FakeJob:
        with self.lock:
            self.calls.append((kind, what))
        return _FakeJob()

    def load_table_from_file(self, source, destination: str, **_: Any) -> _FakeJob:
        return self._record("load", destination)

    def query(self, sql: str, **_: Any) -> _FakeJob:
        return self._record("query", sql)

    def delete_table(self, table: str, **_: Any) -> None:
        self._record("delete", table)


@pytest.fixture
def fake_bigquery(monkeypatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(_FakeClient, "calls", calls)
    monkeypatch.setattr(bq, "make_client", _FakeClient)
    return calls


def test_write_commits_every_destination_after_staging_even_one_that_staged_nothing(
    fake_bigquery,
) -> None:
    config = _config("--date", DAY.isoformat(), "--dataset", "app_analytics", dry_run=False)
    plans = [  # keyed by table, as PlanDays makes them
        ("tasks", TablePlan("tasks", (DAY,), (), 2, {DAY: 2}, 0, 0)),
        ("user_interactions", TablePlan("user_interactions", (DAY,), (), 0, {DAY: 0}, 0, 0)),
    ]  # user_interactions: nothing staged
    rows = [("tasks", {DOCUMENT_PATH_COLUMN: f"users/a/tasks/t{i}"}) for i in range(2)]
    with _pipeline() as p:
        commits = (
            p
            | "Rows" >> beam.Create(rows)
            | WriteDayPartitions(
                config.target, config.tables, config.windows, config.stamp,
                p | "Plans" >> beam.Create(plans),
            )  # fmt: skip
        )
        assert_that(
            commits | beam.Map(lambda c: (c["table"], c["staged"], c["replaced"])),
            equal_to(
                [
                    ("tasks", 2, True),
                    ("user_interactions", 0, True),
                    (dead_letters.TABLE, 0, True),  # nothing to append: no query
                ]
            ),
        )

    staging = f"demo-project.app_analytics._staging_{config.run_id}"
    loads = [i for i, (kind, _) in enumerate(fake_bigquery) if kind == "load"]
    assert {fake_bigquery[i][1] for i in loads} == {f"{staging}_tasks"}  # one per bundle
    transactions = {
        i: sql
        for i, (kind, sql) in enumerate(fake_bigquery)
        if kind == "query" and sql.startswith("BEGIN TRANSACTION")
    }
    assert max(loads) < min(transactions)  # the barrier: every batch staged first
    emptied = "DELETE FROM `demo-project.app_analytics.user_interactions` WHERE DATE"
    [nothing_staged] = [sql for sql in transactions.values() if emptied in sql]
    assert "DATE '2026-11-02'" in nothing_staged  # its day is emptied all the same
    assert len(transactions) == 2  # one per table; no dead letters, so none for them
