#!/usr/bin/env python3
"""Create the Firestore indexes that incremental runs need, or write them as a Firebase file.

    python scripts/create_firestore_indexes.py --project P [--database "(default)"] \\
        [--schemas_dir schemas] [--async] [--dry_run]
    python scripts/create_firestore_indexes.py --write_file  # rewrite deploy/firestore.indexes.json
    python scripts/create_firestore_indexes.py --check_file  # exit 1 if that file is stale

A thin entry point: the code is ``devtools/create_firestore_indexes.py``.
"""

import sys

from devtools.create_firestore_indexes import main

if __name__ == "__main__":
    sys.exit(main())
