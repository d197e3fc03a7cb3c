"""Shared pytest fixtures: one pair of local emulators for the whole test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from devtools import emulators as emulators_module
from devtools.emulators import Emulators
from pipelines.convert.table_spec import SCHEMAS_DIR_ENV
from tests import example_app

if TYPE_CHECKING:
    from google.cloud import bigquery, firestore


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs the local Firestore and BigQuery emulators"
    )
    # Every command the tests run, in process or as a subprocess, reads them.
    os.environ[SCHEMAS_DIR_ENV] = str(example_app.SCHEMAS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag every test that uses the emulators, so `-m "not integration"` skips them.

    ``fixturenames`` is the closure, so ``firestore_db`` and ``bq_client`` count too.
    A test that starts servers or a pipeline subprocess on its own, without the
    fixture, marks itself (``pytestmark = pytest.mark.integration`` in its module).
    """
    for item in items:
        if "emulators" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    """Start both emulators once per session and point the Google clients at them.

    One pair for the whole suite: under pytest-xdist every worker would start
    its own, so the emulator tests run without ``-n`` (``make test``, ``.ci/run``);
    ``make unit`` uses ``-n 2`` with ``-m "not integration"`` only.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.fail("the emulator tests run in one process: run them without -n", pytrace=False)
    state_dir = tmp_path_factory.mktemp("emulators")
    emu = emulators_module.start(state_dir)
    saved = {key: os.environ.get(key) for key in emu.env()}
    os.environ.update(emu.env())
    try:
        yield emu
    finally:
        emu.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def firestore_db(emulators: Emulators) -> firestore.Client:
    """A Firestore client on an emptied emulator, so tests don't see each other's data."""
    from google.cloud import firestore

    emulators.reset_firestore()
    return firestore.Client(project=emulators.project)


@pytest.fixture
def bq_client(emulators: Emulators) -> bigquery.Client:
    """A BigQuery client talking to the emulator with anonymous credentials."""
    import google.auth.credentials
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    return bigquery.Client(
        project=emulators.project,
        credentials=google.auth.credentials.AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=emulators.bigquery_endpoint),
    )
