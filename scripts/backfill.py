#!/usr/bin/env python3
"""Backfill a long date range as a series of shorter sync runs, resumably.

    python scripts/backfill.py --start_date 2025-01-01 --end_date 2025-12-31 \\
        [--chunk_days 7] [--dry_run] \\
        -- --project P --dataset D --runner DataflowRunner ...

A thin entry point: the code is ``pipelines/cli/backfill.py``, which the installed
package runs as ``firestore-to-bq backfill``.
"""

import sys

from pipelines.cli.backfill import main

if __name__ == "__main__":
    sys.exit(main())
