"""Shared pytest fixtures: one pair of local emulators for the whole test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from devtools import emulators as emulators_module
from devtools.emulators import Emulators

if TYPE_CHECKING:
    from google.cloud import bigquery, firestore

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only every Nth selected test, starting at the Ith (1-based); "
        "`make unit` runs two shards at once, one per core",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs the local Firestore and BigQuery emulators"
    )
    if config.getoption("--shard"):
        config.pluginmanager.register(_Shard(config.getoption("--shard")), "shard")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag every test that uses the emulators, so `-m "not integration"` skips them.

    ``fixturenames`` is the closure, so ``firestore_db`` and ``bq_client`` count too.
    A test that starts servers or a pipeline subprocess on its own, without the
    fixture, marks itself (``pytestmark = pytest.mark.integration`` in its module).
    """
    for item in items:
        if "emulators" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


class _Shard:
    """``--shard I/N``: keep every Nth of the tests that -m/-k left, from the Ith on."""

    def __init__(self, value: str) -> None:
        index, _, count = value.partition("/")
        try:
            self.index, self.count = int(index), int(count)
        except ValueError:
            raise pytest.UsageError(f"--shard {value!r}: expected I/N, e.g. 1/2") from None
        if not 1 <= self.index <= self.count:
            raise pytest.UsageError(f"--shard {value!r}: I must be between 1 and N")

    @pytest.hookimpl(trylast=True)  # after -m has deselected: both shards get unit tests
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]):
        kept = items[self.index - 1 :: self.count]
        kept_ids = {id(item) for item in kept}
        config.hook.pytest_deselected(items=[i for i in items if id(i) not in kept_ids])
        items[:] = kept


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    """Start both emulators once per session and point the Google clients at them."""
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
