"""The ``firestore-to-bq`` console script: the sync's command line, or what to install.

The analytics install (``[analytics]``) has no Apache Beam, and the sync imports
it at once; without this, ``firestore-to-bq`` there would end in an import
traceback instead of one line saying which extra to install.
"""

from __future__ import annotations

import os
import sys

INSTALL = "pip install 'firestore-to-bigquery[sync]'"


def main() -> int:
    try:
        from pipelines.firestore_to_bq import cli as sync_main
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "apache_beam":
            raise
        message = f"error: the sync needs Apache Beam, which is not installed: {INSTALL}"
        print(message, file=sys.stderr)
        return 1
    try:
        return sync_main()
    except BrokenPipeError:
        # Output piped into a reader that stopped (``firestore-to-bq --help | head``):
        # as the Python docs advise, point stdout at devnull so the exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
