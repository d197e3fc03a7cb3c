"""The README's demo command works on a fresh machine (it starts its own emulators)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.integration
def test_demo_prints_partitions_that_reconcile(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/demo.py", "--users", "2", "--days", "3",
         "--state-dir", str(tmp_path / "emu")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reconciled" in result.stdout and "NOT reconciled" not in result.stdout
    assert "partition " in result.stdout
    assert "_dead_letters: {'tasks': 1, 'user_interactions': 1}" in result.stdout
    assert not (tmp_path / "emu" / "state.json").exists()  # emulators stopped
