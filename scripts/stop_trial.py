#!/usr/bin/env python3
"""SIGTERM a sync run at a random moment, many times in a row, and check what each left.

    .venv/bin/python scripts/stop_trial.py [--runs 200] [--seed S] [--keep]

A thin entry point: the code is ``devtools/stop_trial.py`` (its docstring says
what is checked after each run and why).
"""

import sys

from devtools.stop_trial import main

if __name__ == "__main__":
    sys.exit(main())
