"""The same graph translates for Dataflow: built and translated, never submitted.

Beam's own ``TestOptions.dry_run`` makes the DataflowRunner stop after building
the job request; ``--no_auth`` keeps it from looking for credentials.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import TestOptions

from pipelines.cli.options import resolve
from pipelines.firestore_to_bq import build, local_runner, parse_options

ARGS = [
    "--project", "my-proj", "--dataset", "app_analytics", "--date", "2026-11-24",
    "--runner", "DataflowRunner", "--region", "europe-west1",
    "--temp_location", "gs://my-proj-dataflow/temp", "--no_auth",
]  # fmt: skip


def test_dataflow_translates_the_same_transforms_as_local_runs():
    options = parse_options(ARGS)
    assert local_runner(options) is None  # Dataflow is left to Beam
    config = resolve(options)
    options.view_as(TestOptions).dry_run = True  # build the job request, submit nothing
    pipeline = beam.Pipeline(options=options)
    build(pipeline, config, "DataflowRunner")
    result = pipeline.run()

    names = {t.unique_name for t in result.job.proto_pipeline.components.transforms.values()}
    assert {
        "ReadFirestore/SplitQuery",
        "ReadFirestore/Reshuffle",
        "ReadFirestore/ReadRange",
        "ConvertDocuments/Convert",
        "PlanDays/Plan",
        "WriteBigQuery/StageRows",
        "WriteBigQuery/Commit",
        "RecordRun/RecordRun",
    } <= names


def test_dataflow_translates_a_nightly_with_incremental_and_full_tables():
    """A nightly mixes modes: incremental tables and a first-time full rebuild."""
    import dataclasses
    import datetime

    from pipelines.plan.windows import TableState, plan_windows

    options = parse_options([a for a in ARGS if a not in ("--date", "2026-11-24")])
    now = datetime.datetime(2026, 11, 25, 3, tzinfo=datetime.UTC)
    config = resolve(options, now=now)
    states = {
        "tasks": TableState("tasks", newest_day=datetime.date(2026, 11, 23), watermark=now),
        "user_interactions": TableState("user_interactions", newest_day=now.date()),
    }
    windows = plan_windows(config.tables, states, today=now.date())
    config = dataclasses.replace(config, plan=windows)
    options.view_as(TestOptions).dry_run = True
    pipeline = beam.Pipeline(options=options)
    build(pipeline, config, "DataflowRunner")
    result = pipeline.run()

    names = {t.unique_name for t in result.job.proto_pipeline.components.transforms.values()}
    assert {
        "ReadFirestore/ReadRange",  # tables never synced: full rebuild
        "ReadIncremental/ChangeRanges",
        "ReadIncremental/ReadChanges",
        "ReadIncremental/PlanReads",
        "ReadIncremental/ReadRanges",
        "Documents",
        "PlanDays/Plan",
        "RecordRun/RecordRun",
    } <= names
