#!/usr/bin/env python3
"""Create or update the Cloud Scheduler job that launches the sync every night.

    python scripts/schedule_nightly.py --project P --region R --bucket B --dataset D \\
        [--collections a,b] [--lookback_days N] [--bq_location US] [--max_workers N] \\
        [--schedule "0 3 * * *"] [--time_zone Etc/UTC] [--dry_run]

The job POSTs a Flex Template launch request to the Dataflow API with an OAuth
token of a dedicated scheduler service account (which may only launch jobs that
run as the pipeline's service account). The request carries no date: the
pipeline syncs yesterday (UTC) when it is given none, so the same body is right
every night. Running this again updates the job in place (describe, then update
or create). ``--dry_run`` prints the request body and the gcloud commands.
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
from pathlib import Path
from typing import Any

# The scripts folder is not a package; its shared checks sit beside each script.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_args import UsageError, check_location  # noqa: E402

from pipelines.bigquery import UnsafeIdentifier, check_identifier
from pipelines.table_spec import SchemaError, load_specs, select_specs

JOB_NAME = "firestore-to-bq-nightly"
TEMPLATE_OBJECT = "templates/firestore-to-bq.json"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
BODY_FILE = "launch-body.json"
PIPELINE_SA = "firestore-to-bq"
SCHEDULER_SA = "firestore-to-bq-scheduler"

EMAIL = re.compile(r"^[a-z0-9][a-z0-9\-]*@[a-z0-9.\-]+\.iam\.gserviceaccount\.com\Z")


def launch_url(project: str, region: str) -> str:
    return (
        f"https://dataflow.googleapis.com/v1b3/projects/{project}/locations/{region}"
        "/flexTemplates:launch"
    )


def launch_body(args: argparse.Namespace) -> dict[str, Any]:
    """The ``flexTemplates:launch`` request: what to sync, and where and as whom to run."""
    parameters = {
        # A standard Beam option, so Dataflow accepts it without a metadata entry;
        # passed explicitly because Firestore and BigQuery clients need it.
        "project": args.project,
        "dataset": args.dataset,
    }
    if args.collections:
        parameters["collections"] = args.collections
    parameters["lookback_days"] = str(args.lookback_days)
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
            "jobName": JOB_NAME,
            "containerSpecGcsPath": f"gs://{args.bucket}/{TEMPLATE_OBJECT}",
            "parameters": parameters,
            "environment": environment,
        }
    }


def render_body(args: argparse.Namespace) -> str:
    return json.dumps(launch_body(args), indent=2) + "\n"


def describe_command(args: argparse.Namespace) -> list[str]:
    return [
        "gcloud",
        "scheduler",
        "jobs",
        "describe",
        JOB_NAME,
        "--project",
        args.project,
        "--location",
        args.region,
    ]


def write_command(args: argparse.Namespace, verb: str, body_file: str) -> list[str]:
    """``jobs create http`` or ``jobs update http``: the same settings, one flag apart."""
    headers = "--headers" if verb == "create" else "--update-headers"
    return [
        "gcloud",
        "scheduler",
        "jobs",
        verb,
        "http",
        JOB_NAME,
        "--project",
        args.project,
        "--location",
        args.region,
        "--schedule",
        args.schedule,
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
        "--description",
        f"Nightly Firestore to BigQuery sync into {args.dataset}",
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
    parser.add_argument("--schedule", default="0 3 * * *", help="Cron schedule.")
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
    print(f"# Request body ({BODY_FILE}):")
    print(render_body(args), end="")
    print("# Look the job up:")
    print(shlex.join(describe_command(args)))
    print("# If it does not exist:")
    print(shlex.join(write_command(args, "create", BODY_FILE)))
    print("# If it exists:")
    print(shlex.join(write_command(args, "update", BODY_FILE)))


def apply(args: argparse.Namespace) -> int:
    """Describe the job, then update it in place or create it."""
    found = subprocess.run(describe_command(args), capture_output=True, text=True)
    if found.returncode == 0:
        verb = "update"
    elif "NOT_FOUND" in found.stderr or "not found" in found.stderr.lower():
        verb = "create"
    else:
        print(f"error: cannot look up job {JOB_NAME}: {found.stderr.strip()}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / BODY_FILE
        body_file.write_text(render_body(args), encoding="utf-8")
        command = write_command(args, verb, str(body_file))
        print(f"+ {shlex.join(command)}", file=sys.stderr, flush=True)
        done = subprocess.run(command)
    if done.returncode != 0:
        print(f"error: gcloud scheduler jobs {verb} exited with {done.returncode}", file=sys.stderr)
        return 1
    print(f"{verb}d Cloud Scheduler job {JOB_NAME} ({args.schedule}, {args.time_zone})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print_plan(args)
        return 0
    try:
        return apply(args)
    except FileNotFoundError:
        print("error: gcloud is not installed", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
