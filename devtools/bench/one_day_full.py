"""The one-day full run: ``--date`` the last seeded day, a dry run, on the backfill's data.

Not the nightly (that is incremental; see :mod:`.nightly`): a full run of one day
reads every document of every collection at its snapshot, so its reads per
document of that day are about the number of days of history held. The dry
run's figures are its Beam counters, from the summary it returned
(:mod:`.sync_run`); its rows are the documents of the replaced day (no late
edits: every seeded document was written after the window).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.bench import log, sync_run
from devtools.bench.seeding import Dataset


def measure_one_day_full(
    project: str, data: Dataset, env: dict[str, str], log_dir: Path
) -> dict[str, Any]:
    """Reads per document of the day of a one-day full dry run."""
    args = ["--project", project, "--date", data.end.isoformat(), "--dry_run"]
    done = sync_run.run(args, env, log_dir, "one-day-full-dry-run")
    returned = done.documents_returned()
    in_window = sum(t["rows"] for t in done.tables().values())
    ok = done.ok and returned == data.docs and in_window > 0
    if not ok:
        log(f"one-day full dry run failed (exit {done.exit_code}): {done.error}")
    return {
        "date": data.end.isoformat(),
        "wall_seconds": round(done.wall_seconds, 3),
        "documents_returned": returned,
        "documents_in_window": in_window,
        "reads_per_document": round(returned / in_window, 2) if returned and in_window else None,
        "source": "the dry run's Beam counters (documents_returned, rows)",
        "ok": ok,
    }
