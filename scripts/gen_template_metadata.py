#!/usr/bin/env python3
"""Generate ``deploy/metadata.json``, the Flex Template's parameters, from ``SyncOptions``.

    python scripts/gen_template_metadata.py           # rewrite the file
    python scripts/gen_template_metadata.py --check   # exit 1 if the committed file is stale

A thin entry point: the code is ``devtools/gen_template_metadata.py``.
"""

import sys

from devtools.gen_template_metadata import main

if __name__ == "__main__":
    sys.exit(main())
