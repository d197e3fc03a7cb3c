"""Packaging: ``pip install -e .[dev]`` locally, ``--setup_file ./setup.py`` on Dataflow.

Dataflow workers install this package, so ``pipelines`` and the table schemas in
``schemas/`` (package data) reach every worker. Runtime pins match the versions
the tests run against.
"""

from setuptools import setup

RUNTIME = [
    "apache-beam[gcp]==2.77.0",
    "google-cloud-firestore==2.34.1",
    "google-cloud-bigquery==3.47.0",
    "google-api-core==2.44.0",
]
DEV = [
    "pytest==9.2.0",
    "ruff==0.17.6",
    # Local BigQuery emulator and the DuckDB pieces it needs offline.
    "bqemulator==1.4.0",
    "duckdb==1.5.5",
    "duckdb-extensions==1.5.5",
    "duckdb-extension-spatial==1.5.5",
    "duckdb-extension-avro==1.5.5",
    "numpy==2.4.6",
    "psutil",
    # Property tests (tests/test_splits.py).
    "hypothesis==6.170.17",
]

setup(
    name="firestore-to-bigquery",
    version="0.1.0",
    description="Nightly Beam sync of Firestore collections into partitioned BigQuery tables",
    python_requires=">=3.11",
    packages=["pipelines", "pipelines.transforms", "schemas"],
    package_data={"schemas": ["*.json"], "pipelines": ["sql/*.sql", "sql/views/*.sql"]},
    include_package_data=True,
    install_requires=RUNTIME,
    extras_require={"dev": DEV},
    entry_points={"console_scripts": ["firestore-to-bq=pipelines.firestore_to_bq:main"]},
)
