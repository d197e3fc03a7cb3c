#!/usr/bin/env python3
"""Create or update the Cloud Scheduler jobs: the nightly incremental sync and a weekly full one.

    python scripts/schedule_nightly.py --project P --region R --bucket B --dataset D \\
        [--collections a,b] [--lookback_days N] [--bq_location US] [--max_workers N] \\
        [--max_catchup_days N] [--verify_days N] [--nightly_mode incremental|full] \\
        [--name firestore-to-bq] [--schedule "0 3 * * *"] [--weekly_schedule "0 4 * * 0"] \\
        [--time_zone Etc/UTC] [--schemas_dir DIR] [--dry_run]

A thin entry point: the code is ``devtools/schedule_nightly.py``.
"""

import sys

from devtools.schedule_nightly import main

if __name__ == "__main__":
    sys.exit(main())
