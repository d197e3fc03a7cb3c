"""The deploy guide (docs/deploy.md) shows exactly what each script's --dry_run prints.

Every ``$ … --dry_run`` block of the README and of docs/ is checked, wherever it is.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from devtools import REPO_ROOT
from pipelines.convert.table_spec import SCHEMAS_DIR_ENV

DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
TEXT = "\n".join(path.read_text(encoding="utf-8") for path in DOCUMENTS)
VENV_PYTHON = ".venv/bin/python"
#: Scripts whose dry run names the schema folder the image carries: the docs show their
#: default (schemas/), so they run without the session's F2BQ_SCHEMAS_DIR; they only
#: check that folder, so any valid one passes.
IMAGE_SCRIPTS = {
    "scripts/build_template.py",
    "scripts/schedule_nightly.py",
    "scripts/deploy_cloud_run_job.py",
}


def _shown_commands() -> list[tuple[str, str]]:
    """``$ command`` lines of the documents' code blocks, with the output below them."""
    shown = []
    for block in TEXT.split("```")[1::2]:
        lines = block.strip("\n").splitlines()
        if lines and lines[0].startswith("$ ") and "--dry_run" in lines[0]:
            shown.append((lines[0][2:], "\n".join(lines[1:])))
    return shown


def _run(command: str, env: dict[str, str]) -> str:
    argv = shlex.split(command)
    if argv[0] == VENV_PYTHON:
        argv[0] = sys.executable
    result = subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.rstrip("\n").replace(sys.executable, VENV_PYTHON)


def test_the_readme_shows_every_deploy_script_dry_run():
    scripts = {shlex.split(c)[1] for c, _ in _shown_commands()}
    assert scripts == {
        "scripts/setup_bigquery.py",
        "scripts/create_firestore_indexes.py",
        "scripts/create_service_accounts.sh",
        "scripts/build_template.py",
        "scripts/schedule_nightly.py",
        "scripts/deploy_cloud_run_job.py",
        "scripts/backfill.py",
    }


@pytest.mark.parametrize(
    "command",
    [c for c, _ in _shown_commands() if "setup_bigquery" not in c],
    ids=lambda c: shlex.split(c)[1],
)
def test_offline_dry_run_output_matches_the_readme(command: str):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    if shlex.split(command)[1] in IMAGE_SCRIPTS:
        env.pop(SCHEMAS_DIR_ENV, None)
    assert _run(command, env) == dict(_shown_commands())[command]
