"""The demo command of the README works on a fresh machine (it starts its own emulators)."""

import json
import subprocess
import sys

import pytest

from devtools import REPO_ROOT


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
    # It ends with one sample user's analytics.
    *_, heading, usage, completion = result.stdout.strip().splitlines()
    assert heading.startswith("== analytics for user ")
    usage = json.loads(usage.removeprefix("user_analytics: "))
    assert usage["total_interactions"] > 0 and 1 <= usage["active_days"] <= 3
    assert set(usage) == {
        "total_interactions", "active_days", "avg_duration_ms", "total_tokens", "error_count",
        "top_intents",
    }  # fmt: skip
    completion = json.loads(completion.removeprefix("task_completion_rate: "))
    assert set(completion) == {"tasks", "completed", "rate"}
