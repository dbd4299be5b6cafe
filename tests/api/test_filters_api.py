"""Metadata, filters and paging through the HTTP API, the search page and the CLI."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from semsearch.api.app import create_app
from semsearch.index.builder import build_from_articles
from semsearch.search import service as service_module
from semsearch.search.cli import app as cli
from semsearch.search.settings import Settings
from tests.conftest import FakeEmbedder
from tests.index.test_filters import QUERY, filter_corpus

BROWSER = {"accept": "text/html"}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("filters") / "index"
    articles = filter_corpus()
    # One url that must never become a link.
    articles[-1] = dataclasses.replace(articles[-1], url="javascript:alert(1)")
    build_from_articles(articles, folder, FakeEmbedder(), source="test")
    return folder


@pytest.fixture
def api(index_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=index_dir), FakeEmbedder())) as client:
        yield client


def test_get_filters_by_sections_and_dates_and_returns_metadata(api: TestClient) -> None:
    response = api.get(
        "/search",
        params=[("q", QUERY), ("section", "tech"), ("section", "sport"), ("k", "20"),
                ("after", "2005-01-01"), ("before", "2005-02-15")],
    )  # fmt: skip
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    assert {hit["article_id"] for hit in hits} == {"tech/0.txt", "tech/1.txt", "tech/2.txt"}
    first = hits[0]
    assert (first["section"], first["author"]) == ("tech", "Jane Doe")
    assert first["url"].startswith("https://example.com/tech/")
    assert "2005-01-01" <= first["published"] <= "2005-02-15"


def test_post_takes_the_same_filters_and_pages(api: TestClient) -> None:
    body = {"query": QUERY, "k": 5, "section": ["business"], "after": "2005-06-01"}
    first = api.post("/search", json=body).json()
    second = api.post("/search", json={**body, "offset": 5}).json()
    both = api.post("/search", json={**body, "k": 10}).json()
    assert (first["offset"], second["offset"]) == (0, 5)
    assert [h["rank"] for h in second["hits"]] == [6, 7, 8, 9, 10]
    assert [h["chunk_id"] for h in first["hits"] + second["hits"]] == [
        h["chunk_id"] for h in both["hits"]
    ]
    assert all(h["section"] == "business" and h["published"] >= "2005-06-01" for h in both["hits"])
    unfiltered = api.post("/search", json={"query": QUERY, "k": 100}).json()["hits"]
    assert "tech" not in {h["section"] for h in unfiltered}
    tech = api.post("/search", json={"query": QUERY, "section": ["tech"]}).json()["hits"]
    assert len(tech) == 6


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"after": "2005-02-30"}, "after must be a date written YYYY-MM-DD, not '2005-02-30'"),
        ({"before": "soon"}, "before must be a date written YYYY-MM-DD, not 'soon'"),
        ({"after": "2005-03-01", "before": "2005-01-01"}, "after (2005-03-01) is later than"),
        ({"k": "20", "offset": "190"}, "offset + k is 210; results go 200 deep at most"),
    ],
)
def test_bad_filters_and_offsets_are_422_with_a_clear_detail(
    api: TestClient, params: dict, detail: str
) -> None:
    body = {name: int(v) if name in ("k", "offset") else v for name, v in params.items()}
    get = api.get("/search", params={"q": QUERY, **params})
    post = api.post("/search", json={"query": QUERY, **body})
    for response in (get, post):
        assert response.status_code == 422
        assert detail in json.dumps(response.json()["detail"], ensure_ascii=False)


def test_negative_offsets_and_unknown_fields_are_422(api: TestClient) -> None:
    assert api.get("/search", params={"q": QUERY, "offset": "-1"}).status_code == 422
    assert api.get("/search", params={"q": QUERY, "offset": "200"}).status_code == 422
    assert api.post("/search", json={"query": QUERY, "section": "tech"}).status_code == 422


def test_the_article_answer_has_its_metadata(api: TestClient) -> None:
    article = api.get("/articles/tech/1.txt").json()
    assert (article["section"], article["published"], article["author"], article["url"]) == (
        "tech",
        "2005-02-15",
        "Jane Doe",
        "https://example.com/tech/1",
    )
    loose = api.get("/articles/loose.txt").json()
    assert (loose["section"], loose["published"], loose["author"]) == ("", None, "")


def test_the_page_shows_metadata_more_results_and_section_links(api: TestClient) -> None:
    page = api.get("/", params={"q": QUERY, "k": "10"}, headers=BROWSER).text
    assert page.count('<li class="hit"') == 10
    assert '<span class="hit-about">business · 2005-' in page and "· Ann Lee</span>" in page
    assert 'class="hit-source" href="https://example.com/business/' in page
    assert 'id="more" href="/?q=power+grid+outage&amp;mode=hybrid&amp;k=10&amp;offset=10"' in page
    assert (
        '<a class="facet" href="/?q=power+grid+outage&amp;mode=hybrid&amp;k=10&amp;'
        'section=business">business <span class="count">200</span></a>'
    ) in page
    second = api.get("/", params={"q": QUERY, "k": "10", "offset": "10"}, headers=BROWSER).text
    assert '<ol class="hits" id="hits" start="11">' in second and "passages 11–20" in second
    narrowed = api.get("/", params={"q": QUERY, "section": ["tech", "sport"]}, headers=BROWSER)
    assert narrowed.text.count('<li class="hit"') == 10
    assert 'class="facet selected"' in narrowed.text and 'id="more"' not in narrowed.text
    assert '<input type="hidden" name="section" value="tech">' in narrowed.text
    last = api.get("/", params={"q": QUERY, "k": "10", "offset": "191"}, headers=BROWSER)
    assert last.status_code == 422 and "200 deep at most" in last.text


def test_the_article_page_shows_its_metadata_and_only_safe_links(api: TestClient) -> None:
    page = api.get("/articles/tech/1.txt", headers=BROWSER).text
    assert (
        '<p class="article-about">tech · 2005-02-15 · Jane Doe · tags: gadgets, note 1 · '
        '<a href="https://example' in page
    )
    loose = api.get("/articles/loose.txt", headers=BROWSER).text
    assert "javascript:" not in loose and "article-about" not in loose
    hits = api.get("/", params={"q": "loose page", "mode": "lexical"}, headers=BROWSER).text
    assert "javascript:" not in hits


def test_cli_filters_pages_and_shows_metadata(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "embedder_for", lambda settings: FakeEmbedder())
    runner = CliRunner()

    def search(*args: str):
        result = runner.invoke(cli, ["search", QUERY, "--index", str(index_dir), *args])
        assert result.exit_code == 0, result.output
        return result

    shown = search("--section", "tech", "--section", "sport", "--before", "2005-01-01", "-k", "3")
    assert "   tech · 2005-01-01 · Jane Doe · tags: gadgets, note 0\n" in shown.stdout
    assert "tech/5.txt" in shown.stdout and "tech/1.txt" not in shown.stdout
    document = json.loads(search("--json", "--after", "2005-02-15", "--offset", "5").stdout)
    assert [hit["rank"] for hit in document["hits"]] == [6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    assert all(hit["published"] >= "2005-02-15" for hit in document["hits"])
    bad = runner.invoke(cli, ["search", QUERY, "--index", str(index_dir), "--after", "May"])
    assert bad.exit_code == 2 and "after must be a date written YYYY-MM-DD" in bad.output
    nothing = search("--after", "2030-01-01")
    assert nothing.stdout.startswith(f"No passages match {QUERY!r} with these filters")
