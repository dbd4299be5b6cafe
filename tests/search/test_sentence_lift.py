"""The dense leg lifted with the query's nearest sentences: the first passages as exact scores
rank them, the rest of the sentences scored only where in doubt."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from semsearch.index.sentence_scores import SentenceScores
from semsearch.search import ranking
from semsearch.search.fusion import Ranking, lift_to_sentences
from semsearch.search.sentence_lift import lift_with_nearest
from semsearch.search.service import SearchService
from semsearch.search.settings import Settings
from tests.conftest import FakeEmbedder

WEIGHT = 0.4


def _corpus(seed: int, passages: int = 400) -> tuple[np.ndarray, list[np.ndarray]]:
    """Passage cosines and each passage's sentence products (0 to 6 sentences), correlated as
    a model's are: a passage's sentences score near it, some far above."""
    rng = np.random.default_rng(seed)
    cosines = rng.uniform(-0.1, 0.7, passages)
    sentences = [
        cosine + rng.normal(0.0, 0.12, int(rng.integers(0, 7))) for cosine in cosines.tolist()
    ]
    return cosines, sentences


def _exact(ids: np.ndarray, sentences: list[np.ndarray]) -> SentenceScores:
    counts = np.array([len(sentences[i]) for i in ids.tolist()], dtype=np.int64)
    products = np.concatenate([sentences[i] for i in ids.tolist()] + [np.zeros(0)])
    return SentenceScores(ids, products.astype(np.float32), np.cumsum(counts) - counts, counts)


def _nearest(sentences: list[np.ndarray], limit: int) -> SentenceScores:
    passages = np.concatenate([np.full(len(s), i) for i, s in enumerate(sentences)])
    numbers = np.concatenate([np.arange(len(s)) for s in sentences])
    products = np.concatenate(sentences).astype(np.float32)
    top = np.argsort(-products, kind="stable")[:limit]
    ceiling = float(products[top].min()) if limit < len(products) else -np.inf
    return SentenceScores.laid_out(passages[top], numbers[top], products[top], ceiling)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("limit", [40, 150, 600, 5000])
def test_the_first_passages_are_those_exact_scores_give(seed: int, limit: int) -> None:
    cosines, sentences = _corpus(seed)
    candidates = np.argsort(-cosines)[:300]  # the dense leg: its best 300
    dense = Ranking(candidates, cosines[candidates])
    exact_best = _exact(candidates, sentences).maxima()
    exact = Ranking.best_first(candidates, lift_to_sentences(dense.scores, exact_best, WEIGHT))
    asked: list[np.ndarray] = []

    def score(ids: np.ndarray) -> SentenceScores:
        asked.append(ids)
        return _exact(ids, sentences)

    nearest = _nearest(sentences, limit)
    lifted, used = lift_with_nearest(dense, nearest, WEIGHT, score, exact_depth=50)

    assert lifted.ids[:50].tolist() == exact.ids[:50].tolist()
    assert lifted.scores[:50] == pytest.approx(exact.scores[:50])
    assert sorted(lifted.ids.tolist()) == sorted(candidates.tolist())  # none lost, none added
    # Below the first 50, never above what exact scores give, never below the plain cosine.
    by_id = dict(zip(exact.ids.tolist(), exact.scores.tolist(), strict=True))
    for chunk_id, value in zip(lifted.ids.tolist(), lifted.scores.tolist(), strict=True):
        assert cosines[chunk_id] - 1e-9 <= value <= by_id[chunk_id] + 1e-6
    # Only passages none of whose sentences was listed are scored, at most once, in one call.
    assert len(asked) <= 1
    if asked:
        assert not np.isin(asked[0], nearest.ids).any()
    # Every shown passage's best sentence is known from what was used, where it has one.
    numbers, products, known = used.best(exact.ids[:50].tolist())
    for chunk_id, number, product, seen in zip(
        exact.ids[:50].tolist(), numbers.tolist(), products.tolist(), known.tolist(), strict=True
    ):
        if seen and len(sentences[chunk_id]):
            assert product == pytest.approx(float(sentences[chunk_id].max()), abs=1e-6)
            assert number == int(np.argmax(sentences[chunk_id]))


def test_every_sentence_listed_needs_no_further_call() -> None:
    cosines, sentences = _corpus(3, passages=50)
    candidates = np.argsort(-cosines)[:30]

    def score(ids: np.ndarray) -> SentenceScores:
        raise AssertionError("nothing is in doubt")

    nearest = _nearest(sentences, 10_000)
    assert nearest.ceiling == -np.inf
    lifted, _ = lift_with_nearest(Ranking(candidates, cosines[candidates]), nearest, WEIGHT, score)
    expected = lift_to_sentences(
        cosines[candidates], _exact(candidates, sentences).maxima(), WEIGHT
    )
    assert sorted(lifted.scores.tolist(), reverse=True) == pytest.approx(
        sorted(expected.tolist(), reverse=True)
    )


def test_a_store_that_looks_up_nearest_sentences_ranks_as_one_that_scores_candidates(
    fake_index: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the whole search: the same hits, scores and answer sentences, with the nearest
    sentences looked up beside the dense search (few of them: most candidates unlisted)."""
    queries = ["drone attacks on Kharkiv wounded people", "energy infrastructure", "children"]
    settings = Settings(index_dir=fake_index)
    plain = SearchService.open(settings, fake_embedder)
    ahead = SearchService.open(settings, fake_embedder)
    calls: list[int] = []
    store = ahead.store
    look_up = store.nearest_sentences

    def counted(vector: np.ndarray, limit: int) -> SentenceScores:
        calls.append(limit)
        return look_up(vector, limit)

    monkeypatch.setattr(store, "nearest_sentences", counted)
    monkeypatch.setattr(
        store, "capabilities", dataclasses.replace(store.capabilities, sentence_search=True)
    )
    monkeypatch.setattr(ranking, "NEAREST_SENTENCES", 8)
    try:
        for query in queries:
            for mode in ("hybrid", "dense"):
                want = plain.search(query, k=10, mode=mode)
                got = ahead.search(query, k=10, mode=mode)
                assert [hit.chunk_id for hit in got] == [hit.chunk_id for hit in want]
                assert [hit.score for hit in got] == pytest.approx([hit.score for hit in want])
                assert [hit.answer for hit in got] == [hit.answer for hit in want]
    finally:
        plain.close()
        ahead.close()
    assert calls and set(calls) == {8}
