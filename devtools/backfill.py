"""Backfill a long date range as a series of shorter sync runs, resumably.

    python scripts/backfill.py --start_date 2025-01-01 --end_date 2025-12-31 \\
        [--chunk_days 7] [--state_file .backfill-state.json] [--dry_run] \\
        -- --project P --dataset D --runner DataflowRunner ...

One run per chunk of ``--chunk_days`` days (inclusive ends; the last chunk may
be shorter), one after another, so each run reads and replaces a bounded
amount of data and a failure costs one chunk, not the whole range. The first
failing chunk stops the backfill; every finished chunk is recorded in the state
file, so running the same command again resumes after the last one. Arguments
after ``--`` are passed to every run unchanged. ``--dry_run`` prints the chunk
commands and runs nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_STATE_FILE = ".backfill-state.json"
MAX_CHUNK_DAYS = 3660
Chunk = tuple[datetime.date, datetime.date]


class UsageError(ValueError):
    """A bad argument or a state file from another backfill; nothing has run."""


def chunks(start: datetime.date, end: datetime.date, days: int) -> list[Chunk]:
    """``[start, end]`` cut into runs of ``days`` days; ends are inclusive."""
    if days < 1:
        raise ValueError("chunk length must be at least one day")
    out: list[Chunk] = []
    first = start
    while first <= end:
        last = min(first + datetime.timedelta(days=days - 1), end)
        out.append((first, last))
        first = last + datetime.timedelta(days=1)
    return out


def chunk_command(base: Sequence[str], chunk: Chunk, extra: Sequence[str]) -> list[str]:
    return [
        *base,
        "--start_date",
        chunk[0].isoformat(),
        "--end_date",
        chunk[1].isoformat(),
        *extra,
    ]


def chunk_key(chunk: Chunk) -> list[str]:
    return [chunk[0].isoformat(), chunk[1].isoformat()]


def identity(args: argparse.Namespace, extra: Sequence[str]) -> dict[str, Any]:
    """What makes two invocations the same backfill (and so safe to resume)."""
    return {
        "start_date": args.start_date.isoformat(),
        "end_date": args.end_date.isoformat(),
        "chunk_days": args.chunk_days,
        "args": list(extra),
    }


def load_state(path: Path, expected: dict[str, Any]) -> set[tuple[str, str]]:
    """Chunks already done; refuses a state file written for another backfill."""
    if not path.exists():
        return set()
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        recorded = {key: state[key] for key in expected}
        done = {(a, b) for a, b in state["completed"]}
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{path} is not a backfill state file; move it away") from None
    if recorded != expected:
        raise UsageError(
            f"{path} records a different backfill ({recorded['start_date']}.."
            f"{recorded['end_date']}, {recorded['chunk_days']}-day chunks, args "
            f"{shlex.join(recorded['args'])!r}); use another --state_file or remove it"
        )
    return done


def save_state(path: Path, ident: dict[str, Any], done: list[list[str]]) -> None:
    """Write via a temporary file and a rename, so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({**ident, "completed": done}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def parse_date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in YYYY-MM-DD form") from None


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options before ``--``; everything after it goes to each run as is."""
    argv = list(argv)
    if "--" in argv:
        split = argv.index("--")
        own, extra = argv[:split], argv[split + 1 :]
    else:
        own, extra = argv, []
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        usage="%(prog)s --start_date D --end_date D [options] [-- sync arguments]",
    )
    parser.add_argument("--start_date", type=parse_date, required=True, help="First day.")
    parser.add_argument("--end_date", type=parse_date, required=True, help="Last day, inclusive.")
    parser.add_argument("--chunk_days", type=int, default=7, help="Days per run (default 7).")
    parser.add_argument(
        "--state_file", type=Path, default=Path(DEFAULT_STATE_FILE), help="Progress record."
    )
    parser.add_argument(
        "--command",
        help="Command that syncs one chunk (default: this Python, -m pipelines.firestore_to_bq).",
    )
    parser.add_argument("--dry_run", action="store_true", help="Print the chunk commands only.")
    args = parser.parse_args(own)
    if args.end_date < args.start_date:
        parser.error(f"--end_date {args.end_date} is before --start_date {args.start_date}")
    if not 1 <= args.chunk_days <= MAX_CHUNK_DAYS:
        parser.error(f"--chunk_days must be between 1 and {MAX_CHUNK_DAYS}")
    for flag in ("--start_date", "--end_date", "--date"):
        if any(a == flag or a.startswith(flag + "=") for a in extra):
            parser.error(f"{flag} is set per chunk; do not pass it after --")
    args.command = (
        shlex.split(args.command)
        if args.command
        else [sys.executable, "-m", "pipelines.firestore_to_bq"]
    )
    return args, extra


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    plan = chunks(args.start_date, args.end_date, args.chunk_days)
    ident = identity(args, extra)
    try:
        done = load_state(args.state_file, ident)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    completed = [chunk_key(c) for c in plan if tuple(chunk_key(c)) in done]

    if args.dry_run:
        for chunk in plan:
            line = shlex.join(chunk_command(args.command, chunk, extra))
            print(f"# done: {line}" if tuple(chunk_key(chunk)) in done else line)
        return 0

    total = len(plan)
    if len(completed) == total:
        print(f"all {total} chunks already done ({args.state_file}); nothing to run")
        return 0
    for number, chunk in enumerate(plan, 1):
        label = f"chunk {number}/{total} {chunk[0]}..{chunk[1]}"
        if tuple(chunk_key(chunk)) in done:
            print(f"{label}: already done, skipped", flush=True)
            continue
        command = chunk_command(args.command, chunk, extra)
        print(f"{label}: {shlex.join(command)}", flush=True)
        started = time.monotonic()
        result = subprocess.run(command)
        if result.returncode != 0:
            print(
                f"{label}: FAILED with exit code {result.returncode}; {len(completed)} of "
                f"{total} chunks done. Fix the cause and run the same command to resume.",
                file=sys.stderr,
            )
            return result.returncode if result.returncode > 0 else 1
        completed.append(chunk_key(chunk))
        save_state(args.state_file, ident, completed)
        print(f"{label}: done in {time.monotonic() - started:.0f}s", flush=True)
    print(f"backfill {args.start_date}..{args.end_date} complete: {total} chunks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
