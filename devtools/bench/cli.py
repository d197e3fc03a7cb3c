"""The benchmark's command line: which scenarios, at what size, and where the report goes.

Parsing imports nothing heavy, so ``--help`` is instant; the scenarios are
imported when they run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from devtools.bench import log
from devtools.bench.data import MOVED_SHARE
from devtools.bench.scenario import SCENARIOS

DEFAULT_WORKERS = "in_memory,multi_threading:2,multi_processing:2"
DEFAULT_HISTORIES = "14,90,365"
DEFAULT_INTRADAY_HISTORIES = "14,365"
HISTORIES_HELP = "Comma-separated days of history, each measured on its own (default {})."


def _option(*flags: str, least: float | None = None, **kw: Any) -> tuple:
    """An option as ``add_argument`` takes it, and the least value it accepts (None: any)."""
    return flags, least, kw


#: Every option, by argument group (None: the general ones), in ``--help``'s order.
OPTIONS: dict[tuple[str, str] | None, list[tuple]] = {
    None: [
        _option("--docs", type=int, default=20_000, least=1,
                help="Documents to seed (intraday: spread over each of --intraday-histories)."),
        _option("--repeat", type=int, default=1, least=1, help="Runs of each; medians reported."),
        _option("--json", type=Path, help="Also write the results here as JSON."),
        _option("--workers", default=DEFAULT_WORKERS,
                help="Comma-separated DirectRunner configurations to time: in_memory, "
                "multi_threading:N, multi_processing:N, or N workers (1 = in_memory, "
                f"N > 1 = multi_processing:N). Default {DEFAULT_WORKERS}."),
        _option("--keep-data", action="store_true", help="Leave the emulators running with the "
                "seeded documents and every written dataset."),
        _option("--state-dir", type=Path, help="Emulator state dir (default: a temp dir)."),
        _option("--naive-batch", type=int, default=100, least=1,
                help="Rows per insertAll request."),
        _option("--naive-single-cap", type=int, default=300, least=1,
                help="Documents sent one request each; the figure is extrapolated to --docs."),
        _option("--profile", type=Path,
                help="Also run the recommended configuration under py-spy into DIR."),
    ],
    ("nightly scenario", "Incremental nightly runs over histories of several lengths."): [
        _option("--scenario", choices=tuple(SCENARIOS), default="backfill",
                help="backfill: floor, pipeline and naive on --docs documents, and a one-day "
                "full dry run (default); nightly: the incremental nightly over each "
                "--nightly-histories; intraday: hourly --intraday runs over a day of trickled "
                "changes, over each --intraday-histories (about 15 minutes a history at the "
                "defaults); onboarding: a chunked backfill of a history, then the first "
                "nightly; all: backfill and nightly (not intraday, which runs in real time)."),
        _option("--nightly-histories", default=DEFAULT_HISTORIES,
                help=HISTORIES_HELP.format(DEFAULT_HISTORIES)),
        _option("--nightly-per-day", type=int, default=200, least=1,
                help="Documents a day, history and new day."),
        # argparse %-formats help strings: a percent sign is written %%.
        _option("--nightly-edit-share", type=float, default=0.05,
                help="Older documents edited before the timed night, as a share of a day's new "
                f"ones ({MOVED_SHARE * 100:.0f}%% of them also move to another day). Default "
                "0.05."),
        _option("--nightly-deletes", type=int, default=3, least=0,
                help="Interactions hard-deleted (one a day, within --verify_days) for a "
                "separate, timed night; 0 skips it. Default 3."),
        _option("--no-nightly-warmup", dest="nightly_warmup", action="store_false",
                help="Skip the untimed 2-day warm-up round before the histories."),
        _option("--verify_days", type=int, default=35, least=1,
                help="Passed to every nightly and intraday run (the pipeline's default is 35)."),
    ],
    ("intraday scenario", "Hourly --intraday runs over one day, changes trickling in between, "
     "after one nightly."): [
        _option("--intraday-histories", default=DEFAULT_INTRADAY_HISTORIES,
                help=HISTORIES_HELP.format(DEFAULT_INTRADAY_HISTORIES)),
        _option("--intraday-hours", type=int, default=24, least=1,
                help="Hourly runs (default 24: a day)."),
        _option("--intraday-new", type=int, default=50, least=1,
                help="New documents an hour (default 50)."),
        _option("--intraday-edits", type=int, default=5, least=0,
                help="Edits of existing documents with a change field, an hour (default 5)."),
        _option("--intraday-hour-seconds", type=float, default=30.0, least=5,
                help="Real seconds one simulated hour lasts; the planner's 5-minute clock "
                "allowance is scaled by the same factor (default 30)."),
    ],
    ("onboarding scenario", "A chunked backfill (scripts/backfill.py's chunk commands) of a "
     "history, edits between chunks, then the first nightly."): [
        _option("--onboarding_days", "--onboarding-days", type=int, default=60, least=2,
                help="Days of history up to yesterday; the chunks cover all but yesterday "
                "(default 60)."),
        _option("--onboarding_per_day", "--onboarding-per-day", type=int, default=200, least=1,
                help="Documents a day, in tasks and projects (default 200)."),
        _option("--chunk_days", "--chunk-days", type=int, default=7, least=1,
                help="Days per chunk (default 7)."),
    ],
}  # fmt: skip


def parser(description: str) -> tuple[argparse.ArgumentParser, dict[str, tuple[str, float]]]:
    """The parser, and the least value of each option that has one (by ``dest``)."""
    parser = argparse.ArgumentParser(description=description)
    least = {}
    for group, options in OPTIONS.items():
        target = parser if group is None else parser.add_argument_group(*group)
        for flags, minimum, kw in options:
            action = target.add_argument(*flags, **kw)
            if minimum is not None:
                least[action.dest] = (flags[0], minimum)
    return parser, least


def _days(parsed: argparse.ArgumentParser, text: str, option: str) -> list[int]:
    try:
        days = sorted({int(d) for d in text.split(",") if d.strip()})
    except ValueError:
        parsed.error(f"{option} takes comma-separated day counts")
    if not days or min(days) < 2:
        parsed.error(f"{option} needs day counts of 2 or more")
    return days


def parse_args(argv: list[str] | None, description: str = "") -> argparse.Namespace:
    parsed, least = parser(description)
    args = parsed.parse_args(argv)
    for dest, (flag, minimum) in least.items():
        if getattr(args, dest) < minimum:
            parsed.error(f"{flag} must be at least {minimum}")
    if not 0 < args.nightly_edit_share <= 1:
        parsed.error("--nightly-edit-share must be in (0, 1]")
    args.nightly_histories = _days(parsed, args.nightly_histories, "--nightly-histories")
    args.intraday_histories = _days(parsed, args.intraday_histories, "--intraday-histories")
    args.command = shlex.join(
        [sys.executable, sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    )
    from devtools.bench.backfill import RunnerConfig

    try:
        args.workers = [RunnerConfig.parse(w) for w in args.workers.split(",") if w.strip()]
    except argparse.ArgumentTypeError as exc:
        parsed.error(str(exc))
    if not args.workers:
        parsed.error("--workers names no configuration")
    return args


def main(argv: list[str] | None = None, description: str = "") -> int:
    """Start the emulators, run the scenarios, print (and write) the report."""
    args = parse_args(argv, description)
    from devtools import emulators, example_app_env
    from devtools.bench import scenario
    from devtools.bench.render import render

    own_dir = args.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="f2bq-bench-")) if own_dir else args.state_dir
    log_dir = state_dir / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    emu = emulators.start(state_dir)
    # The seeded documents are the example app's: its tables, whatever schemas/ holds,
    # for this process and every sync run it starts.
    env = {**emu.env(), **example_app_env()}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    report: dict[str, Any] | None = None
    try:
        report = scenario.report(args, emu, log_dir)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if report is not None and args.keep_data:
            log("emulators left running (--keep-data); to use them:\n" + emu.export_lines())
            log(f"stop them with: {sys.executable} scripts/emulators.py down "
                f"--state-dir {state_dir}")  # fmt: skip
        else:
            emu.stop()
            shutil.rmtree(emu.bigquery_data_dir, ignore_errors=True)
            if own_dir and report is not None and report["valid"] and not report["failed_configs"]:
                shutil.rmtree(state_dir, ignore_errors=True)
            else:
                log(f"emulators stopped; run logs kept in {log_dir}")
    print(render(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0 if report["valid"] else 1
