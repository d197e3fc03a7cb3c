#!/usr/bin/env python3
"""Prove the speed: the sync against a hand-made floor and a naive baseline, on the emulators.

    .venv/bin/python scripts/benchmark.py [--docs 20000] [--repeat 3] [--json bench-20k.json]
        [--workers in_memory,multi_threading:2,multi_processing:2] [--keep-data]
        [--profile DIR] [--scenario backfill|nightly|all]
        [--nightly-histories 14,90,365] [--nightly-per-day 200] [--verify_days 35]

Starts its own emulators, seeds them, and measures: ``backfill`` (the default)
the pipeline against the floor and the naive baseline, and a one-day full dry
run (``one_day_full`` in the report); ``nightly`` the incremental nightly over
histories of several lengths (``nightly`` in the report); ``all`` both. Prints
a table ending with the machine and the exact command; ``--json`` holds the
same and every run. Exit status 0 when every reported run read and wrote what
it should (times are never judged), 1 otherwise.

A thin entry point: the code is the package ``devtools/bench/`` (its docstring
says what each scenario measures and where each figure comes from).
"""

import sys

from devtools.bench.cli import main

if __name__ == "__main__":
    sys.exit(main(description=__doc__.split("\n\n")[0]))
