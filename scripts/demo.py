#!/usr/bin/env python3
"""The whole product on one laptop: emulators, sample data, a backfill, the result.

    make demo        # or: .venv/bin/python scripts/demo.py [--users 4] [--days 5] [--keep]
    make demo KEEP=1 # the same with --keep

Starts the Firestore and BigQuery emulators (``devtools/emulators.py``), seeds a
few users' chats, tasks, memories, projects and routines over several days,
runs the pipeline as a backfill of those days on the DirectRunner, then prints
each table's day partitions and a few rows, and ends with one sample user's
``user_analytics`` and ``task_completion_rate``. ``--keep`` leaves the emulators up
(their ``export`` lines are printed, and the command that stops them) so you can
query them yourself.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
from pathlib import Path

from devtools import REPO_ROOT, emulators, example_app_env, sample_data

DATASET = "app_analytics"


def show_tables(project: str, dataset: str) -> None:
    from pipelines.convert.table_spec import load_specs
    from pipelines.services import bigquery as bq

    client = bq.make_client(project)
    for spec in load_specs().values():
        table = bq.table_sql(project, dataset, spec.name)
        part = f"DATE({spec.partition_column})"
        print(
            f"\n== {spec.name}  (partitioned by DAY({spec.partition_column}), "
            f"clustered by {', '.join(spec.clustering)})"
        )
        job = bq.run_query(
            client, f"SELECT {part} AS day, COUNT(*) AS n FROM {table} GROUP BY day ORDER BY day"
        )
        for row in job.result():
            print(f"  partition {row['day']:%Y%m%d}: {row['n']:>4} rows")
        shown = [c.name for c in spec.columns][:6]
        job = bq.run_query(
            client,
            f"SELECT {', '.join(shown)} FROM {table} ORDER BY {spec.partition_column} LIMIT 3",
        )
        for row in job.result():
            print("  " + " | ".join(f"{c}={_short(row[c])}" for c in shown))
    job = bq.run_query(
        client,
        f"SELECT table_name, COUNT(*) AS n FROM {bq.table_sql(project, dataset, '_dead_letters')}"
        " GROUP BY table_name ORDER BY table_name",
    )
    dead = {row["table_name"]: row["n"] for row in job.result()}
    print(f"\n== _dead_letters: {dead or 'none'}")


def show_analytics(project: str, dataset: str, user_id: str) -> None:
    from f2bq_analytics.analytics import Analytics, to_json

    analytics = Analytics(project, dataset)
    print(f"\n== analytics for user {user_id}  (f2bq_analytics/analytics.py)")
    print(f"user_analytics: {to_json(analytics.user_analytics(user_id), indent=None)}")
    print(f"task_completion_rate: {to_json(analytics.task_completion_rate(user_id), indent=None)}")


def stop_command(state_dir: Path) -> str:
    """What stops the emulators a ``--keep`` demo left running in ``state_dir``."""
    state_dir = state_dir.resolve()
    shown = state_dir.relative_to(REPO_ROOT) if state_dir.is_relative_to(REPO_ROOT) else state_dir
    return f".venv/bin/python scripts/emulators.py down --state-dir {shlex.quote(str(shown))}"


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 28 else text[:27] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="Leave the emulators running.")
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".emulators" / "demo")
    args = parser.parse_args(argv)

    # The sample data is the example app's: its tables, whatever schemas/ holds.
    os.environ.update(example_app_env())
    emu = emulators.emulators_from_state(args.state_dir) or emulators.start(args.state_dir)
    os.environ.update(emu.env())
    try:
        from google.cloud import firestore

        from pipelines import firestore_to_bq

        emu.reset_firestore()
        end = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
        start = end - datetime.timedelta(days=args.days - 1)
        db = firestore.Client(project=emu.project)
        n = sample_data.write(db, sample_data.documents(args.users, args.days, end))
        # Two documents the app should never have written, to show the dead-letter path.
        bad = sample_data.write(db, sample_data.broken_documents(end))
        print(
            f"seeded {n} documents for {args.users} users over {start}..{end}, "
            f"plus {bad} broken ones\n"
        )
        code = firestore_to_bq.main(
            [
                "--project", emu.project,
                "--dataset", DATASET,
                "--start_date", start.isoformat(),
                "--end_date", end.isoformat(),
            ]
        )  # fmt: skip
        if code != 0:
            return code
        show_tables(emu.project, DATASET)
        first_path, _ = next(sample_data.documents(args.users, args.days, end))
        show_analytics(emu.project, DATASET, first_path.split("/")[1])
    finally:
        if args.keep:
            schemas = " ".join(f"{k}={shlex.quote(v)}" for k, v in example_app_env().items())
            print("\nemulators left running; to use them:\n" + emu.export_lines())
            print(f"export {schemas}  # the demo's tables, the example app's")
            print(f"to stop them and delete their data:\n{stop_command(args.state_dir)}")
        else:
            emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
