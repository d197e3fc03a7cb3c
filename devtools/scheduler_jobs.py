"""Cloud Scheduler HTTP jobs, as the deploy scripts create them: look one up, then update
it in place or create it; in a dry run, print the request body and the gcloud commands.

Shared by ``schedule_nightly`` (jobs that launch the Flex Template on Dataflow) and
``deploy_cloud_run_job`` (the hourly job that runs the Cloud Run Job), so both say the
same thing the same way and a fix to one reaches the other.
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

from devtools.deploy_args import UsageError, run_step
from pipelines.convert.table_spec import SchemaError, load_specs, select_specs
from pipelines.services.bigquery import UnsafeIdentifier, check_identifier

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
EMAIL = re.compile(r"^[a-z0-9][a-z0-9\-]*@[a-z0-9.\-]+\.iam\.gserviceaccount\.com\Z")
#: Prefix of the Scheduler jobs' names (and of the Dataflow and Cloud Run job names, whose
#: rules are stricter than Scheduler's).
JOB_PREFIX = re.compile(r"^[a-z]([a-z0-9\-]{0,40}[a-z0-9])?\Z")
#: Account names ``scripts/create_service_accounts.sh`` creates: the one a sync runs as,
#: and the one Cloud Scheduler calls Google APIs as.
PIPELINE_SA = "firestore-to-bq"
SCHEDULER_SA = "firestore-to-bq-scheduler"


def add_accounts(parser: argparse.ArgumentParser, runs_as: str) -> None:
    """``--service_account`` (``runs_as`` says what runs as it) and the scheduler's account."""
    parser.add_argument("--service_account", help=f"{runs_as} (default: {PIPELINE_SA}@PROJECT).")
    parser.add_argument(
        "--oauth_service_account_email",
        "--oauth-service-account-email",
        dest="oauth_service_account_email",
        help=f"Scheduler service account (default: {SCHEDULER_SA}@PROJECT).",
    )


def check_accounts(args: argparse.Namespace) -> None:
    """Fill in the default accounts of ``args.project``; refuse anything else than an email."""
    domain = f"{args.project}.iam.gserviceaccount.com"
    args.service_account = args.service_account or f"{PIPELINE_SA}@{domain}"
    args.oauth_service_account_email = args.oauth_service_account_email or (
        f"{SCHEDULER_SA}@{domain}"
    )
    for email in (args.service_account, args.oauth_service_account_email):
        if not EMAIL.match(email):
            raise UsageError(f"{email!r} is not a service account email")


def check_target(args: argparse.Namespace) -> None:
    """``--dataset`` and ``--collections`` (normalised), which end up in the sync's arguments;
    the collections are looked up in the image's schema folder (``args.schemas``) when the
    script names one."""
    try:
        check_identifier(args.dataset, "--dataset")
    except UnsafeIdentifier as exc:
        raise UsageError(str(exc)) from None
    if args.collections:
        wanted = [c.strip() for c in args.collections.split(",") if c.strip()]
        schemas = getattr(args, "schemas", None)
        try:
            select_specs(schemas.specs if schemas else load_specs(), wanted)
        except SchemaError as exc:
            raise UsageError(str(exc)) from None
        args.collections = ",".join(wanted)


@dataclass(frozen=True)
class Where:
    """Where the Scheduler job lives and as whom it calls: the same for every job of a run."""

    project: str
    region: str
    time_zone: str
    oauth_service_account_email: str


@dataclass(frozen=True)
class HttpJob:
    """One Scheduler job: a POST of ``body`` to ``uri`` on ``schedule``."""

    name: str
    schedule: str
    description: str
    uri: str
    body: dict[str, Any]
    body_file: str
    retry: Sequence[str] = ()

    def render_body(self) -> str:
        return json.dumps(self.body, indent=2) + "\n"


def describe_command(job: HttpJob, where: Where) -> list[str]:
    return [
        "gcloud", "scheduler", "jobs", "describe", job.name,
        "--project", where.project, "--location", where.region,
    ]  # fmt: skip


def write_command(job: HttpJob, where: Where, verb: str, body_file: str) -> list[str]:
    """``jobs create http`` or ``jobs update http``: the same settings, one flag apart."""
    headers = "--headers" if verb == "create" else "--update-headers"
    return [
        "gcloud", "scheduler", "jobs", verb, "http", job.name,
        "--project", where.project, "--location", where.region,
        "--schedule", job.schedule, "--time-zone", where.time_zone,
        "--uri", job.uri, "--http-method", "POST",
        headers, "Content-Type=application/json",
        "--message-body-from-file", body_file,
        "--oauth-service-account-email", where.oauth_service_account_email,
        "--oauth-token-scope", SCOPE,
        *job.retry,
        "--description", job.description,
    ]  # fmt: skip


def print_job(job: HttpJob, where: Where) -> None:
    """The dry run of one job: its request body, then each gcloud command it may run."""
    print(f"# {job.description} ({job.name}, {job.schedule})")
    print(f"# Request body ({job.body_file}):")
    print(job.render_body(), end="")
    print("# Look the job up:")
    print(shlex.join(describe_command(job, where)))
    print("# If it does not exist:")
    print(shlex.join(write_command(job, where, "create", job.body_file)))
    print("# If it exists:")
    print(shlex.join(write_command(job, where, "update", job.body_file)))


def exists(job: HttpJob, where: Where) -> bool:
    """Whether the job is there (any lookup failure reads as no)."""
    return subprocess.run(describe_command(job, where), capture_output=True).returncode == 0


def apply_job(job: HttpJob, where: Where) -> int:
    """Describe the job, then update it in place or create it; 1 (said why) on a failure,
    a lookup that fails for another reason than a missing job included."""
    found = subprocess.run(describe_command(job, where), capture_output=True, text=True)
    if found.returncode == 0:
        verb = "update"
    elif "NOT_FOUND" in found.stderr or "not found" in found.stderr.lower():
        verb = "create"
    else:
        print(f"error: cannot look up job {job.name}: {found.stderr.strip()}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / job.body_file
        body_file.write_text(job.render_body(), encoding="utf-8")
        command = write_command(job, where, verb, str(body_file))
        if not run_step(command, what=f"gcloud scheduler jobs {verb}"):
            return 1
    print(f"{verb}d Cloud Scheduler job {job.name} ({job.schedule}, {where.time_zone})")
    return 0
