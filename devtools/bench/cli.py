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
from devtools.bench.seeding import MOVED_SHARE

DEFAULT_WORKERS = "in_memory,multi_threading:2,multi_processing:2"
DEFAULT_HISTORIES = "14,90,365"
DEFAULT_INTRADAY_HISTORIES = "14,365"


def parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--docs",
        type=int,
        default=20_000,
        help="Documents to seed (intraday: spread over each of --intraday-histories).",
    )
    parser.add_argument("--repeat", type=int, default=1, help="Runs of each; medians reported.")
    parser.add_argument("--json", type=Path, help="Also write the results here as JSON.")
    parser.add_argument(
        "--workers",
        default=DEFAULT_WORKERS,
        help="Comma-separated DirectRunner configurations to time: in_memory, "
        "multi_threading:N, multi_processing:N, or N workers (1 = in_memory, "
        f"N > 1 = multi_processing:N). Default {DEFAULT_WORKERS}.",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="Leave the emulators running with the seeded documents and every written dataset.",
    )
    parser.add_argument("--state-dir", type=Path, help="Emulator state dir (default: a temp dir).")
    parser.add_argument("--naive-batch", type=int, default=100, help="Rows per insertAll request.")
    parser.add_argument(
        "--naive-single-cap",
        type=int,
        default=300,
        help="Documents sent one request each; the figure is extrapolated to --docs.",
    )
    parser.add_argument(
        "--profile", type=Path, help="Also run the recommended configuration under py-spy into DIR."
    )
    nightly = parser.add_argument_group(
        "nightly scenario", "Incremental nightly runs over histories of several lengths."
    )
    nightly.add_argument(
        "--scenario",
        choices=("backfill", "nightly", "intraday", "onboarding", "all"),
        default="backfill",
        help="backfill: floor, pipeline and naive on --docs documents, and a one-day full "
        "dry run (default); nightly: the incremental nightly over each --nightly-histories; "
        "intraday: hourly --intraday runs over a day of trickled changes, over each "
        "--intraday-histories (about 15 minutes a history at the defaults); onboarding: a "
        "chunked backfill of a history, then the first nightly; all: backfill "
        "and nightly (not intraday, which runs in real time).",
    )
    nightly.add_argument(
        "--nightly-histories",
        default=DEFAULT_HISTORIES,
        help=f"Comma-separated days of history, each measured on its own (default "
        f"{DEFAULT_HISTORIES}).",
    )
    nightly.add_argument(
        "--nightly-per-day", type=int, default=200, help="Documents a day, history and new day."
    )
    nightly.add_argument(
        "--nightly-edit-share",
        type=float,
        default=0.05,
        # argparse %-formats help strings: a percent sign is written %%.
        help="Older documents edited before the timed night, as a share of a day's new ones "
        f"({MOVED_SHARE * 100:.0f}%% of them also move to another day). Default 0.05.",
    )
    nightly.add_argument(
        "--nightly-deletes",
        type=int,
        default=3,
        help="Interactions hard-deleted (one a day, within --verify_days) for a separate, "
        "timed night; 0 skips it. Default 3.",
    )
    nightly.add_argument(
        "--no-nightly-warmup",
        dest="nightly_warmup",
        action="store_false",
        help="Skip the untimed 2-day warm-up round before the histories.",
    )
    nightly.add_argument(
        "--verify_days",
        type=int,
        default=35,
        help="Passed to every nightly and intraday run (the pipeline's default is 35).",
    )
    intraday = parser.add_argument_group(
        "intraday scenario",
        "Hourly --intraday runs over one day, changes trickling in between, after one nightly.",
    )
    intraday.add_argument(
        "--intraday-histories",
        default=DEFAULT_INTRADAY_HISTORIES,
        help="Comma-separated days of history, each measured on its own (default "
        f"{DEFAULT_INTRADAY_HISTORIES}).",
    )
    intraday.add_argument(
        "--intraday-hours", type=int, default=24, help="Hourly runs (default 24: a day)."
    )
    intraday.add_argument(
        "--intraday-new", type=int, default=50, help="New documents an hour (default 50)."
    )
    intraday.add_argument(
        "--intraday-edits",
        type=int,
        default=5,
        help="Edits of existing documents with a change field, an hour (default 5).",
    )
    intraday.add_argument(
        "--intraday-hour-seconds",
        type=float,
        default=30.0,
        help="Real seconds one simulated hour lasts; the planner's 5-minute clock allowance "
        "is scaled by the same factor (default 30).",
    )
    onboarding = parser.add_argument_group(
        "onboarding scenario",
        "A chunked backfill (scripts/backfill.py's chunk commands) of a history, edits "
        "between chunks, then the first nightly.",
    )
    onboarding.add_argument(
        "--onboarding_days", "--onboarding-days", type=int, default=60,
        help="Days of history up to yesterday; the chunks cover all but yesterday (default 60).",
    )  # fmt: skip
    onboarding.add_argument(
        "--onboarding_per_day", "--onboarding-per-day", type=int, default=200,
        help="Documents a day, in tasks and projects (default 200).",
    )  # fmt: skip
    onboarding.add_argument(
        "--chunk_days", "--chunk-days", type=int, default=7, help="Days per chunk (default 7)."
    )
    return parser


def _days(parsed: argparse.ArgumentParser, text: str, option: str) -> list[int]:
    try:
        days = sorted({int(d) for d in text.split(",") if d.strip()})
    except ValueError:
        parsed.error(f"{option} takes comma-separated day counts")
    if not days or min(days) < 2:
        parsed.error(f"{option} needs day counts of 2 or more")
    return days


def parse_args(argv: list[str] | None, description: str = "") -> argparse.Namespace:
    parsed = parser(description)
    args = parsed.parse_args(argv)
    args.nightly_histories = _days(parsed, args.nightly_histories, "--nightly-histories")
    args.intraday_histories = _days(parsed, args.intraday_histories, "--intraday-histories")
    if args.intraday_hours < 1 or args.intraday_new < 1 or args.intraday_edits < 0:
        parsed.error("--intraday-hours and --intraday-new must be positive, --intraday-edits >= 0")
    if args.intraday_hour_seconds < 5:
        parsed.error("--intraday-hour-seconds must be at least 5")
    if args.nightly_per_day < 1 or args.verify_days < 1 or args.nightly_deletes < 0:
        parsed.error("--nightly-per-day and --verify_days must be positive")
    if args.onboarding_days < 2 or args.onboarding_per_day < 1 or args.chunk_days < 1:
        parsed.error("--onboarding_days must be 2 or more, --onboarding_per_day and "
                     "--chunk_days positive")  # fmt: skip
    if not 0 < args.nightly_edit_share <= 1:
        parsed.error("--nightly-edit-share must be in (0, 1]")
    args.command = shlex.join(
        [sys.executable, sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    )
    if args.docs < 1 or args.repeat < 1 or args.naive_batch < 1 or args.naive_single_cap < 1:
        parsed.error("--docs, --repeat, --naive-batch and --naive-single-cap must be positive")
    from devtools.bench.backfill import RunnerConfig

    try:
        args.workers = [RunnerConfig.parse(w) for w in args.workers.split(",") if w.strip()]
    except argparse.ArgumentTypeError as exc:
        parsed.error(str(exc))
    if not args.workers:
        parsed.error("--workers names no configuration")
    return args


def _report_without_backfill(args: argparse.Namespace, emu: Any) -> dict[str, Any]:
    """The report's common part when the backfill (which writes it) did not run."""
    from devtools.bench.process import machine, python_startup_seconds

    env = {**os.environ, **emu.env()}
    return {
        "command": args.command,
        "cwd": str(Path.cwd()),
        "machine": machine(),
        "python_startup_seconds": round(python_startup_seconds(env), 3),
        "valid": True,
        "failed_configs": [],
    }


def run_scenarios(args: argparse.Namespace, emu: Any, log_dir: Path) -> dict[str, Any]:
    """The backfill scenario, the nightly one, both (``all``), the intraday one or the
    onboarding one (``--scenario``).

    ``one_day_full`` is the backfill's one-day full dry run; ``nightly`` is only
    ever the incremental scenario's.
    """
    report: dict[str, Any] = {}
    if args.scenario in ("backfill", "all"):
        from devtools.bench.backfill import run_backfill

        report = run_backfill(args, emu, log_dir)
    if args.scenario in ("nightly", "all"):
        from devtools.bench.nightly import measure_nightly

        nightly = measure_nightly(args, emu, log_dir)
        report = report or _report_without_backfill(args, emu)
        report["valid"] = report["valid"] and nightly["ok"]
        report["nightly"] = nightly
    if args.scenario == "intraday":
        from devtools.bench.intraday import measure_intraday

        intraday = measure_intraday(args, emu, log_dir)
        report = _report_without_backfill(args, emu)
        report["valid"] = intraday["ok"]
        report["intraday"] = intraday
    if args.scenario == "onboarding":
        from devtools.bench.onboarding import measure_onboarding

        onboarding = measure_onboarding(args, emu, log_dir)
        report = _report_without_backfill(args, emu)
        report["valid"] = onboarding["ok"]
        report["onboarding"] = onboarding
    report["scenario"] = args.scenario
    return report


def main(argv: list[str] | None = None, description: str = "") -> int:
    """Start the emulators, run the scenarios, print (and write) the report."""
    args = parse_args(argv, description)
    from devtools import emulators, example_app_env
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
        report = run_scenarios(args, emu, log_dir)
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
