"""Create or update the Cloud Scheduler jobs: nightly sync, weekly reconcile, monthly full run.

    python scripts/schedule_nightly.py --project P --region R --bucket B --dataset D \\
        [--collections a,b] [--lookback_days N] [--bq_location US] [--max_workers N] \\
        [--max_catchup_days N] [--verify_days N] [--nightly_mode incremental|full] \\
        [--name firestore-to-bq] [--schedule "0 3 * * *"] [--weekly_schedule "0 4 * * 0"] \\
        [--monthly_schedule "0 5 1 * *"] [--time_zone Etc/UTC] [--dry_run]

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
``--dry_run`` prints the request bodies and the gcloud commands.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.deploy_args import UsageError, check_location, checked, deploy_main, run_step
from pipelines.bigquery import UnsafeIdentifier, check_identifier
from pipelines.table_spec import SchemaError, load_specs, select_specs

NAME = "firestore-to-bq"
TEMPLATE_OBJECT = "templates/firestore-to-bq.json"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
PIPELINE_SA = "firestore-to-bq"
SCHEDULER_SA = "firestore-to-bq-scheduler"
#: A launch refused because the other job still runs (409) is retried for about 3.5 hours.
RETRY = ["--max-retry-attempts", "4", "--min-backoff", "30m", "--max-backoff", "1h"]

EMAIL = re.compile(r"^[a-z0-9][a-z0-9\-]*@[a-z0-9.\-]+\.iam\.gserviceaccount\.com\Z")
#: Prefix of the Scheduler jobs' names and the Dataflow job name; Dataflow's rule is stricter.
JOB_PREFIX = re.compile(r"^[a-z]([a-z0-9\-]{0,40}[a-z0-9])?\Z")


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


def render_body(args: argparse.Namespace, job: Job) -> str:
    return json.dumps(launch_body(args, job), indent=2) + "\n"


def describe_command(args: argparse.Namespace, job: Job) -> list[str]:
    return [
        "gcloud",
        "scheduler",
        "jobs",
        "describe",
        job.name(args),
        "--project",
        args.project,
        "--location",
        args.region,
    ]


def write_command(args: argparse.Namespace, job: Job, verb: str, body_file: str) -> list[str]:
    """``jobs create http`` or ``jobs update http``: the same settings, one flag apart."""
    headers = "--headers" if verb == "create" else "--update-headers"
    return [
        "gcloud",
        "scheduler",
        "jobs",
        verb,
        "http",
        job.name(args),
        "--project",
        args.project,
        "--location",
        args.region,
        "--schedule",
        job.schedule,
        "--time-zone",
        args.time_zone,
        "--uri",
        launch_url(args.project, args.region),
        "--http-method",
        "POST",
        headers,
        "Content-Type=application/json",
        "--message-body-from-file",
        body_file,
        "--oauth-service-account-email",
        args.oauth_service_account_email,
        "--oauth-token-scope",
        SCOPE,
        *RETRY,
        "--description",
        job.description,
    ]


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
    parser.add_argument(
        "--service_account", help=f"Pipeline service account (default: {PIPELINE_SA}@PROJECT)."
    )
    parser.add_argument(
        "--oauth_service_account_email",
        "--oauth-service-account-email",
        dest="oauth_service_account_email",
        help=f"Scheduler service account (default: {SCHEDULER_SA}@PROJECT).",
    )
    parser.add_argument("--dry_run", action="store_true", help="Print, run nothing.")
    args = parser.parse_args(argv)

    check_location(args.project, args.region, args.bucket)
    try:
        check_identifier(args.dataset, "--dataset")
    except UnsafeIdentifier as exc:
        raise UsageError(str(exc)) from None
    if args.collections:
        wanted = [c.strip() for c in args.collections.split(",") if c.strip()]
        try:
            select_specs(load_specs(), wanted)
        except SchemaError as exc:
            raise UsageError(str(exc)) from None
        args.collections = ",".join(wanted)
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
    domain = f"{args.project}.iam.gserviceaccount.com"
    args.service_account = args.service_account or f"{PIPELINE_SA}@{domain}"
    args.oauth_service_account_email = args.oauth_service_account_email or (
        f"{SCHEDULER_SA}@{domain}"
    )
    for email in (args.service_account, args.oauth_service_account_email):
        if not EMAIL.match(email):
            raise UsageError(f"{email!r} is not a service account email")
    return args


def print_plan(args: argparse.Namespace) -> None:
    for job in jobs(args):
        print(f"# {job.description} ({job.name(args)}, {job.schedule})")
        print(f"# Request body ({job.body_file()}):")
        print(render_body(args, job), end="")
        print("# Look the job up:")
        print(shlex.join(describe_command(args, job)))
        print("# If it does not exist:")
        print(shlex.join(write_command(args, job, "create", job.body_file())))
        print("# If it exists:")
        print(shlex.join(write_command(args, job, "update", job.body_file())))
    print(f"# {legacy_note(args)}")


def apply_job(args: argparse.Namespace, job: Job) -> int:
    """Describe the job, then update it in place or create it."""
    name = job.name(args)
    found = subprocess.run(describe_command(args, job), capture_output=True, text=True)
    if found.returncode == 0:
        verb = "update"
    elif "NOT_FOUND" in found.stderr or "not found" in found.stderr.lower():
        verb = "create"
    else:
        print(f"error: cannot look up job {name}: {found.stderr.strip()}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / job.body_file()
        body_file.write_text(render_body(args, job), encoding="utf-8")
        command = write_command(args, job, verb, str(body_file))
        if not run_step(command, what=f"gcloud scheduler jobs {verb}"):
            return 1
    print(f"{verb}d Cloud Scheduler job {name} ({job.schedule}, {args.time_zone})")
    return 0


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
    for job in jobs(args):
        if apply_job(args, job) != 0:
            return 1
    legacy = Job(LEGACY_WEEKLY, "full", "", "")
    if subprocess.run(describe_command(args, legacy), capture_output=True).returncode == 0:
        print(legacy_note(args))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return deploy_main(argv, parse_args, print_plan, apply)


if __name__ == "__main__":
    sys.exit(main())
