"""What the deploy scripts share: argument checks for names that end up in gcloud commands,
running a gcloud step, and the shape of their ``main``."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pipelines.services.bigquery import PROJECT_ID

REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+\Z")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9._\-]{1,220}[a-z0-9]\Z")
#: ``(default)`` or a named database: 4-63 lowercase letters, digits and hyphens.
DATABASE = re.compile(r"^(\(default\)|[a-z][a-z0-9\-]{2,61}[a-z0-9])\Z")


class UsageError(ValueError):
    """A bad argument, reported in one line before anything runs."""


def checked(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.match(value or ""):
        raise UsageError(f"{what} {value!r} is not valid")
    return value


def check_location(project: str, region: str, bucket: str) -> None:
    """``--project``, ``--region`` and ``--bucket``, which every deploy script takes."""
    checked(project, PROJECT_ID, "--project")
    checked(region, REGION, "--region")
    checked(bucket, BUCKET, "--bucket")


def run_step(command: Sequence[str], *, what: str, cwd: Path | None = None) -> bool:
    """Run one command, echoed as ``+ command`` on stderr; False, said in one line, if it fails."""
    print(f"+ {shlex.join(command)}", file=sys.stderr, flush=True)
    done = subprocess.run(list(command), cwd=cwd)
    if done.returncode != 0:
        print(f"error: {what} exited with {done.returncode}", file=sys.stderr)
        return False
    return True


def deploy_main(
    argv: Sequence[str] | None,
    parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
    dry_run: Callable[[argparse.Namespace], None],
    apply: Callable[[argparse.Namespace], int],
    ready: Callable[[], bool] | None = None,
) -> int:
    """Every deploy script's ``main``: check the arguments (exit 2 on a bad one) and ``ready``
    (exit 1 when it fails; it says why), then print what it would run (``--dry_run``) or run
    it (exit 1 when gcloud is missing or fails)."""
    try:
        args = parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if ready is not None and not ready():
        return 1
    if args.dry_run:
        dry_run(args)
        return 0
    try:
        return apply(args)
    except FileNotFoundError as exc:
        print(f"error: {exc.filename or 'gcloud'} is not installed", file=sys.stderr)
        return 1
