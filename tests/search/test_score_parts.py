"""A hit's score in its parts: each part is what the ranking added, and they add up to the score."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from semsearch.index.builder import build_index
from semsearch.search.cli import app
from semsearch.search.score_parts import Stages, score_parts
from semsearch.search.service import SearchService
from semsearch.search.settings import Settings
from tests.conftest import FakeEmbedder

# Three articles: the query's words spread over their paragraphs and titles, so that the article
# boost and the article's words differ from one article to the next.
ARTICLES = {
    "harbour.txt": (
        "Harbour storm closes the port\n\n"
        "A winter storm closed the harbour on Monday and ferries stayed in port.\n\n"
        "Fishing boats were tied up while the wind reached gale force.\n\n"
        "The port authority said the harbour would reopen once the storm passed."
    ),
    "ferries.txt": (
        "Ferry timetable changes\n\n"
        "Ferries to the islands will sail twice a day from March.\n\n"
        "The operator blamed rising fuel costs for the cut in sailings."
    ),
    "garden.txt": (
        "Winter gardening\n\n"
        "Cover tender plants before a storm and bring pots into a shed.\n\n"
        "Wind can snap young trees; stake them in autumn."
    ),
}
QUERY = "storm closed the harbour ferries"


@pytest.fixture
def corpus_index(tmp_path: Path, fake_embedder: FakeEmbedder) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, text in ARTICLES.items():
        (seeds / name).write_text(text, encoding="utf-8")
    index_dir = tmp_path / "index"
    build_index(seeds, index_dir, fake_embedder)
    return index_dir


def _search(index: Path, embedder: FakeEmbedder, mode: str, **settings: object):
    service = SearchService.open(Settings(index_dir=index, **settings), embedder)
    try:
        return service.search(QUERY, k=10, mode=mode, collapse=False)
    finally:
        service.close()


@pytest.mark.parametrize("fusion", ["bounded", "zscore", "rrf"])
def test_hybrid_parts_add_up_to_the_score(
    corpus_index: Path, fake_embedder: FakeEmbedder, fusion: str
) -> None:
    hits = _search(corpus_index, fake_embedder, "hybrid", fusion=fusion, dense_anchor=0)
    assert len(hits) >= 5
    for hit in hits:
        parts = hit.score_parts
        assert parts is not None
        total = parts.passage + parts.article + parts.article_words
        assert total == pytest.approx(hit.score, abs=1e-5)
    # The article boost is its article's best passage's own score, the same for its paragraphs.
    by_article: dict[str, set[float]] = {}
    for hit in hits:
        assert hit.score_parts is not None
        by_article.setdefault(hit.article_id, set()).add(hit.score_parts.article)
    assert all(len(boosts) == 1 for boosts in by_article.values())
    best = {a: max(h.score_parts.passage for h in hits if h.article_id == a) for a in by_article}
    for article, boosts in by_article.items():
        assert boosts.pop() == pytest.approx(best[article], abs=1e-5)


def test_bounded_hybrid_shows_what_it_fused(
    corpus_index: Path, fake_embedder: FakeEmbedder
) -> None:
    hits = _search(corpus_index, fake_embedder, "hybrid", dense_weight=0.7, dense_anchor=0)
    words = [hit.score_parts.article_words for hit in hits if hit.score_parts]
    assert len(set(words)) > 1  # the articles' words differ
    for hit in hits:
        parts = hit.score_parts
        assert parts is not None and parts.dense is not None and parts.lexical is not None
        assert parts.dense_weight == 0.7
        assert parts.passage == pytest.approx(0.7 * parts.dense + 0.3 * parts.lexical, abs=1e-5)
        if hit.dense_rank is not None:
            assert parts.dense == pytest.approx(hit.dense_score, abs=1e-5)
        assert 0 <= parts.lexical <= 1  # BM25 over the most the query could score


def test_one_leg_modes_have_no_fused_parts(corpus_index: Path, fake_embedder: FakeEmbedder) -> None:
    for hit in _search(corpus_index, fake_embedder, "dense"):
        assert hit.score_parts is not None
        assert hit.score_parts.passage == pytest.approx(hit.score, abs=1e-6)
        assert (hit.score_parts.article, hit.score_parts.article_words) == (0, 0)
        assert hit.score_parts.dense is None and hit.score_parts.dense_weight is None
    lexical = _search(corpus_index, fake_embedder, "lexical")
    assert any(hit.score_parts and hit.score_parts.article_words > 0 for hit in lexical)
    for hit in lexical:
        assert hit.score_parts is not None and hit.score_parts.article == 0
        total = hit.score_parts.passage + hit.score_parts.article_words
        assert total == pytest.approx(hit.score, abs=1e-5)


def test_an_anchored_hit_shows_its_own_parts(
    corpus_index: Path, fake_embedder: FakeEmbedder
) -> None:
    """Moved up, a hit shows the score of its new place; its parts stay its own, and the CLI
    says so."""
    from semsearch.search.cli.search_cmd import _score_parts

    first, second = _search(corpus_index, fake_embedder, "hybrid")[:2]
    moved = dataclasses.replace(second, rank=1, score=first.score, anchored=True)
    assert moved.score_parts is not None
    own = moved.score_parts.passage + moved.score_parts.article + moved.score_parts.article_words
    assert _score_parts(moved).startswith(f"its own score {own:.4f} = passage ")
    assert _score_parts(second).startswith(f"score {second.score:.4f} = passage ")


def test_parts_of_a_hand_made_ranking() -> None:
    stages = Stages(
        np.array([3, 1, 2], dtype=np.int64),
        passage=np.array([0.5, 0.4, 0.1]),
        article=np.array([0.4, 0.6, 0.1]),
        words=np.array([0.0, 0.3, 0.05]),
        fused=(np.array([1, 2, 3]), np.array([0.2, 0.3, 0.4]), np.array([0.9, 0.8, 0.7]), 0.5),
    )
    assert stages.total().tolist() == pytest.approx([0.9, 1.3, 0.25])
    parts = score_parts(stages, [2, 1, 7])
    assert set(parts) == {1, 2}  # 7 is not in the ranking
    assert (parts[1].passage, parts[1].article, parts[1].article_words) == (0.4, 0.6, 0.3)
    assert (parts[2].passage, parts[2].article, parts[2].article_words) == (0.1, 0.1, 0.05)
    assert (parts[1].dense, parts[1].lexical, parts[1].dense_weight) == (0.2, 0.9, 0.5)
    assert (parts[2].dense, parts[2].lexical) == (0.3, 0.8)
    alone = score_parts(Stages(np.array([4]), np.array([0.7])), [4])[4]
    assert (alone.article, alone.article_words, alone.dense) == (0.0, 0.0, None)


def test_the_api_shows_the_parts(corpus_index: Path, fake_embedder: FakeEmbedder) -> None:
    from fastapi.testclient import TestClient

    from semsearch.api.app import create_app

    app_ = create_app(Settings(index_dir=corpus_index, dense_anchor=0), fake_embedder)
    with TestClient(app_) as client:
        hits = client.get("/search", params={"q": QUERY, "k": 3}).json()["hits"]
        similar = client.get(f"/passages/{hits[0]['chunk_id']}/similar").json()["hits"]
    for hit in hits:
        parts = hit["score_parts"]
        assert set(parts) == {
            "passage", "article", "article_words", "dense", "lexical", "dense_weight"
        }  # fmt: skip
        total = parts["passage"] + parts["article"] + parts["article_words"]
        assert total == pytest.approx(hit["score"], abs=1e-5)
    assert similar and all(hit["score_parts"] is None for hit in similar)  # scores are cosines


@pytest.mark.model
def test_verbose_search_adds_up_each_score(real_index: Path) -> None:
    result = CliRunner().invoke(
        app, ["search", "power outages", "-k", "3", "-v", "--index", str(real_index)]
    )
    assert result.exit_code == 0, result.output
    number = r"(\d+\.\d{4})"
    line = re.compile(
        rf"score {number} = passage {number} \(0\.6 × dense {number} \+ 0\.4 × lexical "
        rf"{number}\)(?: \+ article {number})?(?: \+ article words {number})?"
    )
    found = [m for m in map(line.search, result.stdout.splitlines()) if m]
    assert len(found) == 3, result.stdout
    for match in found:
        score, passage, dense, lexical, article, words = (float(g or 0) for g in match.groups())
        assert passage == pytest.approx(0.6 * dense + 0.4 * lexical, abs=2e-4)
        assert score == pytest.approx(passage + article + words, abs=3e-4)
