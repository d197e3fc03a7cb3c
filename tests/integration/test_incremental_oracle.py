"""The equivalence oracle: after every nightly, each table equals a full rebuild.

Random histories of creates, edits, edits that move a document to another day,
hard deletes, malformed documents and missed nights, against the emulators.
After each incremental run, a fresh full run at the same snapshot into another
dataset must give the same rows (all columns but run metadata).

What incremental runs cannot see is left out by design, as docs/design.md says:
edits of tables without a change field (``user_interactions``) other than new
documents and hard deletes are found by the weekly full run, not by counts.

Fixed seeds in CI (``derandomize``); ``F2BQ_ORACLE_EXAMPLES=50`` runs more.
"""

from __future__ import annotations

import datetime
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import firestore_to_bq
from tests.support.sync_helpers import PROJECT, table_rows, unique_dataset
from tests.support.world import World

UTC = datetime.UTC
TABLES = ("tasks", "user_interactions")
EXAMPLES = int(os.environ.get("F2BQ_ORACLE_EXAMPLES", "3"))

# One operation: (kind, which existing document or user, day offset from the night's today).
operation = st.one_of(
    st.tuples(st.just("create_task"), st.integers(0, 2), st.integers(-6, 0)),
    st.tuples(st.just("create_interaction"), st.integers(0, 2), st.integers(-1, 0)),
    st.tuples(st.just("edit_task"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("move_task"), st.integers(0, 50), st.integers(-6, 0)),
    st.tuples(st.just("delete"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("malformed_task"), st.integers(0, 2), st.integers(-6, 0)),
)
night = st.tuples(st.lists(operation, max_size=6), st.booleans())  # (ops, night missed)


def _run(dataset: str, now: datetime.datetime, *args: str):
    argv = ["--project", PROJECT, "--dataset", dataset, "--collections", ",".join(TABLES)]
    summary = firestore_to_bq.run([*argv, *args], now=now)
    assert summary.reconciles, summary.render()
    return summary


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("F2BQ_ORACLE_EXAMPLES") is None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(operation, min_size=1, max_size=8),
    nights=st.lists(night, min_size=1, max_size=3),
)
def test_every_nightly_equals_a_full_rebuild(emulators, bq_client, history, nights) -> None:
    from google.cloud import firestore

    emulators.reset_firestore()
    world = World(firestore.Client(project=emulators.project))
    start = datetime.datetime.now(UTC)
    for op in history:
        world.apply(op, start.date())
    dataset = unique_dataset("oracle")
    _run(dataset, start)  # the first nightly: a full rebuild
    for k, (ops, missed) in enumerate(nights, 1):
        now = start + datetime.timedelta(days=k)
        for op in ops:
            world.apply(op, now.date())
        if missed:
            continue
        nightly = _run(dataset, now)
        fresh = unique_dataset("oracle_full")
        _run(fresh, now, "--mode", "full", "--read_time", nightly.config.read_time.isoformat())
        for table in TABLES:
            assert table_rows(bq_client, dataset, table) == table_rows(bq_client, fresh, table), (
                f"{table} after night {k}"
            )
