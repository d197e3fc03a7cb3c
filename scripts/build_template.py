#!/usr/bin/env python3
"""Build the launcher image and publish the Flex Template spec.

    python scripts/build_template.py --project P --region R --bucket B \\
        [--repository firestore-to-bq] [--tag TAG] [--schemas_dir DIR] [--dry_run]

A thin entry point: the code is ``devtools/build_template.py``.
"""

import sys

from devtools.build_template import main

if __name__ == "__main__":
    sys.exit(main())
