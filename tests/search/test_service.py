"""The search service over a fake-embedder index: modes, validation, hit fields."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from semsearch.search.errors import InvalidQuery
from semsearch.search.fusion import fuse_bounded
from semsearch.search.service import SearchService
from semsearch.search.settings import Settings
from semsearch.search.text import lexical_terms
from tests.conftest import FakeEmbedder


@pytest.fixture
def service(fake_index: Path, fake_embedder: FakeEmbedder):
    service = SearchService.open(Settings(index_dir=fake_index), fake_embedder)
    yield service
    service.close()


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_each_mode_returns_ranked_hits(service: SearchService, mode: str) -> None:
    hits = service.search("drone attacks on Kharkiv wounded people", k=5, mode=mode)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_hit_fields(service: SearchService) -> None:
    hit = service.search("Kharkiv", k=1, mode="lexical")[0]
    assert hit.article_id == "000_9d59a1cdc1672ff3.txt"
    assert hit.title.startswith("US-brokered")
    assert (hit.paragraph, hit.part, hit.heading) == (12, 0, "‘Cynical’ attack during talks")
    assert hit.snippet.startswith("<mark>Kharkiv</mark> regional head")
    assert hit.highlights == ((0, 7),)
    assert (hit.lexical_rank, hit.dense_rank) == (1, None)


def test_hybrid_hits_explain_both_legs(fake_index: Path, fake_embedder: FakeEmbedder) -> None:
    """A hybrid hit's ranks and scores are those of the store's own dense and lexical searches."""
    settings = Settings(index_dir=fake_index, sentence_weight=0)  # cosines as they are
    service = SearchService.open(settings, fake_embedder)
    query = "Kharkiv regional head"
    try:
        hit = service.search(query, k=1)[0]
        dense = service.store.dense_search(fake_embedder.embed_query(query), 18)
        lexical = service.store.lexical_search(lexical_terms(query), 18)
    finally:
        service.close()
    assert (hit.chunk_id, hit.paragraph) == (11, 12)  # "Kharkiv regional head Oleh Syniehubov…"
    assert hit.dense_rank == [i for i, _ in dense].index(11) + 1 == 2
    assert hit.dense_score == pytest.approx(dict(dense)[11], abs=1e-6)
    assert hit.lexical_rank == [i for i, _ in lexical].index(11) + 1 == 1
    assert hit.lexical_score == pytest.approx(dict(lexical)[11], abs=1e-6)


def test_rrf_fusion_is_configurable(fake_index: Path, fake_embedder: FakeEmbedder) -> None:
    settings = Settings(index_dir=fake_index, fusion="rrf", article_weight=0)
    service = SearchService.open(settings, fake_embedder)
    hits = service.search("Kharkiv regional head", k=3)
    service.close()
    # Chunk 11 is first in both legs; 3 and 10 are third and fourth in one leg each: they tie
    # on 1/63 + 1/64, and the smaller id goes first.
    assert [(h.chunk_id, h.dense_rank, h.lexical_rank) for h in hits] == [
        (11, 1, 1),
        (3, 3, 4),
        (10, 4, 3),
    ]
    expected = [2 / 61, 1 / 63 + 1 / 64, 1 / 63 + 1 / 64]
    assert [h.score for h in hits] == pytest.approx(expected, abs=1e-6)  # (hits round to 6)


@pytest.mark.parametrize(
    "query", ["attacks wounded energy", "attacks wounded infrastructure", "attacks energy city"]
)
def test_hybrid_shows_the_dense_legs_best_passage_among_its_first_three(
    fake_index: Path, fake_embedder: FakeEmbedder, query: str
) -> None:
    """These queries' fused scores rank the dense leg's best passage 4th to 7th: the anchor
    moves it up to 3rd, says so, and keeps the scores in order; 0 turns it off."""

    def hits(anchor: int) -> list:
        settings = Settings(index_dir=fake_index, dense_anchor=anchor)
        service = SearchService.open(settings, fake_embedder)
        try:
            best = service.search(query, k=1, mode="dense", collapse=False)[0].chunk_id
            return [best, service.search(query, k=10, mode="hybrid", collapse=False)]
        finally:
            service.close()

    best, off = hits(0)
    assert best not in [hit.chunk_id for hit in off[:3]] and not any(h.anchored for h in off)
    _, on = hits(3)
    assert on[2].chunk_id == best and on[2].anchored
    assert [hit.anchored for hit in on].count(True) == 1
    assert [hit.chunk_id for hit in on if hit.chunk_id != best] == [
        hit.chunk_id for hit in off if hit.chunk_id != best
    ][:9]
    scores = [hit.score for hit in on]
    assert scores == sorted(scores, reverse=True) and on[2].score == off[2].score


def test_results_are_deterministic(service: SearchService) -> None:
    assert service.search("talks in Abu Dhabi", k=10) == service.search("talks in Abu Dhabi", k=10)


def test_per_article_cap(service: SearchService) -> None:
    assert len(service.search("talks", k=10, max_per_article=2)) == 2


def test_lexical_with_no_matching_words_is_empty(service: SearchService) -> None:
    assert service.search("zzzqqq", mode="lexical") == []
    assert service.search("!!! ???", mode="lexical") == []


@pytest.mark.parametrize(
    ("query", "k", "mode", "message"),
    [
        ("", 10, "hybrid", "empty"),
        ("   \n\t", 10, "hybrid", "empty"),
        ("x" * 1001, 10, "hybrid", "limit is 1000"),
        ("ok", 0, "hybrid", "from 1 to 100"),
        ("ok", 101, "hybrid", "from 1 to 100"),
        ("ok", 10, "fuzzy", "unknown mode"),
        ("a\x00b", 10, "hybrid", "NUL"),
    ],
)
def test_invalid_queries(
    service: SearchService, query: str, k: int, mode: str, message: str
) -> None:
    with pytest.raises(InvalidQuery, match=message):
        service.search(query, k=k, mode=mode)


def test_stats(service: SearchService) -> None:
    stats = service.stats()
    assert (stats["articles"], stats["passages"], stats["model"]) == (1, 18, "fake-hash")
    assert stats["generation"] == "gen-1"


@pytest.fixture
def twin_service(tmp_path: Path):
    from semsearch.index.builder import build_index
    from tests.index.test_dedup import OTHER, STORY

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in [("a.txt", STORY), ("b.txt", STORY), ("c.txt", OTHER)]:
        (corpus / name).write_text(text)
    embedder = FakeEmbedder()
    build_index(corpus, tmp_path / "ix", embedder)
    service = SearchService.open(Settings(index_dir=tmp_path / "ix"), embedder)
    yield service
    service.close()


def test_duplicates_collapse_with_also_in(twin_service: SearchService) -> None:
    hits = twin_service.search("interest rates unchanged", k=10)
    texts = [h.text for h in hits]
    assert len(texts) == len(set(texts)) == 3
    assert hits[0].also_in == ("b.txt",) if hits[0].article_id == "a.txt" else ("a.txt",)


def test_collapse_can_be_switched_off(twin_service: SearchService) -> None:
    hits = twin_service.search("interest rates unchanged", k=10, collapse=False)
    assert len(hits) == 5
    assert all(h.also_in == () for h in hits)


HOSTILE = [
    '"',
    '""quoted""',
    "*",
    "power*",
    "NEAR(power outages)",
    "AND",
    "power AND OR NOT outages",
    "(power) (outages",
    "title:power",
    "'; DROP TABLE chunks; --",
    "the of and to",
    "?!.,;:-",
    "😀🔥 power ⚡",
    "مرحبا שלום",
    "e\u0301e\u0301 combining",
    "x" * 1000,
]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise(service: SearchService, query: str, mode: str) -> None:
    hits = service.search(query, k=5, mode=mode)
    assert len(hits) <= 5
    assert all(hit.article_id == "000_9d59a1cdc1672ff3.txt" for hit in hits)


@pytest.mark.parametrize(
    ("mode", "stages"),
    [
        ("hybrid", {"embed", "dense", "lexical", "lexical_articles", "lexical_wait", "fuse"}),
        ("dense", {"embed", "dense"}),
        ("lexical", {"lexical", "lexical_articles"}),
    ],
)
def test_stage_timings(service: SearchService, mode: str, stages: set[str]) -> None:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    service.search("energy infrastructure", k=3, mode=mode, timings=timings)
    elapsed = time.perf_counter() - started
    assert set(timings) == stages
    # Seconds (not milliseconds), each within the search that measured it.
    assert all(0 <= seconds <= elapsed for seconds in timings.values()), (timings, elapsed)


def test_searches_beyond_the_concurrency_limit_wait_their_turn(
    fake_index: Path, fake_embedder: FakeEmbedder
) -> None:
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    running, most = 0, 0
    lock = threading.Lock()
    embed = fake_embedder.embed_query

    def slow_embed(text: str):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return embed(text)

    fake_embedder.embed_query = slow_embed  # type: ignore[method-assign]
    settings = Settings(index_dir=fake_index, search_concurrency=2, query_cache_size=0)
    service = SearchService.open(settings, fake_embedder)
    timings: list[dict[str, float]] = [{} for _ in range(6)]
    try:
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda i: service.search(f"talks {i}", timings=timings[i]), range(6)))
    finally:
        service.close()
    assert most == 2
    assert sum("queue" in t for t in timings) >= 3  # four wait, unless a thread started late


def test_a_query_gets_every_core_only_while_no_other_search_runs(fake_index: Path) -> None:
    class Spreading(FakeEmbedder):
        spreads_queries = True

        def __init__(self) -> None:
            super().__init__()
            self.asked: list[bool] = []

        def embed_query(self, text: str, all_cores: bool = False) -> np.ndarray:
            self.asked.append(all_cores)
            return super().embed_query(text)

    embedder = Spreading()
    settings = Settings(index_dir=fake_index, search_concurrency=2, query_cache_size=0)
    service = SearchService.open(settings, embedder)
    try:
        service.search("alone")
        with service._turn(None):  # as another search would, running beside this one
            service.search("beside another")
        service.search("alone again", mode="dense")
        assert embedder.asked == [True, False, True]
        plain = SearchService.open(settings, FakeEmbedder())  # no spreads_queries: plain calls
        assert plain.search("alone")
        plain.close()
    finally:
        service.close()


def _articles(folder: Path, texts: dict[str, str]) -> Path:
    """A folder of articles: file name -> text."""
    folder.mkdir()
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _two_stories(folder: Path) -> Path:
    """Two articles with one equally good paragraph each for "harbour"; only the second's
    other paragraphs hold the query's other words."""
    return _articles(
        folder,
        {
            "a.txt": "Markets today\n\nThe harbour was quiet this morning.\n\n"
            "Shares rose in early trading and fell back by noon.\n",
            "b.txt": "Storm damage\n\nOur harbour looked calm at dawn.\n\n"
            "Fishermen counted the wrecked trawlers after the gale.\n",
        },
    )


@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
def test_the_words_of_the_whole_article_lift_its_paragraphs(
    tmp_path: Path, fake_embedder: FakeEmbedder, mode: str
) -> None:
    from semsearch.index.builder import build_index

    build_index(_two_stories(tmp_path / "articles"), tmp_path / "index", fake_embedder)
    query = "harbour trawlers gale"
    found = {}
    for weight in (0.0, 0.8):
        settings = Settings(index_dir=tmp_path / "index", article_words_weight=weight)
        service = SearchService.open(settings, fake_embedder)
        try:
            found[weight] = [
                (h.article_id, h.paragraph) for h in service.search(query, k=4, mode=mode)
            ]
        finally:
            service.close()
    # The quiet-harbour paragraphs tie on their own; the storm story's words decide.
    assert found[0.8].index(("b.txt", 1)) < found[0.8].index(("a.txt", 1))
    if mode == "lexical":
        assert found[0.0].index(("a.txt", 1)) < found[0.0].index(("b.txt", 1))  # by id


def test_hybrid_fuses_a_lexical_only_passage_with_its_own_cosine(
    fake_index: Path, fake_embedder: FakeEmbedder
) -> None:
    settings = Settings(
        index_dir=fake_index, article_weight=0, article_words_weight=0, sentence_weight=0
    )
    service = SearchService.open(settings, fake_embedder)
    query = "drone attacks on Kharkiv wounded people"
    try:
        # Two passages deep, the dense leg misses what the lexical leg finds.
        fused = service._ranker.rank(query, "hybrid", depth=2).ranked
        store = service.store
        cosine = dict(store.dense_search(fake_embedder.embed_query(query), 100))
        terms = lexical_terms(query)
        lexical = store.lexical_search(terms, 2)
        ceiling = store.lexical_ceiling(terms)
    finally:
        service.close()
    dense_top = sorted(cosine, key=lambda i: (-cosine[i], i))[:2]
    lexical_only = sorted({i for i, _ in lexical} - set(dense_top))
    assert lexical_only == [10]  # the case under test
    # Bounded fusion (its arithmetic is worked by hand in test_fusion.py) of every candidate
    # with its own cosine, not the dense leg's lowest, which fuse_bounded gives a missing one.
    candidates = sorted(set(dense_top) | set(lexical_only))
    own = fuse_bounded([(i, cosine[i]) for i in candidates], lexical, ceiling, 0.6)
    floor = fuse_bounded([(i, cosine[i]) for i in dense_top], lexical, ceiling, 0.6)
    assert fused.ids.tolist() == own.ids.tolist()
    # (The lexical-only passage's cosine is read from the float16 vectors.npy: ~1e-4 off.)
    assert fused.scores.tolist() == pytest.approx(own.scores.tolist(), abs=5e-4)
    assert dict(floor)[10] > dict(own)[10] + 0.01  # (what the floor would have given)


def test_a_lexical_only_hit_shows_the_cosine_it_was_fused_with(
    fake_index: Path, fake_embedder: FakeEmbedder
) -> None:
    settings = Settings(index_dir=fake_index, sentence_weight=0)  # cosines as they are
    service = SearchService.open(settings, fake_embedder)
    query = "drone attacks on Kharkiv wounded people"
    try:
        legs = service._ranker.rank(query, "hybrid", depth=2)  # the dense leg lists two passages
        hits = service._ranker.hits(query, legs.ranked, legs, 10, None, False)
        cosine = dict(service.store.dense_search(fake_embedder.embed_query(query), 100))
    finally:
        service.close()
    unranked = [hit for hit in hits if hit.dense_rank is None]
    assert unranked and len(hits) > len(unranked)
    for hit in hits:
        # (Lexical-only: from the float16 vectors.npy, ~1e-4 from the exact index's.)
        assert hit.dense_score == pytest.approx(cosine[hit.chunk_id], abs=5e-4)


def _sentence_story(folder: Path) -> Path:
    return _articles(
        folder,
        {
            "a.txt": "Town council news\n\n"
            "The council met on Tuesday evening in the old hall. Members argued about the budget "
            "for road repairs and the library. Violet kites crossed the marsh at dawn. The vote "
            "on parking fees was postponed until spring after a long debate.\n",
            "b.txt": "Weekend outdoors\n\nKites over the marsh: families flew kites at dawn "
            "near the coast while the council watched the weather.\n",
        },
    )


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_a_passage_rises_toward_its_best_sentence(
    tmp_path: Path, fake_embedder: FakeEmbedder, mode: str
) -> None:
    """A long passage holding one sentence that is just the query gains `sentence_weight` of
    the gap between its own cosine and that sentence's; without sentence vectors it does not."""
    from semsearch.index.builder import build_index

    build_index(_sentence_story(tmp_path / "articles"), tmp_path / "index", fake_embedder)
    query = "violet kites crossed the marsh at dawn"
    vector = fake_embedder.embed_query(query)
    scores = {}
    for weight in (0.0, 0.4):
        settings = Settings(index_dir=tmp_path / "index", sentence_weight=weight)
        service = SearchService.open(settings, fake_embedder)
        try:
            assert service.store.capabilities.sentence_vectors
            hits = service.search(query, k=2, mode=mode, collapse=False)
            scores[weight] = {hit.article_id: hit.dense_score for hit in hits}
            own = dict(service.store.dense_search(vector, 2))
        finally:
            service.close()
    council = own[0]  # a.txt has one passage: chunk 0
    assert scores[0.0]["a.txt"] == pytest.approx(council, abs=1e-6)
    # "Violet kites crossed the marsh at dawn." alone is the query: cosine 1
    assert scores[0.4]["a.txt"] == pytest.approx(council + 0.4 * (1 - council), abs=1e-3)
    assert scores[0.4]["b.txt"] >= scores[0.0]["b.txt"] - 1e-6  # sentences never lower a passage


def test_an_index_built_without_sentence_vectors_ranks_by_passages(
    tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    from semsearch.index.builder import build_index

    articles = _sentence_story(tmp_path / "articles")
    build_index(articles, tmp_path / "with", fake_embedder)
    build_index(articles, tmp_path / "without", fake_embedder, sentence_vectors=False)
    query = "violet kites crossed the marsh at dawn"
    found = {}
    for name, weight in (("with", 0.0), ("without", 0.4)):
        settings = Settings(index_dir=tmp_path / name, sentence_weight=weight)
        service = SearchService.open(settings, fake_embedder)
        try:
            assert service.store.capabilities.sentence_vectors is (name == "with")
            found[name] = [
                (hit.chunk_id, hit.score) for hit in service.search(query, k=5, mode="hybrid")
            ]
        finally:
            service.close()
    assert found["with"] == found["without"]


def test_every_hybrid_candidate_is_fused_with_its_lifted_cosine(
    fake_index: Path, fake_embedder: FakeEmbedder
) -> None:
    """Both the dense leg's passages and those only the lexical leg found carry their own
    cosine raised toward their best sentence's, each with its own id."""

    from semsearch.search.fusion import lift_to_sentences

    service = SearchService.open(Settings(index_dir=fake_index), fake_embedder)
    query = "drone attacks on Kharkiv wounded people"
    try:
        legs = service._ranker.rank(query, "hybrid", depth=2)  # most candidates are lexical-only
        vector = fake_embedder.embed_query(query)
        ids = legs.cosines.ids
        own = service.store.similarities(ids, vector)
        best = service.store.sentence_scores(ids, vector).maxima()
    finally:
        service.close()
    assert len(ids) > 2 and (best > own + 0.01).any()  # some passage is lifted
    expected = lift_to_sentences(own, best, service.settings.sentence_weight)
    # (The dense leg's cosines are the exact index's, `own` the float16 vectors.npy's.)
    assert legs.cosines.scores == pytest.approx(expected, abs=5e-4)
