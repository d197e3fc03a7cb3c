"""Deploy the hourly intraday sync as a Cloud Run Job, and the Cloud Scheduler job that runs it.

    python scripts/deploy_cloud_run_job.py --project P --region R --dataset D \\
        [--collections a,b] [--bq_location US] [--verify_days N] \\
        [--repository firestore-to-bq] [--tag TAG | --image URI] \\
        [--memory 2Gi] [--cpu 1] [--task_timeout_minutes 50] \\
        [--name firestore-to-bq] [--schedule "7 * * * *"] [--time_zone Etc/UTC] \\
        [--schemas_dir DIR] [--dry_run]

An hourly increment of a few thousand documents does not need Dataflow's workers,
and would pay their start-up (minutes) every hour. The Cloud Run Job runs the same
launcher image ``scripts/build_template.py`` builds, with the pipeline in process
(``--runner DirectRunner``) and ``--intraday`` (today's changes upserted, no day
declared complete), as the pipeline's service account. Three steps, each idempotent:
``gcloud run jobs deploy`` (creates or updates the job), a ``roles/run.invoker``
grant on that job alone to the scheduler's service account, and the Scheduler job
``NAME-hourly`` that POSTs ``jobs/NAME:run`` to the Cloud Run Admin API with an
OAuth token of that account (looked up, then updated or created). The job carries
its arguments, so the request body is empty and the scheduler needs no right to
override them. The image carries one schema folder (``build_template.py
--schemas_dir``); ``--schemas_dir`` here (default ``$F2BQ_SCHEMAS_DIR``, else
``schemas/``) names it, so ``--collections`` is checked against its tables and the
dry run says which folder the job runs with. A schema change means rebuilding the
image and deploying again (the job keeps the image it was deployed with).
``--dry_run`` prints the folder, every command and the request body.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from devtools import build_template
from devtools.deploy_args import (
    REGION,
    UsageError,
    add_schemas_dir,
    checked,
    deploy_main,
    image_schemas,
    run_step,
)
from devtools.scheduler_jobs import (
    JOB_PREFIX,
    HttpJob,
    Where,
    add_accounts,
    apply_job,
    check_accounts,
    check_target,
    print_job,
)
from pipelines.services.bigquery import PROJECT_ID

NAME = "firestore-to-bq"
INVOKER_ROLE = "roles/run.invoker"
#: One task of 1 vCPU: the in-process runner (``in_memory``) is one Python process, so a
#: second vCPU would idle; Cloud Run Jobs take no less than 1 vCPU.
CPUS = ("1", "2", "4", "6", "8")
#: Memory each vCPU count allows, in MiB (https://cloud.google.com/run/docs/configuring/jobs/cpu).
MEMORY_RANGE = {"1": (512, 4096), "2": (512, 8192), "4": (2048, 16384), "6": (4096, 24576)}
MEMORY_RANGE["8"] = (4096, 32768)
MEMORY = re.compile(r"^([1-9][0-9]*)(Mi|Gi)\Z")
#: Cloud Run's longest task timeout is 24 hours (unverified for every release: see docs).
MAX_TASK_TIMEOUT_MINUTES = 24 * 60


def pipeline_args(args: argparse.Namespace) -> list[str]:
    """What the container runs: the intraday sync, in process. Its leases need no
    setting: the run renews them while it lives, and a task killed at its timeout
    blocks the next hourly run for ``--lease_minutes`` (10) at most."""
    command = [
        "-m", "pipelines.firestore_to_bq",
        "--project", args.project,
        "--dataset", args.dataset,
        "--intraday",
        "--bq_location", args.bq_location,
        # In process: the FnApiRunner in this one container (see local_runner), which also
        # makes the run wait for its pipeline and print its summary (see hands_over).
        "--runner", "DirectRunner",
        "--direct_running_mode", "in_memory",
    ]  # fmt: skip
    if args.collections:
        command += ["--collections", args.collections]
    if args.verify_days is not None:
        command += ["--verify_days", str(args.verify_days)]
    return command


def gcloud_list(values: Sequence[str]) -> str:
    """A gcloud list flag's value: comma-separated, or with another delimiter (gcloud's
    ``^;^`` escape, ``gcloud topic escaping``) when a value holds a comma."""
    if not any("," in value for value in values):
        return ",".join(values)
    if any(";" in value for value in values):
        raise UsageError("an argument holds both ',' and ';': gcloud cannot pass it")
    return "^;^" + ";".join(values)


def deploy_command(args: argparse.Namespace) -> list[str]:
    """``gcloud run jobs deploy``: creates the job, or updates it in place."""
    return [
        "gcloud", "run", "jobs", "deploy", args.name,
        "--project", args.project, "--region", args.region,
        "--image", args.image,
        "--service-account", args.service_account,
        "--memory", args.memory, "--cpu", args.cpu,
        "--task-timeout", f"{args.task_timeout_minutes}m",
        # A failed run is not retried: the next hour's run reads everything since the
        # last successful one, so a retry would only repeat the failure sooner.
        "--max-retries", "0",
        "--tasks", "1",
        "--command", "python",
        # One token: a value that starts with "-" would read as a flag of gcloud's own.
        f"--args={gcloud_list(pipeline_args(args))}",
    ]  # fmt: skip


def invoker_command(args: argparse.Namespace) -> list[str]:
    """The scheduler's account may run this job (``run.jobs.run``), no other and nothing more."""
    return [
        "gcloud", "run", "jobs", "add-iam-policy-binding", args.name,
        "--project", args.project, "--region", args.region,
        f"--member=serviceAccount:{args.oauth_service_account_email}",
        f"--role={INVOKER_ROLE}",
    ]  # fmt: skip


def run_url(args: argparse.Namespace) -> str:
    return (
        f"https://run.googleapis.com/v2/projects/{args.project}/locations/{args.region}"
        f"/jobs/{args.name}:run"
    )


def hourly_job(args: argparse.Namespace) -> HttpJob:
    """The Scheduler job: ``jobs:run`` with an empty body (the job carries its arguments).

    Not retried: ``:run`` starts an execution and returns, so there is no busy job to
    wait for, and a missed hour is caught up by the next.
    """
    body: dict[str, Any] = {}
    return HttpJob(
        name=f"{args.name}-hourly",
        schedule=args.schedule,
        description=f"Hourly intraday Firestore to BigQuery sync into {args.dataset} on Cloud Run",
        uri=run_url(args),
        body=body,
        body_file="run-body-hourly.json",
    )


def where(args: argparse.Namespace) -> Where:
    return Where(args.project, args.region, args.time_zone, args.oauth_service_account_email)


def memory_mib(text: str) -> int:
    match = MEMORY.match(text)
    if not match:
        raise UsageError(f"--memory {text!r} is not valid: use e.g. 512Mi or 2Gi")
    return int(match[1]) * (1024 if match[2] == "Gi" else 1)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True, help="Google Cloud project id.")
    parser.add_argument("--region", required=True, help="Region of the Run and Scheduler jobs.")
    parser.add_argument("--dataset", required=True, help="BigQuery dataset to sync into.")
    parser.add_argument("--collections", default="", help="Comma-separated subset to sync.")
    parser.add_argument("--bq_location", default="US", help="Location of the dataset.")
    parser.add_argument(
        "--verify_days", type=int, help="Days before today checked for drift (pipeline's)."
    )
    parser.add_argument(
        "--repository",
        default=build_template.IMAGE_NAME,
        help="Artifact Registry repository of the launcher image (as build_template's).",
    )
    parser.add_argument("--tag", help="Image tag (default: the git commit, as build_template's).")
    parser.add_argument("--image", help="Full image URI instead of --repository and --tag.")
    parser.add_argument("--memory", default="2Gi", help="Memory of the task (default 2Gi).")
    parser.add_argument("--cpu", default="1", help="vCPUs of the task (default 1).")
    parser.add_argument(
        "--task_timeout_minutes",
        type=int,
        default=50,
        help="Longest a run may take (default 50, so an hourly run ends before the next).",
    )
    parser.add_argument(
        "--name", default=NAME, help="Cloud Run Job name; the Scheduler job is NAME-hourly."
    )
    parser.add_argument(
        "--schedule",
        default="7 * * * *",
        help="Cron schedule (default 7 past every hour, off the nightly's and weekly's hour).",
    )
    parser.add_argument("--time_zone", default="Etc/UTC", help="Time zone of the schedule.")
    add_accounts(parser, "Account the job runs as")
    add_schemas_dir(parser)
    parser.add_argument("--dry_run", action="store_true", help="Print, run nothing.")
    args = parser.parse_args(argv)
    check(args)
    return args


def check(args: argparse.Namespace) -> None:
    """Every value that ends up in a command, checked before anything runs."""
    checked(args.project, PROJECT_ID, "--project")
    checked(args.region, REGION, "--region")
    args.schemas = image_schemas(args.schemas_dir)
    check_target(args)
    if args.verify_days is not None and args.verify_days < 0:
        raise UsageError("--verify_days must be 0 or more")
    checked(args.name, JOB_PREFIX, "--name")
    if not args.schedule.strip():
        raise UsageError("--schedule must not be empty")
    if args.cpu not in CPUS:
        raise UsageError(f"--cpu must be one of {', '.join(CPUS)}, not {args.cpu!r}")
    low, high = MEMORY_RANGE[args.cpu]
    if not low <= memory_mib(args.memory) <= high:
        raise UsageError(
            f"--memory {args.memory} does not fit {args.cpu} vCPU: "
            f"Cloud Run allows {low}Mi to {high // 1024}Gi"
        )
    if not 1 <= args.task_timeout_minutes <= MAX_TASK_TIMEOUT_MINUTES:
        raise UsageError(f"--task_timeout_minutes must be between 1 and {MAX_TASK_TIMEOUT_MINUTES}")
    if args.image and args.tag:
        raise UsageError("pass --image or --tag, not both")
    if not args.image:
        checked(args.repository, build_template.REPOSITORY, "--repository")
        args.tag = checked(args.tag or build_template.default_tag(), build_template.TAG, "--tag")
        args.image = build_template.image_uri(args)
    elif any(c.isspace() for c in args.image) or "/" not in args.image:
        raise UsageError(f"--image {args.image!r} is not an image URI")
    check_accounts(args)
    gcloud_list(pipeline_args(args))  # refuses an argument gcloud could not pass


def print_plan(args: argparse.Namespace) -> None:
    print(args.schemas.deployed(f"Cloud Run Job {args.name}", ", then deploying the job again"))
    print(
        f"# Cloud Run Job {args.name}: the intraday sync in process (DirectRunner), "
        f"{args.cpu} vCPU, {args.memory}, task timeout {args.task_timeout_minutes}m, "
        f"as {args.service_account}"
    )
    print(shlex.join(deploy_command(args)))
    print(f"# The scheduler's account may run this job, and no other ({INVOKER_ROLE}):")
    print(shlex.join(invoker_command(args)))
    print_job(hourly_job(args), where(args))


def apply(args: argparse.Namespace) -> int:
    """Deploy the job, grant the invoker role on it, then schedule it; stop at a failure."""
    print(args.schemas.deployed(f"Cloud Run Job {args.name}", ", then deploying the job again"))
    if not run_step(deploy_command(args), what="gcloud run jobs deploy"):
        return 1
    print(f"deployed Cloud Run Job {args.name} ({args.image})")
    if not run_step(invoker_command(args), what="gcloud run jobs add-iam-policy-binding"):
        return 1
    return apply_job(hourly_job(args), where(args))


def main(argv: Sequence[str] | None = None) -> int:
    return deploy_main(argv, parse_args, print_plan, apply)


if __name__ == "__main__":
    sys.exit(main())
