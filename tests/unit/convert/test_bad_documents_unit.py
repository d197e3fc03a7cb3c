"""The hostile-document corpus through the real conversion, without emulators.

Each entry of :mod:`tests.support.bad_documents` either becomes a row (whose named
columns hold exactly the expected values, and which serialises to the NDJSON a
load job takes) or raises :class:`ConversionError` naming the expected field,
with a reason and a raw document that is valid JSON.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from typing import Any

import google.auth.credentials
import pytest
from google.cloud import firestore

from pipelines.convert.conversion import (
    ConversionError,
    document_to_row,
    partition_day,
    raw_document_json,
)
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import load_specs
from tests.support.bad_documents import (
    CORPUS,
    DAYS,
    DEAD,
    OUT_OF_RANGE_PARTITION,
    TABLES,
    WRITTEN,
    BadDoc,
    materialize,
    table_of,
)

SPECS = load_specs()
RUN_ID = "run_bad_docs"
READ_TIME = "2026-11-06T02:00:00.000000Z"
WINDOW = {datetime.date.fromisoformat(d) for d in DAYS}
#: Builds DocumentReferences offline; no request is ever sent.
CLIENT = firestore.Client(
    project="demo-project", credentials=google.auth.credentials.AnonymousCredentials()
)


def as_document(entry: BadDoc) -> FirestoreDocument:
    return FirestoreDocument(table_of(entry), entry.path, materialize(entry.data, CLIENT))


def convert(entry: BadDoc) -> dict[str, Any]:
    return document_to_row(SPECS[table_of(entry)], as_document(entry), RUN_ID, READ_TIME)


def test_corpus_is_large_and_covers_every_collection() -> None:
    assert len(CORPUS) >= 40
    assert len({e.path for e in CORPUS}) == len(CORPUS)
    per_collection = Counter(e.collection for e in CORPUS)
    assert set(per_collection) == set(TABLES)
    assert all(per_collection[c] >= 5 for c in TABLES), per_collection
    assert {e.expect[0] for e in CORPUS} == {"dead", "written"}
    assert all(e.expected_field for e in DEAD)
    assert all(e.expect == ("written", None) for e in WRITTEN)


@pytest.mark.parametrize("entry", DEAD, ids=[e.path for e in DEAD])
def test_dead_document_names_the_offending_field(entry: BadDoc) -> None:
    with pytest.raises(ConversionError) as info:
        convert(entry)
    assert info.value.field == entry.expected_field, info.value
    assert info.value.reason.strip()
    raw = raw_document_json(as_document(entry))
    assert isinstance(json.loads(raw), dict)


@pytest.mark.parametrize("entry", WRITTEN, ids=[e.path for e in WRITTEN])
def test_hostile_but_valid_document_becomes_a_row(entry: BadDoc) -> None:
    spec = SPECS[table_of(entry)]
    row = convert(entry)
    segments = entry.path.split("/")
    assert row["_document_path"] == entry.path
    assert row[spec.id_column] == segments[-1]
    assert row[spec.user_id_column] == segments[1]
    assert partition_day(spec, row) in WINDOW
    for column, expected in entry.check.items():
        assert row[column] == expected, column
    # The NDJSON line a load job receives: strict JSON, nothing lost on the way.
    line = json.dumps(row, ensure_ascii=False, allow_nan=False)
    assert json.loads(line) == row


def test_every_dead_document_is_dead_lettered_by_a_sync_of_the_window() -> None:
    """Routing, not just conversion: a document that cannot convert and whose
    day no run could ever write must go to the dead letters, never count as
    outside the window. Runs the sync's own DoFn with the window as the plan."""
    from pipelines.cli.options import SyncConfig
    from pipelines.plan.day_plan import plan_table
    from pipelines.state import dead_letters
    from pipelines.transforms.convert_documents import _ConvertFn

    now = datetime.datetime(2026, 11, 6, 2, tzinfo=datetime.UTC)
    config = SyncConfig(
        project="demo-project",
        dataset=None,
        start_date=min(WINDOW),
        end_date=max(WINDOW),
        tables=tuple(SPECS.values()),
        run_id=RUN_ID,
        read_time=now,
        started_at=now,
        hash_key_env="F2BQ_TEST_NO_SUCH_VARIABLE",
        dry_run=True,
    )
    fn = _ConvertFn(config.tables, config.stamp, config.edit_window, config.hashing)
    fn.setup()
    fn.start_bundle()
    routed: dict[str, str] = {}
    for entry in CORPUS:
        ((destination, row),) = list(fn.process(as_document(entry)))
        routed[entry.path] = "dead" if destination == dead_letters.TABLE else "written"
        if destination == dead_letters.TABLE and row["partition_day"] is not None:
            # Dead letters are filed under a day the window replaces, or none.
            assert datetime.date.fromisoformat(row["partition_day"]) in WINDOW, entry.path
    for output in fn.finish_bundle():
        table, tally = output.value.value
        plan = plan_table(table, tally, WINDOW)
        assert plan.outside_window == 0, (table, plan)
        assert plan.read == plan.rows + plan.dead_lettered
    wrong = {e.path: routed[e.path] for e in CORPUS if routed[e.path] != e.expect[0]}
    assert not wrong, (
        "documents routed differently than expected (partition days outside "
        f"BigQuery's 1960..2159 range are {OUT_OF_RANGE_PARTITION}): {wrong}"
    )
