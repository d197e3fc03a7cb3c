"""Settings every test shares: the example app's schema folder and the markers.

The emulator fixtures live in ``tests/integration/conftest.py``, so a unit test cannot
reach a server by asking for a fixture.
"""

from __future__ import annotations

import os

import pytest

from pipelines.convert.table_spec import SCHEMAS_DIR_ENV
from tests.support import example_app


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs the local Firestore and BigQuery emulators"
    )
    # Every command the tests run, in process or as a subprocess, reads them.
    os.environ[SCHEMAS_DIR_ENV] = str(example_app.SCHEMAS)
