"""The HTTP API through TestClient, over a fake-embedder index."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from semsearch.api.app import create_app
from semsearch.search.settings import Settings
from tests.api.conftest import SEED_ID
from tests.conftest import FakeEmbedder


def test_get_search(client: TestClient) -> None:
    started = time.perf_counter()
    response = client.get(
        "/search", params={"q": "Kharkiv drone attacks", "k": 3, "mode": "hybrid"}
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert response.status_code == 200
    body = response.json()
    assert (body["query"], body["mode"], body["k"]) == ("Kharkiv drone attacks", "hybrid", 3)
    assert 0 < body["took_ms"] <= elapsed_ms  # milliseconds, within the request
    assert len(body["hits"]) == 3
    assert body["hits"][0]["article_id"] == SEED_ID


def test_post_search_matches_get(client: TestClient) -> None:
    got = client.get("/search", params={"q": "energy infrastructure", "k": 5, "mode": "lexical"})
    posted = client.post(
        "/search", json={"query": "energy infrastructure", "k": 5, "mode": "lexical"}
    )
    assert posted.status_code == 200
    assert posted.json()["hits"] == got.json()["hits"]


def test_hit_fields(client: TestClient) -> None:
    hit = client.get("/search", params={"q": "Kharkiv", "k": 1, "mode": "lexical"}).json()["hits"][
        0
    ]
    assert set(hit) == {
        "rank", "score", "article_id", "title", "section", "published", "author", "url", "tags",
        "paragraph", "part", "heading", "text", "snippet",
        "highlights", "start", "end", "chunk_id", "dense_rank", "dense_score", "lexical_rank",
        "lexical_score", "also_in", "answer", "anchored", "score_parts",
    }  # fmt: skip
    assert hit["paragraph"] == 12
    assert "<mark>Kharkiv</mark>" in hit["snippet"]
    for mode, legs in (
        ("hybrid", ["dense", "lexical"]),
        ("dense", ["dense"]),
        ("lexical", ["lexical"]),
    ):
        found = client.get("/search", params={"q": "Kharkiv", "mode": mode}).json()
        assert found["legs"] == legs


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 1001},
        {"q": "ok", "k": 0},
        {"q": "ok", "k": 101},
        {"q": "ok", "k": "ten"},
        {"q": "ok", "mode": "fuzzy"},
        {"q": "a\x00b"},
    ],
)
def test_get_validation_errors_are_422(client: TestClient, params: dict) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == 422
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": ""},
        {"query": " \t\n"},
        {"query": "x" * 1001},
        {"query": "ok", "k": 0},
        {"query": "ok", "k": 101},
        {"query": "ok", "mode": "fuzzy"},
        {"query": "ok", "unknown": 1},
        {"query": 42},
        {"query": "ok", "k": 5.5},
        {"query": "ok", "k": True},
        {"query": "ok", "k": "5"},
        [],
    ],
)
def test_post_validation_errors_are_422(client: TestClient, body: object) -> None:
    response = client.post("/search", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "raw", [b'{"query": "\\ud800 power"}', b'{"query": "power", "k": 1e400}', b"{not json", b"null"]
)
def test_raw_bodies_that_are_422(client: TestClient, raw: bytes) -> None:
    response = client.post("/search", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"]


def test_invalid_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/search", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_blank_query_message_is_clear(client: TestClient) -> None:
    detail = client.get("/search", params={"q": "   "}).json()["detail"]
    assert "the query is empty" in detail[0]["msg"]


def test_hostile_queries_do_not_fail(client: TestClient) -> None:
    for query in ['"', "NEAR(a b)", "a OR b AND NOT c", "'; DROP TABLE chunks; --", "😀 مرحبا é"]:
        assert client.get("/search", params={"q": query}).status_code == 200


def test_health_stats_article(client: TestClient) -> None:
    assert client.get("/health").json() == {
        "status": "ok", "index": "loaded", "generation": "gen-1", "store": "ok", "detail": None
    }  # fmt: skip
    stats = client.get("/stats").json()
    assert (stats["articles"], stats["passages"], stats["model"]) == (1, 18, "fake-hash")
    article = client.get(f"/articles/{SEED_ID}").json()
    assert article["title"].startswith("US-brokered")
    assert [p["paragraph"] for p in article["paragraphs"]] == list(range(1, 19))


@pytest.mark.parametrize("article_id", ["nope.txt", "..%2F..%2Fetc%2Fpasswd", "a/../b.txt"])
def test_unknown_article_is_404(client: TestClient, article_id: str) -> None:
    response = client.get(f"/articles/{article_id}")
    assert response.status_code == 404
    assert "no article" in response.json()["detail"]


def test_no_index_is_503_with_advice(empty_client: TestClient) -> None:
    for response in [
        empty_client.get("/search", params={"q": "power"}),
        empty_client.post("/search", json={"query": "power"}),
        empty_client.get("/stats"),
        empty_client.get(f"/articles/{SEED_ID}"),
    ]:
        assert response.status_code == 503
        assert "run `semsearch index`" in response.json()["detail"]
    health = empty_client.get("/health")
    assert health.status_code == 200 and health.json()["index"] == "missing"


def test_index_built_after_start_is_picked_up(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    from semsearch.index.builder import build_index
    from tests.conftest import SEEDS

    settings = Settings(index_dir=tmp_path / "index")
    with TestClient(create_app(settings, fake_embedder)) as client:
        assert client.get("/search", params={"q": "power"}).status_code == 503
        build_index(SEEDS, tmp_path / "index", fake_embedder)
        assert client.get("/search", params={"q": "power"}).status_code == 200


def test_index_of_other_model_is_503(fake_index: Path) -> None:
    with TestClient(
        create_app(Settings(index_dir=fake_index), FakeEmbedder(model_id="other"))
    ) as c:
        response = c.get("/search", params={"q": "power"})
    assert response.status_code == 503
    assert "built with model 'fake-hash'" in response.json()["detail"]
