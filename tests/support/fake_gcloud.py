"""A ``gcloud`` on PATH that records its calls: the deploy scripts' tests run it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

FAKE_GCLOUD = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
record = {"args": args}
if "--message-body-from-file" in args:
    record["body"] = json.load(open(args[args.index("--message-body-from-file") + 1]))
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
if args[:3] == ["scheduler", "jobs", "describe"]:
    state = os.environ["FAKE_JOB"]
    if state == "missing":
        sys.stderr.write("ERROR: (gcloud.scheduler.jobs.describe) NOT_FOUND: Job not found.\\n")
        sys.exit(1)
    if state == "denied":
        sys.stderr.write("ERROR: PERMISSION_DENIED: no\\n")
        sys.exit(1)
sys.exit(0)
"""


def install_fake_gcloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``gcloud`` on PATH that records its calls and plays an existing or missing job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(FAKE_GCLOUD)
    gcloud.chmod(gcloud.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
