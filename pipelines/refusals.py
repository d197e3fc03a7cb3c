"""What a run refuses to do, and the one spelling of the command to run instead.

A refusal is a run that stops before it has read or written anything, because
carrying on would break a promise: a catch-up longer than
``--max_catchup_days``, a commit over a BigQuery quota, a read that would
outlast Firestore's snapshot, an intraday run with nothing to start from, a
table another run holds. Each says why in one line and exits with its own code;
where another command would do the job, it names it (``instead``). They were
five unrelated exception types, each mapped to its exit code by the launcher;
here they are one family, so the launcher catches :class:`Refusal` once and
exits with ``exit_code``.

Bad arguments are not refusals: :class:`pipelines.cli.usage.UsageError` (exit 2)
is what every command's parser raises, the analytics command among them, before
any state is looked at, and names no command instead.

Beam-free and free of ``pipelines.cli``, so ``plan/`` and ``state/`` raise these
without importing the command line.
"""

from __future__ import annotations

import datetime
from typing import ClassVar

#: The installed command (the wheel's console script, the launcher image's entry
#: point): a refusal is printed where this command runs.
COMMAND = "firestore-to-bq"


def sync_command(sync_args: str) -> str:
    """A sync run with ``sync_args`` (``--project P --dataset D …``), as a refusal names it."""
    return f"{COMMAND} {sync_args}".rstrip()


def backfill_command(
    start: datetime.date,
    end: datetime.date,
    sync_args: str,
    chunk_days: int | None = None,
) -> str:
    """The one spelling of a chunked backfill that refusals name.

    ``firestore-to-bq backfill`` (``pipelines.cli.backfill``) runs the range in
    chunks, resumably; ``sync_args`` is what goes after ``--`` (``--project P
    --dataset D …``); ``chunk_days`` None leaves the backfill's own default.
    Built here, not in ``pipelines.cli``, so the planners that refuse can build
    it without importing the command line."""
    chunks = f" --chunk_days {chunk_days}" if chunk_days is not None else ""
    dates = f"--start_date {start} --end_date {end}{chunks}"
    return f"{COMMAND} backfill {dates} -- {sync_args}".rstrip()


class Refusal(Exception):
    """The run stopped before reading or writing anything; the message is one line.

    ``exit_code``: what the command line exits with (each subclass sets its own).
    ``instead``: the command that would do the job instead, when there is one; the
    message names it too."""

    exit_code: ClassVar[int]

    def __init__(self, message: str, instead: str | None = None) -> None:
        super().__init__(message)
        self.instead = instead


class CatchUpTooLong(Refusal):
    """A table is further behind than ``--max_catchup_days``; a backfill is needed.

    Exit 2: the nightly as asked cannot run; the backfill named instead can."""

    exit_code = 2


class IntradayRefused(Refusal):
    """A table has no history an intraday run can start from; the nightly must run first.

    Exit 2: the run as asked cannot start; the nightly named instead can."""

    exit_code = 2


class OverQuota(Refusal):
    """The plan would exceed a BigQuery limit; the message says what to run instead.

    Exit 2: these options ask for more than BigQuery allows in one run."""

    exit_code = 2


class SnapshotTooShort(Refusal):
    """The run's read would outlast Firestore's snapshot; nothing was read.

    Exit 2: the run as asked cannot finish; PITR, a higher rate or the chunked
    backfill named instead can."""

    exit_code = 2


class BadSetting(Refusal):
    """A setting read from the environment rather than the arguments is unusable.

    Exit 2, as a bad argument is. (Today: the assumed snapshot horizon a test sets,
    ``pipelines.plan.snapshot.ASSUMED_HORIZON_ENV``.)"""

    exit_code = 2


class LeaseHeld(Refusal):
    """Another run holds a lease on one of this run's tables; nothing was written.

    Exit 1, not 2: nothing is wrong with the arguments, and the same command
    succeeds once the other run has finished."""

    exit_code = 1
