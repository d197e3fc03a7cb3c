"""Both emulator variables are honoured with or without ``http://``."""

import pytest

from pipelines.services import bigquery as bq
from pipelines.services import firestore as fs


@pytest.mark.parametrize("value", ["127.0.0.1:8681", "http://127.0.0.1:8681"])
def test_firestore_emulator_host_with_or_without_scheme(monkeypatch, value):
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", value)
    client = fs.make_client("demo-project")
    assert client._emulator_host == "127.0.0.1:8681"


@pytest.mark.parametrize("value", ["127.0.0.1:9050", "http://127.0.0.1:9050"])
def test_bigquery_emulator_host_with_or_without_scheme(monkeypatch, value):
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", value)
    client = bq.make_client("demo-project")
    assert client._connection.API_BASE_URL == "http://127.0.0.1:9050"
