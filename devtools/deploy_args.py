"""What the deploy scripts share: argument checks for names that end up in gcloud commands,
the schema folder the image carries, running a gcloud step, and the shape of their ``main``."""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools import REPO_ROOT
from pipelines.convert.table_spec import SCHEMAS_DIR_ENV, TableSpec, check_specs
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


#: A folder name that can travel as a Docker build argument and a Cloud Build substitution.
PATH_PART = re.compile(r"^[A-Za-z0-9_.\-]+\Z")


@dataclass(frozen=True)
class ImageSchemas:
    """The schema folder an image carries: where it is, how the scripts name it, its tables."""

    path: Path
    shown: str
    specs: dict[str, TableSpec]

    def built(self) -> str:
        """``build_template``'s line naming the folder (docs/deploy.md shows it)."""
        return (
            f"# Table schemas baked into the image: {self.shown}/ (copied in as its schemas/; "
            "every run it starts reads them), so a schema change means rebuilding the image"
        )

    def deployed(self, what: str, then: str = "") -> str:
        """The line of a script that deploys what runs the image: which folder it carries,
        and what a schema change takes (``then``: after rebuilding the image)."""
        return (
            f"# {what} runs the table schemas baked into the image: {self.shown}/ when built "
            f"with scripts/build_template.py --schemas_dir {self.shown}; a schema change means "
            f"rebuilding the image{then}"
        )


def add_schemas_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schemas_dir",
        help=f"Table schemas the image carries (default: ${SCHEMAS_DIR_ENV}, else schemas/).",
    )


def image_schemas(value: str | None, root: Path = REPO_ROOT) -> ImageSchemas:
    """``--schemas_dir``, else ``$F2BQ_SCHEMAS_DIR``, else the checkout's ``schemas/``,
    checked as ``firestore-to-bq schema check`` does: an image must never carry a folder
    the sync would refuse. A relative path is taken from the current folder."""
    given = value or os.environ.get(SCHEMAS_DIR_ENV)
    where = "--schemas_dir" if value else SCHEMAS_DIR_ENV if given else "schemas/"
    path = Path(given).resolve() if given else root / "schemas"
    try:
        specs, problems = check_specs(path)
    except OSError:
        raise UsageError(f"{where}: cannot read {path}") from None
    if problems:
        raise UsageError(
            f"{where}: {path} has {len(problems)} schema error"
            f"{'' if len(problems) == 1 else 's'} ({problems[0]}); "
            f"see firestore-to-bq schema check --schemas_dir {path}"
        )
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    return ImageSchemas(path, shown, specs)


def build_context_path(schemas: ImageSchemas, root: Path = REPO_ROOT) -> str:
    """The folder as the Dockerfile's ``SCHEMAS_DIR``: a path inside the build context (the
    checkout, less what ``.dockerignore`` leaves out), made of plain names."""
    fix = (
        "copy it into the checkout (e.g. cp -r DIR app_schemas) and pass --schemas_dir "
        "app_schemas"
    )
    if not schemas.path.is_relative_to(root) or schemas.path == root:
        raise UsageError(
            f"--schemas_dir {schemas.path} is outside the image's build context ({root}): {fix}"
        )
    parts = schemas.path.relative_to(root).parts
    if not all(PATH_PART.match(p) and p not in (".", "..") for p in parts):
        raise UsageError(
            f"--schemas_dir {schemas.shown}: only letters, digits, '.', '_' and '-' can name "
            "the folder in a build argument"
        )
    ignored = dockerignored(root)
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        for pattern in ignored:
            if fnmatch.fnmatch(prefix, pattern.strip("/")):
                raise UsageError(
                    f"--schemas_dir {schemas.shown} is left out of the image's build context "
                    f"by .dockerignore ({pattern}): {fix}"
                )
    return "/".join(parts)


def dockerignored(root: Path = REPO_ROOT) -> list[str]:
    """``.dockerignore``'s exclusions (comments, blanks and ``!`` exceptions left out;
    ``**/`` taken as any folder)."""
    try:
        lines = (root / ".dockerignore").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            out.append(line.removeprefix("**/"))
    return out


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
