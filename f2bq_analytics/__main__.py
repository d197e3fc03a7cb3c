"""``python -m f2bq_analytics``: one analytics call from the command line, as JSON."""

import sys

from f2bq_analytics.analytics import main

sys.exit(main())
