"""Loud dead letters (*unit*): reason kinds without values, the top reasons a plan
keeps, the summary's line per table, ``--max_dead_letter_share`` and its refusal.

End to end on the emulators: ``tests/integration/test_loud_dead_letters.py``.
"""

from __future__ import annotations

import datetime

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.cli.options import UsageError, resolve
from pipelines.cli.summary import RunSummary, TableSummary, from_audit, summarize
from pipelines.plan.day_plan import TablePlan, Tally, plan_incremental_table, plan_table
from pipelines.plan.windows import TableWindow
from pipelines.state import dead_letters
from pipelines.state.dead_letters import Answered, reason_kind, top_reasons
from pipelines.transforms import metrics
from pipelines.transforms.record_run import table_verdict
from pipelines.transforms.write_bigquery import dead_letter_refusal

D1, D2 = datetime.date(2026, 11, 22), datetime.date(2026, 11, 23)
BASE = ["--project", "my-project", "--dataset", "analytics", "--date", "2026-11-22"]
SECRET = "SECRET value"


def _config(*extra: str, dry_run: bool = False):
    return resolve(PipelineOptions([*BASE, "--collections", "tasks", *extra]), dry_run=dry_run)


# --------------------------------------------------------------------------------------
# Reason kinds: what failed and why, never the value
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("expected timestamp, got integer", "expected timestamp, got integer"),
        ("missing required field", "missing required field"),
        (f'unparsable timestamp "{SECRET}"', 'unparsable timestamp "…"'),
        ("integer 9223372036854775808 is outside INT64", "integer … is outside INT64"),
        ("double 2.5 is not a whole INT64", "double … is not a whole INT64"),
        (
            "array element 3: expected integer, got string",
            "array element …: expected integer, got string",
        ),
        (
            "partition day 1900-01-01 is outside BigQuery's partitionable range "
            "1960-01-01..2159-12-31",
            "partition day … is outside BigQuery's partitionable range …",
        ),
        (
            f'field disagrees with the document path ("{SECRET}")',
            'field disagrees with the document path ("…")',
        ),
        ("invalid value (withheld: policy 'hash')", "invalid value (withheld: policy 'hash')"),
        (f"{SECRET}\nsecond line", "SECRET value"),  # first line only (a plain word is no value)
    ],
)
def test_reason_kind_keeps_the_why_and_drops_the_value(reason: str, kind: str) -> None:
    assert reason_kind(reason) == kind


def test_reason_kind_keeps_the_words_the_schema_declares() -> None:
    reason = f"\"{SECRET}\" is not one of ['user_added', 'routine']"
    kept = reason_kind(reason, keep={"user_added", "routine"})
    assert kept == "\"…\" is not one of ['user_added', 'routine']"


def test_reason_kind_is_cut_short() -> None:
    assert reason_kind("x" * 500) == "x" * 120 + "…"


# --------------------------------------------------------------------------------------
# Tallies and plans: the top reasons of the dead letters the run answers for
# --------------------------------------------------------------------------------------


def _tally() -> Tally:
    tally = Tally(read=6)
    tally.rows[D1] += 1
    tally.bad.update({D1: 3, D2: 1, None: 1})
    tally.reasons.update(
        {
            (D1, "created_at", "expected timestamp, got integer"): 2,
            (D1, "origin", 'unparsable "…"'): 1,
            (D2, "created_at", "expected timestamp, got integer"): 1,
            (None, "created_at", "missing partition value"): 1,
        }
    )
    return tally


def test_tallies_merge_their_reasons() -> None:
    merged = _tally().merge(_tally())
    assert merged.reasons[(D1, "created_at", "expected timestamp, got integer")] == 4


def test_a_plan_names_the_top_reasons_of_the_letters_it_counts() -> None:
    plan = plan_table("tasks", _tally(), [D1])  # D2 is not replaced: its letter is outside
    assert plan.dead_lettered == 4
    assert plan.dead_letter_reasons == (
        ("created_at", "expected timestamp, got integer", 2),
        ("created_at", "missing partition value", 1),
        ("origin", 'unparsable "…"', 1),
    )
    incremental = plan_incremental_table("tasks", _tally(), [D1], [], upsert_through=D1)
    top = incremental.dead_letter_reasons[0]
    assert top == ("created_at", "expected timestamp, got integer", 3)  # every letter counts


def test_top_reasons_keeps_three() -> None:
    reasons = {(None, f"f{i}", "missing required field"): i for i in range(1, 6)}
    assert [r[0] for r in top_reasons(reasons, Answered("t"))] == ["f5", "f4", "f3"]


def test_the_verdict_records_the_reasons_without_values() -> None:
    plan = plan_table("tasks", _tally(), [D1])
    window = TableWindow("tasks", "full", D1, D1)
    entry = table_verdict(plan, {"replaced": True, "written": {D1: 1}}, window)
    assert entry.to_json()["dead_letter_reasons"][0] == {
        "field": "created_at",
        "reason": "expected timestamp, got integer",
        "count": 2,
    }


# --------------------------------------------------------------------------------------
# The summary: one line per table with dead letters
# --------------------------------------------------------------------------------------


def test_the_summary_names_count_reasons_and_the_query_of_each_table_with_dead_letters() -> None:
    config = _config("--run_id", "run_1")
    row = {
        "tables": [
            {
                "table": "tasks", "status": "succeeded", "documents_read": 4,
                "dead_lettered": 4, "rows_written": 0,
                "dead_letter_reasons": [
                    {"field": "created_at", "reason": "expected timestamp, got integer",
                     "count": 3},
                    {"field": "origin", "reason": 'unparsable "…"', "count": 1},
                ],
            },
            {"table": "projects", "status": "succeeded", "documents_read": 1, "rows_written": 1},
        ]
    }  # fmt: skip
    lines = from_audit(config, row).render().splitlines()
    assert lines[-2] == "read = written + dead-lettered + outside the replaced days: reconciled"
    started = config.started_at.isoformat(sep=" ", timespec="microseconds")
    assert lines[-1] == (
        "tasks: 4 documents dead-lettered, top reasons: created_at: expected timestamp, "
        "got integer (3); origin: unparsable \"…\" (1); read them: SELECT document_path, "
        "field, reason, partition_day FROM `my-project.analytics._dead_letters` "
        f"WHERE dead_lettered_at = TIMESTAMP '{started}' AND table_name = 'tasks' "
        "AND run_id = 'run_1'"
    )
    assert not any(line.startswith("projects: ") for line in lines)


def test_no_dead_letters_no_line() -> None:
    summary = RunSummary(_config(), [TableSummary("tasks", read=2, rows=2, written=2)])
    assert "dead-lettered," not in summary.render() and "_dead_letters" not in summary.render()


def test_a_dry_run_names_the_reasons_from_its_counters() -> None:
    config = _config(dry_run=True)
    values = {
        metrics.name("tasks", metrics.DOCUMENTS_READ): 3,
        metrics.name("tasks", metrics.DEAD_LETTERED): 3,
    }
    for (field, kind), n in {("created_at", "missing partition value"): 1,
                             ("origin", "expected string, got integer"): 2}.items():  # fmt: skip
        values[metrics.reason_counter("tasks", field, kind).metric_name.name] = n
    summary = summarize(config, values)
    assert summary.render().splitlines()[-1] == (
        "tasks: 3 documents dead-lettered, top reasons: origin: expected string, got integer "
        "(2); created_at: missing partition value (1); a run that writes records them in "
        "_dead_letters"
    )


# --------------------------------------------------------------------------------------
# --max_dead_letter_share
# --------------------------------------------------------------------------------------


def test_max_dead_letter_share_is_unset_by_default() -> None:
    assert _config().max_dead_letter_share is None
    assert _config("--max_dead_letter_share", "0.05").max_dead_letter_share == 0.05
    assert _config("--max_dead_letter_share", "1").max_dead_letter_share == 1.0


@pytest.mark.parametrize("value", ["0", "-0.1", "1.5", "nan", "inf"])
def test_max_dead_letter_share_must_be_a_share(value: str) -> None:
    expected = "--max_dead_letter_share must be more than 0 and at most 1"
    with pytest.raises(UsageError, match=expected):
        _config("--max_dead_letter_share", value)


def test_max_dead_letter_share_is_documented_in_help() -> None:
    from pipelines.firestore_to_bq import sync_help

    assert "--max_dead_letter_share" in sync_help()


def _plan(read: int, dead: int) -> TablePlan:
    return TablePlan(
        table="tasks", days=(D1,), late_days=(), read=read, rows_per_day={D1: read - dead},
        dead_lettered=dead, outside_window=0,
        dead_letter_reasons=(("created_at", "expected timestamp, got integer", dead),),
    )  # fmt: skip


def test_a_table_above_the_share_is_refused_with_its_top_reason() -> None:
    assert dead_letter_refusal(_plan(10, 6), None) is None  # no limit: never
    assert dead_letter_refusal(_plan(10, 5), 0.5) is None  # at the limit: fine
    assert dead_letter_refusal(_plan(0, 0), 0.5) is None  # nothing read
    assert dead_letter_refusal(_plan(10, 10), 1.0) is None
    assert dead_letter_refusal(_plan(10, 6), 0.5, "run_1") == (
        "6 of 10 documents read were dead-lettered (60.0%), more than "
        "--max_dead_letter_share 0.5; top reason: created_at: expected timestamp, got "
        f"integer (6); read them in {dead_letters.TABLE}, run_id run_1; fix the schema "
        "or the documents, or raise the limit"
    )
