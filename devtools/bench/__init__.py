"""The benchmark behind `scripts/benchmark.py`: the sync against a hand-made floor and a naive
baseline, and the incremental nightly and hourly intraday runs against history length, on
the emulators.

It starts its own Firestore emulator and bqemulator (``devtools.emulators``) in a
fresh state dir and runs one or more scenarios (``--scenario``; ``all`` is backfill
and nightly), each a short definition on one skeleton (:mod:`.scenario`: seed →
run → verify for each case, then record) whose module docstring says what it
measures: :mod:`.backfill` (the default: floor, pipeline and naive baseline, and
a one-day full dry run), :mod:`.nightly`, :mod:`.intraday` and :mod:`.onboarding`.

Every figure comes from what the run itself reports (:mod:`.sync_run`): its
``_sync_runs`` row for a run that writes, its Beam counters for a dry run;
never its console text. Times are reported, never judged: the exit status is
0 when every reported run read and wrote what it should, 1 otherwise.
``--keep-data`` leaves the emulators and datasets in place; ``--profile DIR``
adds one untimed run under py-spy (:mod:`.profiling`). The printed report is
:mod:`.render`'s; ``--json`` holds the same and every run.
"""

from __future__ import annotations

import sys


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds only the report."""
    print(f"benchmark: {message}", file=sys.stderr, flush=True)
