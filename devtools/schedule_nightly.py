"""Create or update the Cloud Scheduler jobs: nightly sync, weekly reconcile, monthly full run.

    python scripts/schedule_nightly.py --project P --region R --bucket B --dataset D \\
        [--collections a,b] [--lookback_days N] [--bq_location US] [--max_workers N] \\
        [--max_catchup_days N] [--verify_days N] [--nightly_mode incremental|full] \\
        [--name firestore-to-bq] [--schedule "0 3 * * *"] [--weekly_schedule "0 4 * * 0"] \\
        [--monthly_schedule "0 5 1 * *"] [--time_zone Etc/UTC] [--schemas_dir DIR] [--dry_run]

Each job POSTs a Flex Template launch request to the Dataflow API with an OAuth
token of a dedicated scheduler service account (which may only launch jobs that
run as the pipeline's service account). The requests carry no date, so the same
body is right every time: the nightly (``mode=incremental``) catches up from the
last successful run to yesterday (UTC) and reads only what changed; the weekly
reconcile (``mode=reconcile``) is the nightly with its ``count()`` drift check
over each table's whole history (old hard deletes, documents that left a day
unseen), re-reading only the days that differ; the monthly full run
(``mode=full``) reads whole collections and replaces every day, which is what
catches what counts cannot see (in-place edits of tables without a change field,
partition values that are not timestamps). Running this again updates the jobs
in place (describe, then update or create); a ``NAME-weekly-full`` job left by
an earlier version is named with the command that deletes it.
The jobs launch the template ``scripts/build_template.py`` published, whose image
carries one schema folder; ``--schemas_dir`` (default ``$F2BQ_SCHEMAS_DIR``, else
``schemas/``) names that folder: ``--collections`` is checked against its tables,
and the dry run says which folder the image must have been built with.
``--dry_run`` prints the folder, the request bodies and the gcloud commands.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from devtools.deploy_args import (
    UsageError,
    add_schemas_dir,
    check_location,
    checked,
    deploy_main,
    image_schemas,
)
from devtools.scheduler_jobs import (
    JOB_PREFIX,
    HttpJob,
    Where,
    add_accounts,
    apply_job,
    check_accounts,
    check_target,
    exists,
    print_job,
)

NAME = "firestore-to-bq"
TEMPLATE_OBJECT = "templates/firestore-to-bq.json"
#: A launch refused because the other job still runs (409) is retried for about 3.5 hours.
RETRY = ["--max-retry-attempts", "4", "--min-backoff", "30m", "--max-backoff", "1h"]


@dataclass(frozen=True)
class Job:
    """One scheduled launch: the same template, its own name, schedule and mode."""

    suffix: str
    mode: str
    schedule: str
    description: str

    def name(self, args: argparse.Namespace) -> str:
        return f"{args.name}-{self.suffix}"

    def body_file(self) -> str:
        return f"launch-body-{self.suffix}.json"


#: The weekly full job of earlier versions, replaced by the weekly reconcile.
LEGACY_WEEKLY = "weekly-full"


def jobs(args: argparse.Namespace) -> list[Job]:
    """The nightly incremental run, the weekly reconcile, the monthly full run."""
    return [
        Job(
            "nightly",
            args.nightly_mode,
            args.schedule,
            f"Nightly {args.nightly_mode} Firestore to BigQuery sync into {args.dataset}",
        ),
        Job(
            "weekly-reconcile",
            "reconcile",
            args.weekly_schedule,
            f"Weekly Firestore to BigQuery reconcile of {args.dataset} (counts per day)",
        ),
        Job(
            "monthly-full",
            "full",
            args.monthly_schedule,
            f"Monthly full Firestore to BigQuery rebuild of {args.dataset}",
        ),
    ]


def launch_url(project: str, region: str) -> str:
    return (
        f"https://dataflow.googleapis.com/v1b3/projects/{project}/locations/{region}"
        "/flexTemplates:launch"
    )


def launch_body(args: argparse.Namespace, job: Job) -> dict[str, Any]:
    """The ``flexTemplates:launch`` request: what to sync, and where and as whom to run."""
    parameters = {
        # A standard Beam option, so Dataflow accepts it without a metadata entry;
        # passed explicitly because Firestore and BigQuery clients need it.
        "project": args.project,
        "dataset": args.dataset,
        "mode": job.mode,
    }
    if args.collections:
        parameters["collections"] = args.collections
    if job.mode in ("incremental", "reconcile"):
        # A full run without dates replaces every day: a window or its limits mean nothing.
        parameters["lookback_days"] = str(args.lookback_days)
        for option in ("max_catchup_days", "verify_days"):
            if getattr(args, option) is not None:
                parameters[option] = str(getattr(args, option))
    parameters["bq_location"] = args.bq_location
    environment: dict[str, Any] = {
        "serviceAccountEmail": args.service_account,
        "maxWorkers": args.max_workers,
        "tempLocation": f"gs://{args.bucket}/temp",
        "stagingLocation": f"gs://{args.bucket}/staging",
    }
    if args.machine_type:
        environment["machineType"] = args.machine_type
    return {
        "launchParameter": {
            # One Dataflow job name for both jobs: Dataflow refuses to launch a job
            # while one of the same name runs, so a weekly run never overlaps a
            # nightly still running (their commits would interleave snapshots).
            "jobName": args.name,
            "containerSpecGcsPath": f"gs://{args.bucket}/{TEMPLATE_OBJECT}",
            "parameters": parameters,
            "environment": environment,
        }
    }


def http_job(args: argparse.Namespace, job: Job) -> HttpJob:
    """The Scheduler job that POSTs this launch, retried while the other job still runs."""
    return HttpJob(
        name=job.name(args),
        schedule=job.schedule,
        description=job.description,
        uri=launch_url(args.project, args.region),
        body=launch_body(args, job),
        body_file=job.body_file(),
        retry=RETRY,
    )


def where(args: argparse.Namespace) -> Where:
    return Where(args.project, args.region, args.time_zone, args.oauth_service_account_email)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True, help="Google Cloud project id.")
    parser.add_argument("--region", required=True, help="Region of the job and of Dataflow.")
    parser.add_argument("--bucket", required=True, help="Bucket with the template and temp files.")
    parser.add_argument("--dataset", required=True, help="BigQuery dataset to sync into.")
    parser.add_argument("--collections", default="", help="Comma-separated subset to sync.")
    parser.add_argument("--lookback_days", type=int, default=0, help="Days rebuilt before.")
    parser.add_argument("--bq_location", default="US", help="Location of the dataset.")
    parser.add_argument("--max_workers", type=int, default=10, help="Dataflow worker cap.")
    parser.add_argument("--machine_type", help="Dataflow worker machine type.")
    parser.add_argument(
        "--max_catchup_days", type=int, help="Nightly: most missed days caught up (pipeline's)."
    )
    parser.add_argument(
        "--verify_days", type=int, help="Nightly: recent days checked for drift (pipeline's)."
    )
    parser.add_argument(
        "--name",
        default=NAME,
        help="Job name prefix: NAME-nightly, NAME-weekly-reconcile, NAME-monthly-full.",
    )
    parser.add_argument("--schedule", default="0 3 * * *", help="Cron schedule of the nightly.")
    parser.add_argument(
        "--nightly_mode",
        default="incremental",
        help="incremental, or full: the nightly reads whole collections too (no indexes needed).",
    )
    parser.add_argument(
        "--weekly_schedule",
        default="0 4 * * 0",
        help="Cron schedule of the weekly reconcile (default Sunday 04:00, after the nightly).",
    )
    parser.add_argument(
        "--monthly_schedule",
        default="0 5 1 * *",
        help="Cron schedule of the monthly full run (default the 1st, 05:00).",
    )
    parser.add_argument("--time_zone", default="Etc/UTC", help="Time zone of the schedule.")
    add_accounts(parser, "Pipeline service account")
    add_schemas_dir(parser)
    parser.add_argument("--dry_run", action="store_true", help="Print, run nothing.")
    args = parser.parse_args(argv)

    check_location(args.project, args.region, args.bucket)
    args.schemas = image_schemas(args.schemas_dir)
    check_target(args)
    if args.lookback_days < 0:
        raise UsageError("--lookback_days must be 0 or more")
    if args.max_workers < 1:
        raise UsageError("--max_workers must be 1 or more")
    if args.max_catchup_days is not None and args.max_catchup_days < 1:
        raise UsageError("--max_catchup_days must be 1 or more")
    if args.verify_days is not None and args.verify_days < 0:
        raise UsageError("--verify_days must be 0 or more")
    checked(args.name, JOB_PREFIX, "--name")
    if args.nightly_mode not in ("incremental", "full"):
        raise UsageError(f"--nightly_mode must be incremental or full, not {args.nightly_mode!r}")
    schedules = (args.schedule, args.weekly_schedule, args.monthly_schedule)
    if len(set(schedules)) < len(schedules):
        raise UsageError("--schedule, --weekly_schedule and --monthly_schedule must differ")
    check_accounts(args)
    return args


def print_plan(args: argparse.Namespace) -> None:
    print(args.schemas.deployed("The Flex Template"))
    for job in jobs(args):
        print_job(http_job(args, job), where(args))
    print(f"# {legacy_note(args)}")


def legacy_note(args: argparse.Namespace) -> str:
    """What to do about the weekly full job an earlier version scheduled."""
    name = f"{args.name}-{LEGACY_WEEKLY}"
    delete = ["gcloud", "scheduler", "jobs", "delete", name]
    delete += ["--project", args.project, "--location", args.region]
    return (
        f"note: {name} (weekly full runs, from an earlier version) is replaced by "
        f"{args.name}-weekly-reconcile; if it exists, delete it: {shlex.join(delete)}"
    )


def apply(args: argparse.Namespace) -> int:
    """Every job, nightly first; stop at the first that fails. Then, if the weekly
    full job of an earlier version exists, say how to delete it (it is not
    deleted here: it may carry settings someone chose)."""
    print(args.schemas.deployed("The Flex Template"))
    for job in jobs(args):
        if apply_job(http_job(args, job), where(args)) != 0:
            return 1
    legacy = http_job(args, Job(LEGACY_WEEKLY, "full", "", ""))
    if exists(legacy, where(args)):
        print(legacy_note(args))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return deploy_main(argv, parse_args, print_plan, apply)


if __name__ == "__main__":
    sys.exit(main())
