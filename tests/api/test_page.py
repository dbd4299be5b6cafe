"""The search page, the HTML article view, /metrics and request ids, through TestClient."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import SEED_ID

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_blank_page_has_the_search_form(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<form class="search" action="/" method="get"' in response.text
    assert 'name="mode"' in response.text and 'name="k"' in response.text
    assert "hits" not in re.findall(r'id="(\w+)"', response.text)


def test_page_search_lists_highlighted_passages(client: TestClient) -> None:
    response = client.get("/", params={"q": "Kharkiv drone", "mode": "lexical", "k": "2"})
    assert response.status_code == 200
    assert response.text.count('<li class="hit"') == 2
    assert "<mark>Kharkiv</mark>" in response.text
    assert f'href="/articles/{SEED_ID}?q=Kharkiv+drone&amp;mode=lexical&amp;k=2&amp;p=12#p12"' in (
        response.text
    )
    assert 'value="Kharkiv drone"' in response.text
    assert '<option value="lexical" selected>' in response.text


def test_page_escapes_the_query(client: TestClient) -> None:
    response = client.get("/", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_page_says_when_nothing_matches(client: TestClient) -> None:
    response = client.get("/", params={"q": "zzzqqq", "mode": "lexical"})
    assert response.status_code == 200
    assert 'id="empty"' in response.text
    assert "No passages match" in response.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "power", "k": "0"}, "the number of results must be from 1 to 100"),
        ({"q": "power", "k": "many"}, "the number of results must be from 1 to 100"),
        ({"q": "x" * 1001}, "the limit is 1000"),
    ],
)
def test_page_shows_bad_input_as_a_message(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    response = client.get("/", params=params)
    assert response.status_code == 422
    assert 'role="alert"' in response.text and message in response.text


def test_page_without_an_index_says_what_to_run(empty_client: TestClient) -> None:
    response = empty_client.get("/", params={"q": "power"})
    assert response.status_code == 503
    assert "run `semsearch index` first" in response.text
    assert '<form class="search"' in response.text


def test_article_is_json_unless_html_is_asked_for(client: TestClient) -> None:
    for accept in ("*/*", "application/json", "text/html;q=0.5, application/json"):
        response = client.get(f"/articles/{SEED_ID}", headers={"accept": accept})
        assert response.headers["content-type"] == "application/json", accept
        assert response.json()["id"] == SEED_ID


def test_article_page_highlights_the_hit_paragraph(client: TestClient) -> None:
    response = client.get(f"/articles/{SEED_ID}", params={"p": 12, "q": "Kharkiv"}, headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    hit = re.findall(r'<p class="para hit" id="p(\d+)"', response.text)
    assert hit == ["12"]
    assert "<mark>Kharkiv</mark>" in response.text
    assert 'href="/?q=Kharkiv"' in response.text


def test_unknown_article_page_is_a_friendly_404(client: TestClient) -> None:
    response = client.get("/articles/nope.txt", headers=BROWSER)
    assert response.status_code == 404
    assert "No such article" in response.text
    assert client.get("/articles/nope.txt").json()["detail"] == "no article with id 'nope.txt'"


def test_static_files_are_served(client: TestClient) -> None:
    assert client.get("/static/style.css").status_code == 200
    assert "keydown" in client.get("/static/page.js").text


def test_metrics_count_requests_by_route_and_mode(client: TestClient) -> None:
    client.get("/search", params={"q": "power", "mode": "lexical"})
    client.post("/search", json={"query": "power", "mode": "dense"})
    client.get(f"/articles/{SEED_ID}")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    labels = 'method="GET",mode="lexical",route="/search",status="200"'
    assert f"semsearch_http_requests_total{{{labels}}} 1.0" in text
    assert 'route="/articles/{article_id:path}"' in text
    assert 'semsearch_http_request_duration_seconds_count{mode="dense",route="/search"} 1.0' in text
    for stage, mode in [("lexical", "lexical"), ("embed", "dense"), ("dense", "dense")]:
        labels = f'mode="{mode}",stage="{stage}"'
        assert f"semsearch_search_stage_duration_seconds_count{{{labels}}}" in text


def test_metrics_describe_the_index(client: TestClient, fake_index: Path) -> None:
    text = client.get("/metrics").text
    assert "semsearch_index_loaded 1.0" in text
    assert "semsearch_index_passages 18.0" in text
    assert "semsearch_index_generation 1.0" in text
    assert re.search(r'semsearch_index_info\{generation="gen-1",model="fake-hash"\} 1.0', text)
    manifest = json.loads((fake_index / "gen-1" / "manifest.json").read_text())
    on_disk = sum((fake_index / "gen-1" / name).stat().st_size for name in manifest["files"])
    size = re.search(r"^semsearch_index_size_bytes (\S+)$", text, re.M)
    assert size and float(size.group(1)) == on_disk  # the five data files, not the manifest


def test_metrics_without_an_index(empty_client: TestClient) -> None:
    assert "semsearch_index_loaded 0.0" in empty_client.get("/metrics").text


def test_requests_get_an_id_and_a_json_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="semsearch.access"):
        started = time.perf_counter()
        response = client.get("/search", params={"q": "power", "mode": "lexical"})
        elapsed_ms = (time.perf_counter() - started) * 1000
        echoed = client.get("/health", headers={"x-request-id": "abc-123"})
        unsafe = client.get("/health", headers={"x-request-id": "bad id\n"})
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", request_id)
    assert echoed.headers["x-request-id"] == "abc-123"
    assert unsafe.headers["x-request-id"] != "bad id\n"
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "semsearch.access"]
    first = lines[0]
    assert first["request_id"] == request_id
    assert (first["route"], first["mode"], first["status"]) == ("/search", "lexical", 200)
    assert 0 < first["ms"] <= elapsed_ms  # milliseconds, within the request


def test_search_responses_carry_took_ms(client: TestClient) -> None:
    for call in (
        lambda: client.get("/search", params={"q": "power"}),
        lambda: client.post("/search", json={"query": "power", "mode": "dense"}),
    ):
        started = time.perf_counter()
        took_ms = call().json()["took_ms"]
        assert 0 < took_ms <= (time.perf_counter() - started) * 1000  # ms, within the request


def test_article_page_without_an_index_is_a_friendly_503(empty_client: TestClient) -> None:
    response = empty_client.get(f"/articles/{SEED_ID}", headers=BROWSER)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "Search is not available yet" in response.text
    assert "run `semsearch index` first" in response.text
    assert empty_client.get(f"/articles/{SEED_ID}").json()["detail"].startswith("no index at")
