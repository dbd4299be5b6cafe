"""The Milvus store answers as the FAISS store does: sentence vectors and article-level BM25
beside each generation's passages (issue: hybrid top-10 overlap with FAISS >= 0.9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch.index.builder import build_index
from semsearch.index.milvus_articles import ARTICLES_SUFFIX
from semsearch.index.milvus_manifests import write_manifest
from semsearch.index.milvus_sentences import SENTENCES_SUFFIX
from semsearch.index.milvus_store import MilvusStore
from semsearch.index.stores import PassageFilter
from semsearch.search.service import SearchService
from semsearch.search.settings import Settings
from semsearch.search.text import lexical_terms
from tests.conftest import FakeEmbedder, milvus_settings
from tests.index.test_stores import synthetic_corpus

pytest.importorskip("pymilvus")

QUERIES = [
    "power outage grid",
    "storm market",
    "w12 w40 power",
    "grid storm w7 w8 w9",
    "market w100",
    "outage w3 w250 w17",
]


@pytest.fixture
def both(tmp_path: Path, milvus_uri: str, milvus_alias: str):
    corpus = synthetic_corpus(tmp_path / "corpus", articles=40)
    embedder = FakeEmbedder()
    milvus = MilvusStore(milvus_uri, milvus_alias, index_type="flat", lock_dir=tmp_path / "mv")
    build_index(corpus, tmp_path / "mv", embedder, store=milvus)
    build_index(corpus, tmp_path / "faiss", embedder)
    settings = Settings(index_dir=tmp_path / "faiss", reload_interval=0)
    ours = SearchService.open(
        milvus_settings(tmp_path / "mv", milvus_uri, milvus_alias, reload_interval=0),
        embedder,
    )
    theirs = SearchService.open(settings, embedder)
    yield ours, theirs, milvus
    ours.close()
    theirs.close()
    milvus.drop()


@pytest.mark.milvus_bm25
def test_the_same_query_finds_the_same_passages_on_both_stores(both) -> None:
    ours, theirs, _ = both
    assert ours.store.capabilities.sentence_vectors and ours.store.capabilities.article_lexical
    overlaps = {}
    for mode in ("dense", "lexical", "hybrid"):
        shared = []
        for query in QUERIES:
            mine = [hit.chunk_id for hit in ours.search(query, k=10, mode=mode)]
            other = [hit.chunk_id for hit in theirs.search(query, k=10, mode=mode)]
            assert len(mine) == len(other) == 10
            shared.append(len(set(mine) & set(other)) / 10)
        overlaps[mode] = float(np.mean(shared))
    print(overlaps)
    assert overlaps["dense"] == 1.0  # exact search on both, sentences lifted alike
    assert overlaps["hybrid"] >= 0.9 and overlaps["lexical"] >= 0.9


@pytest.mark.milvus_bm25
def test_whole_articles_are_matched_by_bm25_and_keep_to_the_filter(both) -> None:
    ours, theirs, _ = both
    store = ours.store
    terms = lexical_terms("power outage grid storm")
    ids, scores, ceiling = store.article_lexical_search(terms, 10)
    assert len(ids) == 10 and ceiling > 0 and (np.diff(scores) <= 1e-9).all()
    # Named as `passage_keys` names a passage's article, so the ranking can add them up.
    found = store.dense_search(ours.embedder.embed_query("power"), 50)
    _, article_of = store.passage_keys(np.array([i for i, _ in found]))
    assert set(article_of.values()) & set(ids.tolist())
    # The same articles as FAISS's articles_fts ranks first (FTS5 and Milvus differ in idf).
    faiss_codes, _, _ = theirs.store.article_lexical_search(terms, 3)
    _, faiss_article_of = theirs.store.passage_keys(np.arange(theirs.store.count()))
    first = {
        record.article_id
        for record in theirs.store.chunks(
            int(np.flatnonzero(faiss_article_of == code)[0]) for code in faiss_codes
        ).values()
    }
    assert len(first & set(ids[:5].tolist())) >= 2
    one = str(ids[-1])
    within, _, _ = store.article_lexical_search(terms, 10, PassageFilter(article=one))
    assert within.tolist() == [one]
    none, _, bound = store.article_lexical_search(["zzzunknown"], 10)
    assert len(none) == 0 and bound == 0.0


@pytest.mark.milvus_bm25
def test_a_generation_without_sentences_or_articles_beside_it_still_searches(both) -> None:
    """A generation built before they were kept (or on a Milvus without BM25: no articles)."""
    ours, _, milvus = both
    manifest = dict(ours.store.manifest)
    beside = dict(manifest["milvus"])
    client = milvus.client()
    for key in ("sentences", "articles"):
        client.drop_collection(beside.pop(key))
    manifest["milvus"] = beside
    write_manifest(client, milvus.alias, milvus.collection_of(manifest["generation"]), manifest)
    older = milvus.open()
    try:
        assert not older.capabilities.sentence_vectors
        assert not older.capabilities.article_lexical
        service = SearchService(older, ours.embedder, ours.settings)
        hits = service.search("power outage grid", k=5)
        assert len(hits) == 5 and all(hit.answer is None for hit in hits)
    finally:
        older.close()


def test_many_sentences_are_scored_for_the_candidates_not_searched_whole(
    both, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past NEAREST_SCAN_MAX sentences, searching them all would cost more than the round trip
    it saves: the candidates' own sentences are scored, and the hits are the same."""
    import semsearch.index.milvus_generation as generation

    ours, _, milvus = both
    sentences = int(ours.store.manifest["counts"]["sentences"])
    assert ours.store.capabilities.sentence_search and sentences > 100
    monkeypatch.setattr(generation, "NEAREST_SCAN_MAX", sentences - 1)
    larger = milvus.open()
    try:
        assert larger.capabilities.sentence_vectors and not larger.capabilities.sentence_search
        asked = []
        monkeypatch.setattr(larger, "nearest_sentences", lambda *a: asked.append(a))
        service = SearchService(larger, ours.embedder, ours.settings)
        for query in QUERIES:
            hits = service.search(query, k=10, mode="dense")
            want = ours.search(query, k=10, mode="dense")
            assert [(h.chunk_id, h.score, h.answer) for h in hits] == [
                (h.chunk_id, h.score, h.answer) for h in want
            ]
        assert not asked
    finally:
        larger.close()


@pytest.mark.milvus_bm25
def test_dropping_a_generation_drops_what_is_beside_it(both) -> None:
    _, _, milvus = both
    client = milvus.client()
    collection = milvus.collection_of("gen-1")
    beside = [collection + SENTENCES_SUFFIX, collection + ARTICLES_SUFFIX]
    assert all(client.has_collection(name) for name in beside)
    milvus.drop_generation("gen-1")
    assert not any(client.has_collection(name) for name in beside)


def test_a_page_of_hits_reads_its_passages_and_their_duplicates_in_one_query(
    tmp_path: Path, milvus_uri: str, milvus_alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semsearch.index.milvus_rows as rows

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shared = "The grid operator restored power to the city after the storm knocked out lines."
    for number in range(3):
        (corpus / f"a{number}.txt").write_text(
            f"Story {number}\n\n{shared}\n\nA paragraph of its own, number {number} of three.\n"
        )
    embedder = FakeEmbedder()
    milvus = MilvusStore(milvus_uri, milvus_alias, index_type="flat", lock_dir=tmp_path / "mv")
    build_index(corpus, tmp_path / "mv", embedder, store=milvus)
    store = milvus.open()
    try:
        found = store.dense_search(embedder.embed_query(shared), 3)
        ids = [chunk_id for chunk_id, _ in found]
        expected = {  # as read the long way, one passage at a time
            chunk_id: store.duplicates_of(chunk_id) for chunk_id in ids
        }
        store.close()
        store = milvus.open()  # (nothing kept from the lookups above)
        found = store.dense_search(embedder.embed_query(shared), 3)
        assert [chunk_id for chunk_id, _ in found] == ids
        queries = []
        real = rows.call
        monkeypatch.setattr(
            rows, "call", lambda method, *a, **k: queries.append(k) or real(method, *a, **k)
        )
        records = store.chunks(ids)
        assert sorted(records) == sorted(ids) and len(queries) == 1
        assert store.duplicates_of_many(ids) == expected and len(queries) == 1
        assert all(len(others) == 2 for others in expected.values())
    finally:
        store.close()
        milvus.drop()


def test_a_narrow_filter_finds_every_kept_passage_on_an_hnsw_index(
    tmp_path: Path, milvus_uri: str, milvus_alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked for the best k of an article's few passages, a Milvus server's HNSW search returns
    fewer or none: the passages a narrow filter keeps are scored exactly from their vectors."""
    import semsearch.index.milvus_generation as generation

    corpus = synthetic_corpus(tmp_path / "corpus", articles=200)  # ~700 passages
    embedder = FakeEmbedder(dimension=384)  # (near random: spread as a model's vectors are)
    milvus = MilvusStore(milvus_uri, milvus_alias, index_type="hnsw", lock_dir=tmp_path / "mv")
    build_index(corpus, tmp_path / "mv", embedder, store=milvus)
    store = milvus.open()
    _wait_for_the_vector_index(milvus, store.collection)  # (unindexed rows are searched whole)
    try:
        articles = [article for article, _, _ in store.passage_locations()]
        assert len(articles) > 500
        query = embedder.embed_query("power outage grid")
        for article in sorted(set(articles))[::20]:
            found = store.dense_search(query, 50, PassageFilter(article=article))
            kept = sorted(i for i, name in enumerate(articles) if name == article)
            assert sorted(chunk_id for chunk_id, _ in found) == kept
            exact = store.similarities(np.array([chunk_id for chunk_id, _ in found]), query)
            assert [score for _, score in found] == pytest.approx(exact.tolist(), abs=1e-5)
            assert [score for _, score in found] == sorted((s for _, s in found), reverse=True)
        # Past FILTERED_EXACT_MAX kept passages, the search is the vector index's again.
        monkeypatch.setattr(generation, "FILTERED_EXACT_MAX", 1)
        searched = []
        real = generation.MilvusGeneration._search
        monkeypatch.setattr(
            generation.MilvusGeneration,
            "_search",
            lambda self, *a, **k: searched.append(a) or real(self, *a, **k),
        )
        store.dense_search(query, 5, PassageFilter(article=articles[0]))
        assert len(searched) == 1
    finally:
        store.close()
        milvus.drop()


def _wait_for_the_vector_index(milvus: MilvusStore, collection: str, seconds: float = 90) -> None:
    """Until a server has built the collection's vector index over every row and loads it
    (Milvus Lite says nothing of it: no wait)."""
    import time

    client = milvus.client()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        index = client.describe_index(collection, "vector")
        if "pending_index_rows" not in index:
            return
        if index["pending_index_rows"] == 0 and index["indexed_rows"] == index["total_rows"]:
            client.release_collection(collection)  # loaded again with the index built
            client.load_collection(collection)
            return
        time.sleep(0.5)
    raise AssertionError(f"{collection}: the vector index was not built in {seconds} s")
