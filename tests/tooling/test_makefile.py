"""The Makefile's targets run the commands the README gives for them."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from devtools import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def planned(*args: str) -> list[str]:
    """The commands ``make -n`` would run (printed, not run).

    Run as a top-level make even under ``make unit``: a parent make's variables
    would make this one print "Entering/Leaving directory" lines around them."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(
        ["make", "-n", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_make_demo_keep_1_passes_keep_to_the_demo() -> None:
    # `make demo --keep` cannot work: make reads --keep as its own --keep-going.
    assert planned("demo", "KEEP=1")[-1].endswith("scripts/demo.py --keep")


def test_make_demo_without_keep_stops_the_emulators() -> None:
    assert planned("demo")[-1].endswith("scripts/demo.py")
    assert planned("demo", "KEEP=0")[-1].endswith("scripts/demo.py")
