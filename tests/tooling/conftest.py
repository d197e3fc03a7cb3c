"""Fixtures of the tooling tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fake_gcloud import install_fake_gcloud


@pytest.fixture
def fake_gcloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``gcloud`` on PATH that records its calls and plays an existing or missing job."""
    return install_fake_gcloud(tmp_path, monkeypatch)
