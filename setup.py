"""Packaging: ``pip install -e .[dev]`` locally, ``--setup_file ./setup.py`` on Dataflow.

Dataflow workers install this package, so ``pipelines`` and the table schemas in
``schemas/`` (package data) reach every worker. Runtime pins match the versions
the tests run against.

What each side installs:

* the app's backend, for the analytics (``f2bq_analytics``, its SQL as package data):
  ``pip install firestore-to-bigquery[analytics]``, the BigQuery and Firestore clients
  and no Apache Beam (``f2bq_analytics`` imports only ``pipelines.services.bigquery``, which
  needs no Beam);
* the sync (the launcher image, backfills from a laptop): ``[sync]``, which adds the
  pinned Apache Beam;
* Dataflow workers: the sdist Beam builds from this file, with the dependencies
  below and no extra: the worker container already holds the job's Apache Beam.

``devtools`` (the code behind ``scripts/``: emulators, sample data, deploy steps) is
declared only for an editable install (``pip install -e``), so it is importable in a
development checkout but is in neither the sdist Beam builds for the workers nor a
wheel; tests/tooling/test_packaging.py checks both.
"""

import sys

from setuptools import setup

#: What the workers and the analytics both import (Beam itself is on every worker).
RUNTIME = [
    "google-cloud-firestore==2.34.1",
    "google-cloud-bigquery==3.47.0",
    "google-api-core==2.44.0",
]
SYNC = ["apache-beam[gcp]==2.77.0"]
#: The sync's packages, one per stage of a run (see docs/code-map.md).
STAGES = ("cli", "convert", "plan", "services", "state", "transforms")
PIPELINES = ["pipelines", *(f"pipelines.{stage}" for stage in STAGES)]
SHIPPED = [*PIPELINES, "schemas", "f2bq_analytics"]
#: setuptools builds an editable install with the ``editable_wheel`` command (``develop``
#: in the legacy path); only then is ``devtools`` part of the package.
EDITABLE = bool({"editable_wheel", "develop"} & set(sys.argv[1:]))
DEV = [
    *SYNC,
    "pytest==9.2.0",
    # `make unit` runs the server-free tests on two workers (-n 2).
    "pytest-xdist==3.8.0",
    "ruff==0.17.6",
    # Local BigQuery emulator and the DuckDB pieces it needs offline.
    "bqemulator==1.4.0",
    "duckdb==1.5.5",
    "duckdb-extensions==1.5.5",
    "duckdb-extension-spatial==1.5.5",
    "duckdb-extension-avro==1.5.5",
    "numpy==2.4.6",
    "psutil",
    # Property tests (tests/unit/plan/test_splits.py).
    "hypothesis==6.170.17",
]

setup(
    name="firestore-to-bigquery",
    version="0.1.0",
    description="Nightly Beam sync of Firestore collections into partitioned BigQuery tables",
    python_requires=">=3.11",
    packages=SHIPPED + (["devtools", "devtools.bench"] if EDITABLE else []),
    package_data={"schemas": ["*.json"], "f2bq_analytics": ["sql/*.sql", "sql/views/*.sql"]},
    include_package_data=True,
    install_requires=RUNTIME,
    extras_require={"sync": SYNC, "analytics": [], "dev": DEV},
    entry_points={"console_scripts": ["firestore-to-bq=pipelines.cli.console:main"]},
)
