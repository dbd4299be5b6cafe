"""App clients shared by the API and page tests: one over the seed index, one with no index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from semsearch.api.app import create_app
from semsearch.search.settings import Settings
from tests.conftest import FakeEmbedder

SEED_ID = "000_9d59a1cdc1672ff3.txt"


@pytest.fixture
def client(fake_index: Path, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=fake_index), fake_embedder)) as client:
        yield client


@pytest.fixture
def empty_client(tmp_path: Path, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=tmp_path / "none"), fake_embedder)) as client:
        yield client
