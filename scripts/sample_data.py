#!/usr/bin/env python3
"""Realistic sample data for the demo, the tests and the benchmark.

A thin entry point: the code is ``devtools/sample_data.py``.
"""

import sys

from devtools.sample_data import main

if __name__ == "__main__":
    sys.exit(main())
