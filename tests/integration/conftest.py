"""The emulator tests' fixtures: one pair of local emulators for the whole session."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from devtools import emulators as emulators_module
from devtools.emulators import Emulators

if TYPE_CHECKING:
    from google.cloud import bigquery, firestore

HERE = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag every test of this folder, so `-m integration` still selects them."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    """Start both emulators once per session and point the Google clients at them.

    One pair for the whole suite: under pytest-xdist every worker would start
    its own, so the emulator tests run without ``-n`` (``make test``, ``.ci/run``);
    ``make unit`` runs the other folders on ``-n 2``.
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
