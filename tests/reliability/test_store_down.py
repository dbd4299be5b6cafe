"""A Milvus server that stops answering: searches get 503 with Retry-After, /health says the
store is unreachable, and both recover by themselves when it answers again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import semsearch.index.milvus_generation
import semsearch.index.milvus_rows
import semsearch.index.milvus_sentences
import semsearch.search.serving
from semsearch.api.app import create_app
from semsearch.index.builder import build_index
from semsearch.index.errors import StoreUnavailable
from semsearch.search.settings import store_for
from tests.conftest import SEEDS, FakeEmbedder, milvus_settings

pytest.importorskip("pymilvus")


def test_a_store_server_down_is_a_503_and_health_says_so_until_it_is_back(
    tmp_path: Path, milvus_uri: str, milvus_alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = milvus_settings(tmp_path / "index", milvus_uri, milvus_alias)
    build_index(SEEDS, settings.index_dir, FakeEmbedder(), store=store_for(settings))
    monkeypatch.setattr(semsearch.search.serving, "STORE_CHECK_SECONDS", 0.0)
    answering = semsearch.index.milvus_generation.call
    down = False

    def server(method: Any, *args: Any, **kwargs: Any) -> Any:
        if down:
            raise StoreUnavailable("Milvus cannot be reached: connection refused")
        return answering(method, *args, **kwargs)

    for module in (
        semsearch.index.milvus_generation,
        semsearch.index.milvus_rows,
        semsearch.index.milvus_sentences,
    ):
        monkeypatch.setattr(module, "call", server)
    with TestClient(create_app(settings, FakeEmbedder())) as client:
        answered = client.get("/search", params={"q": "power"})
        assert answered.status_code == 200
        assert client.get("/health").json()["store"] == "ok"
        # A Milvus before 2.5 has no full-text search: lexical is refused (422) before any call.
        modes = ["hybrid", "dense"] + (["lexical"] if "lexical" in answered.json()["legs"] else [])
        down = True
        for mode in modes:
            refused = client.get("/search", params={"q": "power", "mode": mode})
            assert refused.status_code == 503, refused.text
            assert refused.headers["Retry-After"] == "5"
            assert "cannot be reached" in refused.json()["detail"]
        page = client.get("/", params={"q": "power"}, headers={"Accept": "text/html"})
        assert page.status_code == 503 and "cannot be reached" in page.text
        health = client.get("/health")
        assert health.status_code == 503 and health.headers["Retry-After"] == "5"
        assert health.json() | {"detail": None} == {
            "status": "unavailable",
            "index": "loaded",
            "generation": "gen-1",
            "store": "unreachable",
            "detail": None,
        }
        down = False
        assert client.get("/health").json()["status"] == "ok"
        assert client.get("/search", params={"q": "power"}).status_code == 200
