"""Build the launcher image and publish the Flex Template spec.

    python scripts/build_template.py --project P --region R --bucket B \\
        [--repository firestore-to-bq] [--tag TAG] [--schemas_dir DIR] [--dry_run]

Two steps, both through gcloud so the same commands can be run by hand:
Cloud Build builds ``Dockerfile`` (no local docker needed) with the steps of
``deploy/cloudbuild.yaml`` and pushes it to Artifact Registry, then
``flex-template build`` writes the spec that points Dataflow at that image, with
``deploy/metadata.json`` as its parameters. The image tag defaults to the git
commit, so a template always names the exact code it runs.

The image carries one schema folder, copied in as its packaged ``schemas/``
(the Dockerfile's ``SCHEMAS_DIR`` build argument): ``--schemas_dir``, else
``$F2BQ_SCHEMAS_DIR``, else the checkout's ``schemas/``. Every run the template
or the Cloud Run Job starts reads those tables and no others, so a schema change
means rebuilding the image. The folder must pass ``firestore-to-bq schema check``
and lie in the build context (the checkout, less ``.dockerignore``'s entries).
``--dry_run`` prints the folder and the commands, and runs nothing.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from devtools import (
    REPO_ROOT,
    gen_template_metadata,
)
from devtools.deploy_args import (
    UsageError,
    add_schemas_dir,
    build_context_path,
    check_location,
    checked,
    deploy_main,
    image_schemas,
    run_step,
)

IMAGE_NAME = "firestore-to-bq"
TEMPLATE_OBJECT = "templates/firestore-to-bq.json"
METADATA_FILE = "deploy/metadata.json"
#: Cloud Build's steps: ``gcloud builds submit --tag`` cannot pass a build argument.
BUILD_CONFIG = "deploy/cloudbuild.yaml"

REPOSITORY = re.compile(r"^[a-z]([a-z0-9\-]{0,61}[a-z0-9])?\Z")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\Z")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()


def default_tag(root: Path = REPO_ROOT) -> str:
    """The short commit, marked ``-dirty`` when the tree has uncommitted changes."""
    try:
        sha = _git(root, "rev-parse", "--short=12", "HEAD")
        dirty = _git(root, "status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        raise UsageError("not a git checkout: pass --tag") from None
    return f"{sha}-dirty" if dirty else sha


def image_uri(args: argparse.Namespace) -> str:
    return f"{args.region}-docker.pkg.dev/{args.project}/{args.repository}/{IMAGE_NAME}:{args.tag}"


def template_path(bucket: str) -> str:
    return f"gs://{bucket}/{TEMPLATE_OBJECT}"


def commands(args: argparse.Namespace) -> list[list[str]]:
    """The gcloud commands, in order; they run from the repository root."""
    image = image_uri(args)
    return [
        [
            "gcloud",
            "builds",
            "submit",
            "--project",
            args.project,
            "--region",
            args.region,
            "--config",
            BUILD_CONFIG,
            "--substitutions",
            f"_IMAGE={image},_SCHEMAS_DIR={args.build_schemas_dir}",
            ".",
        ],
        [
            "gcloud",
            "dataflow",
            "flex-template",
            "build",
            template_path(args.bucket),
            "--project",
            args.project,
            "--image",
            image,
            "--sdk-language",
            "PYTHON",
            "--metadata-file",
            METADATA_FILE,
        ],
    ]


def metadata_is_current() -> bool:
    """Run ``gen_template_metadata --check``: never publish parameters the pipeline lacks."""
    return gen_template_metadata.main(["--check", "--output", str(REPO_ROOT / METADATA_FILE)]) == 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True, help="Google Cloud project id.")
    parser.add_argument("--region", required=True, help="Region of the registry and builds.")
    parser.add_argument("--bucket", required=True, help="Bucket that holds the template spec.")
    parser.add_argument(
        "--repository", default=IMAGE_NAME, help="Artifact Registry Docker repository."
    )
    parser.add_argument("--tag", help="Image tag (default: the git commit).")
    add_schemas_dir(parser)
    parser.add_argument("--dry_run", action="store_true", help="Print the commands only.")
    args = parser.parse_args(argv)
    check_location(args.project, args.region, args.bucket)
    checked(args.repository, REPOSITORY, "--repository")
    args.schemas = image_schemas(args.schemas_dir, REPO_ROOT)
    args.build_schemas_dir = build_context_path(args.schemas, REPO_ROOT)
    args.tag = checked(args.tag or default_tag(), TAG, "--tag")
    return args


def print_commands(args: argparse.Namespace) -> None:
    print(args.schemas.built())
    for step in commands(args):
        print(shlex.join(step))


def apply(args: argparse.Namespace) -> int:
    print(args.schemas.built())
    for step in commands(args):
        if not run_step(step, what=step[0], cwd=REPO_ROOT):
            return 1
    print(f"published {template_path(args.bucket)} -> {image_uri(args)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return deploy_main(argv, parse_args, print_commands, apply, ready=metadata_is_current)


if __name__ == "__main__":
    sys.exit(main())
