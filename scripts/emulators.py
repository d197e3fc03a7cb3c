#!/usr/bin/env python3
"""Start and stop local Firestore and BigQuery emulators for development and tests.

A thin entry point: the code is ``devtools/emulators.py``.
"""

import sys

from devtools.emulators import main

if __name__ == "__main__":
    sys.exit(main())
