#!/usr/bin/env python3
"""Deploy the hourly intraday sync as a Cloud Run Job, and the Cloud Scheduler job that runs it.

    python scripts/deploy_cloud_run_job.py --project P --region R --dataset D \\
        [--collections a,b] [--bq_location US] [--tag TAG | --image URI] \\
        [--memory 2Gi] [--cpu 1] [--task_timeout_minutes 50] \\
        [--name firestore-to-bq] [--schedule "7 * * * *"] [--schemas_dir DIR] [--dry_run]

A thin entry point: the code is ``devtools/deploy_cloud_run_job.py``.
"""

import sys

from devtools.deploy_cloud_run_job import main

if __name__ == "__main__":
    sys.exit(main())
