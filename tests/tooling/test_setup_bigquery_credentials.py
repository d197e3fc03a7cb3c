"""scripts/setup_bigquery.py without credentials (*unit*, no emulator): one ``error:`` line.

Issue 25, finding 8: ``--dry_run`` with no Application Default Credentials ended
in a ``DefaultCredentialsError`` traceback, while the sync and ``status`` say it
in one line (``pipelines.services.reachability.NO_CREDENTIALS``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devtools import REPO_ROOT
from pipelines.services.reachability import NO_CREDENTIALS

#: The subprocess's limit: the clients fail at once without credentials (no
#: auth retry to wait out), so this is a generous bound, not a speed check.
TIMEOUT = 60


def test_dry_run_without_credentials_is_one_error_line(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "GOOGLE_APPLICATION_CREDENTIALS",
            "BIGQUERY_EMULATOR_HOST",
            "FIRESTORE_EMULATOR_HOST",
            "GOOGLE_CLOUD_PROJECT",
        )
    }
    # No gcloud Application Default Credentials either: they live under HOME
    # (or CLOUDSDK_CONFIG).
    env.update(HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"))
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "setup_bigquery.py"),
            "--project", "demo-project", "--dataset", "analytics", "--dry_run",
        ],  # fmt: skip
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"error: {NO_CREDENTIALS}"]
    assert "Traceback" not in done.stderr
