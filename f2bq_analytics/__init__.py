"""The app's analytics over the synced tables, for the app's backend: needs no Apache Beam.

A package of its own, beside ``pipelines`` (the sync), so that the backend installs
``google-cloud-bigquery`` and this, never Beam, and the sync's Dataflow workers never
import it. It uses only the Beam-free part of ``pipelines`` (``pipelines.services.bigquery``:
the client factory and identifier checks); ``tests/tooling/test_packaging.py`` imports it
with Beam blocked.

    from f2bq_analytics import Analytics
    python -m f2bq_analytics user_analytics --project P --dataset D --user_id U
"""

from f2bq_analytics.analytics import Analytics, AsyncAnalytics

__all__ = ["Analytics", "AsyncAnalytics"]
