"""Run one program as the benchmark times it: wall time, peak RSS of its process tree, logs.

Also where the figures were measured (the machine) and the fixed cost of a new
Python process that imports the sync, which every pipeline run pays.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import REPO_ROOT

SAMPLE_SECONDS = 0.05
PIPELINE_TIMEOUT_S = 3600.0
#: The root cause in a failed run's stderr (not the runner's "Traceback" wrapper lines).
ERROR_LINE = re.compile(r"^\s*(?:\w+\.)*\w+(?:Error|Exception): (?!Traceback).*$", re.MULTILINE)


@dataclass(frozen=True)
class Sampled:
    """One finished program: exit code, wall seconds, peak tree RSS, and its logs."""

    exit_code: int
    wall_seconds: float
    peak_rss_bytes: int
    stdout: Path
    stderr: Path


def tree_rss(proc: Any) -> int:
    """RSS of ``proc`` and all its descendants, in bytes (vanished ones count 0)."""
    import psutil

    total = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def run_sampled(cmd: list[str], env: dict[str, str], log_dir: Path, name: str) -> Sampled:
    """Run ``cmd`` with its output in ``log_dir/name.out|.err``, sampling its tree's RSS."""
    import psutil

    out_path, err_path = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        peak = 0
        try:
            watched = psutil.Process(proc.pid)
            while proc.poll() is None:
                peak = max(peak, tree_rss(watched))
                if time.perf_counter() - t0 > PIPELINE_TIMEOUT_S:
                    raise TimeoutError(f"{name} ran longer than {PIPELINE_TIMEOUT_S:.0f}s")
                time.sleep(SAMPLE_SECONDS)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        wall = time.perf_counter() - t0
    return Sampled(proc.returncode, wall, peak, out_path, err_path)


def failure_cause(stderr: str) -> str:
    """The last root-cause line of a failed run's stderr, not the runner's wrapping."""
    causes = ERROR_LINE.findall(stderr) or stderr.strip().splitlines() or ["(no output)"]
    return causes[-1].strip()[:400]


def python_startup_seconds(env: dict[str, str]) -> float:
    """Interpreter start plus importing the entry point: a fixed cost of every run."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import pipelines.firestore_to_bq"],
        cwd=REPO_ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - t0


def machine() -> dict[str, Any]:
    """Where the figures were measured: cores, RAM, CPU model, Python."""

    def first(path: str, key: str) -> str | None:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
        return None

    mem_kb = first("/proc/meminfo", "MemTotal")
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "cpu_model": first("/proc/cpuinfo", "model name") or platform.processor() or None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
