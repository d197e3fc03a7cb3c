#!/usr/bin/env python3
"""Create or migrate the sync's BigQuery dataset and tables, additively and idempotently.

    python scripts/setup_bigquery.py --project P --dataset D [--location US] \\
        [--schemas_dir DIR] [--dry_run]

A thin entry point: the code is ``devtools/setup_bigquery.py``.
"""

import sys

from devtools.setup_bigquery import main

if __name__ == "__main__":
    sys.exit(main())
