"""The benchmark behind `scripts/benchmark.py`: the sync against a hand-made floor and a naive
baseline, and the incremental nightly and hourly intraday runs against history length, on
the emulators.

It starts its own Firestore emulator and bqemulator (``devtools.emulators``) in a
fresh state dir and runs one or more scenarios (``--scenario``; ``all`` is backfill
and nightly):

backfill (:mod:`.backfill`, the default)
    Seeds ``--docs`` documents over the five collections (many users, 14 days),
    then measures on that same data, ``--repeat`` times, reporting medians:
    the *floor* (stream every document once, convert it with the product's own
    ``document_to_row``, one load job per table; :mod:`.baselines`), the
    *pipeline* (``python -m pipelines.firestore_to_bq`` backfilling the window
    into an empty dataset, once per ``--workers`` DirectRunner configuration,
    as a subprocess whose wall time includes start-up; peak RSS is the largest
    sum over its process tree, sampled every 50 ms; :mod:`.process`) and the
    *naive* baseline (stream, convert, ``insert_rows_json`` ``--naive-batch``
    rows per request; one request per document measured on the first
    ``--naive-single-cap`` documents and extrapolated). The recommended
    configuration is the fastest that worked or, among those within 5 % of it,
    the one with the smallest peak RSS.
one-day full run (:mod:`.one_day_full`, part of backfill)
    A one-day ``--date`` dry run of the last seeded day: a *full* run of one
    day reads every document of every collection at its snapshot, so its reads
    per document of that day are about the days of history held. Reported
    under ``one_day_full``; it is not the nightly.
nightly (:mod:`.nightly`)
    For each ``--nightly-histories`` length, on its own: seed ``--nightly-per-day``
    documents a day up to yesterday, a first nightly (a full rebuild, untimed),
    then the next night's new day and ``--nightly-edit-share`` edits (some moved to
    another day) and the incremental nightly, timed; its count() and document
    queries replayed as its plan ran them (:mod:`.replay`); then a night after
    ``--nightly-deletes`` hard deletes, to show the drift check. Every run's
    tables are checked against Firestore, day by day. ``nightly.*`` in the
    report is this scenario only.
intraday (:mod:`.intraday`)
    For each ``--intraday-histories`` length: ``--docs`` documents over the
    history, one nightly, then ``--intraday-hours`` hourly ``--intraday`` runs
    while ``--intraday-new`` new documents and ``--intraday-edits`` edits an hour
    trickle in, an hour compressed into ``--intraday-hour-seconds``: reads per
    changed document, ``count()`` reads, wall time and its start-up share per
    run; the tables then equal a full rebuild at the last snapshot.
onboarding (:mod:`.onboarding`)
    ``--onboarding_days`` days of ``--onboarding_per_day`` documents a day, backfilled
    in ``--chunk_days`` chunks as ``scripts/backfill.py`` runs them (``--mode
    incremental``) with edits and moves between chunks, then the first nightly:
    reads per document of each chunk, and the nightly's reads against yesterday's
    documents plus the changed ones; the first chunk again in full mode for
    comparison; the tables then equal a full rebuild at the nightly's snapshot.

Every figure comes from what the run itself reports (:mod:`.sync_run`): its
``_sync_runs`` row for a run that writes, its Beam counters for a dry run;
never its console text. Times are reported, never judged: the exit status is
0 when every reported run read and wrote what it should, 1 otherwise.
``--keep-data`` leaves the emulators and datasets in place; ``--profile DIR``
adds one untimed run under py-spy (:mod:`.profiling`).
"""

from __future__ import annotations

import sys


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds only the report."""
    print(f"benchmark: {message}", file=sys.stderr, flush=True)
