"""Where a pipeline run's time goes: one extra, untimed run under py-spy, summarised.

py-spy is a dev tool, not a dependency: ``.venv/bin/pip install py-spy``.
"""

from __future__ import annotations

import collections
import re
import shutil
import sys
from pathlib import Path

from devtools.bench.sync_run import run_sampled

PROFILE_RATE = 100
#: A frame of one of the product's DoFns: the thread it is on runs the pipeline's work.
DOFN_FRAME = re.compile(r"Fn\.\w+ \(.*pipelines/transforms/")


def profile(cmd: list[str], env: dict[str, str], out_dir: Path) -> Path:
    """Run ``cmd`` under py-spy (all threads, idle included, subprocesses) into ``out_dir``;
    print and keep (``pipeline-top.txt``) its summary."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not py_spy:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "pipeline.collapsed"
    spied = [
        py_spy, "record", "--subprocesses", "--idle", "--threads", "--rate", str(PROFILE_RATE),
        "--format", "raw", "--output", str(raw), "--", *cmd,
    ]  # fmt: skip
    done = run_sampled(spied, env, out_dir, "pipeline-profiled")
    if done.exit_code != 0:
        raise RuntimeError(f"profiled pipeline run failed (exit {done.exit_code}); see {out_dir}")
    report = summarize_profile(raw, done.wall_seconds)
    (out_dir / "pipeline-top.txt").write_text(report)
    print(report)
    return raw


def summarize_profile(raw: Path, wall: float, rate: int = PROFILE_RATE, top: int = 20) -> str:
    """Where the wall time of the work goes, from py-spy's collapsed stacks (idle included).

    The work threads are the ones that run the product's DoFns (the main thread
    on the in-memory runner, one thread per SDK worker otherwise); with idle
    frames kept, their samples are their timelines, so a function's inclusive
    share is the share of the work threads' time spent in it. When the work is
    on workers, the launcher's main thread (start-up, table preparation,
    waiting for the workers) is summarised on its own line.
    """
    threads: collections.Counter[str] = collections.Counter()
    in_dofns: collections.Counter[str] = collections.Counter()
    stacks: list[tuple[str, list[str], int]] = []
    main = None
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        roots = [f for f in frames if f.startswith(("process ", "thread "))]
        # A thread is known by its id: its name can change while it runs.
        thread = _thread_id(roots[-1]) if roots else "?"
        code = [f for f in frames if f not in roots]
        count = int(count_text)
        threads[thread] += count
        if thread.endswith("(MainThread)") and sum(r.startswith("process ") for r in roots) <= 1:
            main = thread  # the launcher's, not a worker process's
        if any(DOFN_FRAME.search(f) for f in code):
            in_dofns[thread] += count
        stacks.append((thread, code, count))
    if not stacks:
        return "profile: no samples\n"
    busiest = max(in_dofns.values(), default=0)
    work = {t for t, n in in_dofns.items() if n >= busiest / 5} or {threads.most_common(1)[0][0]}
    total = 0
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    launcher: collections.Counter[str] = collections.Counter()
    for thread, code, count in stacks:
        if thread == main and main not in work:
            launcher["all"] += count
            if any("_find_and_load" in f for f in code):
                launcher["imports"] += count
            elif any("wait_until_finish" in f or "run_pipeline" in f for f in code):
                launcher["pipeline"] += count
        if thread not in work:
            continue
        total += count
        if any("_find_and_load" in f for f in code):
            inclusive["(imports)"] += count
        for name in {_short_frame(f) for f in code if "(pipelines/" in f}:
            inclusive[name] += count
        if code:
            self_time[_short_frame(code[-1])] += count
    lines = [
        f"profile: {sum(threads.values())} samples at {rate}/s over {wall:.1f}s wall; "
        f"{len(work)} work thread(s) hold {total} ({total / rate:.1f}s): {', '.join(sorted(work))}",
        "samples per thread (idle included):",
        *(f"  {n / rate:6.1f}s  {t[:100]}" for t, n in threads.most_common(6)),
    ]
    if launcher:
        lines.append(
            f"launcher main thread: {launcher['all'] / rate:.1f}s = imports "
            f"{launcher['imports'] / rate:.1f}s + running the pipeline (waiting for the workers) "
            f"{launcher['pipeline'] / rate:.1f}s + the rest (options, graph, tables, summary) "
            f"{(launcher['all'] - launcher['imports'] - launcher['pipeline']) / rate:.1f}s"
        )
    lines += [
        "work threads, product functions and imports, inclusive (share of their time):",
        *(f"  {n / total:6.1%}  {n / rate:5.2f}s  {f}" for f, n in inclusive.most_common(top)),
        "work threads, top frames by self time (waits included):",
        *(f"  {n / total:6.1%}  {n / rate:5.2f}s  {f}" for f, n in self_time.most_common(top)),
    ]
    return "\n".join(lines) + "\n"


def _thread_id(root: str) -> str:
    """``thread (123): Name`` → ``thread 123 (Name)``; py-spy names a thread once it knows it."""
    ident, _, name = root.partition(": ")
    return f"thread {ident.removeprefix('thread (').rstrip(')')} ({name or '?'})"


def _short_frame(frame: str) -> str:
    """``func (path/to/file.py:12)`` → ``func (file.py)``, so lines of a function merge."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(where.split('/')[-2:])})"
