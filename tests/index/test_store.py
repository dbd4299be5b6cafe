"""The on-disk store: generations, manifest checks, FAISS and FTS5 searches."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from semsearch.index.builder import build_index
from semsearch.index.errors import IndexCorrupt, IndexIncompatible, IndexNotFound
from semsearch.index.faiss_generation import FaissGeneration
from semsearch.index.faiss_writer import reindex_vectors
from semsearch.index.stores import VectorIndexSpec
from semsearch.index.vectors import build_vector_index
from tests.conftest import SEEDS, FakeEmbedder


def test_build_publishes_a_generation_with_manifest(fake_index: Path) -> None:
    assert (fake_index / "CURRENT").read_text().strip() == "gen-1"
    manifest = json.loads((fake_index / "gen-1" / "manifest.json").read_text())
    assert manifest["format_version"] == 7
    assert manifest["model"] == {
        "id": "fake-hash",
        "dimension": 64,
        "normalized": True,
        "max_tokens": 254,
        "backend": "fake",
    }
    assert manifest["counts"] == {
        "articles": 1,
        "passages": 18,
        "duplicate_passages": 0,
        "sentences": 20,
    }
    assert set(manifest["files"]) == {
        "store.sqlite",
        "vectors.faiss",
        "vectors.npy",
        "sentences.npy",
        "sentence_ranges.npy",
        "sentence_offsets.npy",
    }
    assert manifest["faiss"] == {"type": "flat", "metric": "inner_product"}


def test_sentence_similarities_are_each_passages_best_sentence(
    fake_index: Path, fake_embedder: FakeEmbedder
) -> None:
    from semsearch.index.chunking import sentences

    store = FaissGeneration.open(fake_index)
    query = fake_embedder.embed_query("Russia energy infrastructure attacks")
    records = store.chunks(range(18))
    ids = np.array([17, 3, 9, 0, 3])  # any order, repeats allowed
    expected = [
        max(
            (fake_embedder.embed_query(s) @ query for s in sentences(records[i].text)),
            default=-np.inf,
        )
        for i in ids.tolist()
    ]
    # Sentence vectors are kept as float16: a product moves by ~1e-4 (of unit vectors).
    assert store.sentence_scores(ids, query).maxima() == pytest.approx(expected, abs=2e-3)
    assert len(store.sentence_scores(np.zeros(0, dtype=np.int64), query).maxima()) == 0
    store.close()


def test_nearest_sentences_are_the_same_read_a_block_at_a_time(
    fake_index: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semsearch.index.faiss_sentences as faiss_sentences

    store = FaissGeneration.open(fake_index)
    query = fake_embedder.embed_query("Russia energy infrastructure attacks")
    try:
        whole = store.nearest_sentences(query, 9)
        monkeypatch.setattr(faiss_sentences, "_NEAREST_BLOCK", 4)  # (the seeds have ~100)
        blocks = store.nearest_sentences(query, 9)
    finally:
        store.close()
    assert blocks.ids.tolist() == whole.ids.tolist()
    assert blocks.products == pytest.approx(whole.products)
    assert blocks.ceiling == pytest.approx(whole.ceiling) and whole.ceiling > -np.inf


def test_an_index_can_be_built_without_sentence_vectors(
    tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    build_index(SEEDS, tmp_path / "index", fake_embedder, sentence_vectors=False)
    store = FaissGeneration.open(tmp_path / "index")
    try:
        assert not store.capabilities.sentence_vectors
        assert not (store.folder / "sentences.npy").exists()
        query = fake_embedder.embed_query("Russia energy")
        assert np.isneginf(store.sentence_scores(np.array([0, 1]), query).maxima()).all()
    finally:
        store.close()


def test_reopening_gives_identical_results(fake_index: Path, fake_embedder: FakeEmbedder) -> None:
    query = fake_embedder.embed_query("drone attacks wounded people")
    first = FaissGeneration.open(fake_index)
    results = (first.dense_search(query, 5), first.lexical_search(["drone", "attacks"], 5))
    first.close()
    second = FaissGeneration.open(fake_index)
    assert (
        second.dense_search(query, 5),
        second.lexical_search(["drone", "attacks"], 5),
    ) == results
    second.close()


def test_flat_dense_search_equals_brute_force(
    fake_index: Path, fake_embedder: FakeEmbedder
) -> None:
    store = FaissGeneration.open(fake_index)
    records = store.chunks(range(18))
    title = records[0].title
    vectors = fake_embedder.embed_batch(
        [
            f"{title}\n{r.heading}\n{r.text}" if r.heading else f"{title}\n{r.text}"
            for r in records.values()
        ]
    )
    query = fake_embedder.embed_query("Russia energy infrastructure")
    expected = np.argsort(-(vectors @ query), kind="stable")[:5]
    assert [i for i, _ in store.dense_search(query, 5)] == [int(i) for i in expected]
    store.close()


def test_similarities_are_the_inner_products(fake_index: Path, fake_embedder: FakeEmbedder) -> None:
    store = FaissGeneration.open(fake_index)
    query = fake_embedder.embed_query("Russia energy infrastructure")
    found = dict(store.dense_search(query, 18))
    ids = np.array([17, 3, 9])
    # From the float16 vectors.npy: within ~1e-4 of the exact index's products.
    expected = [found[i] for i in ids.tolist()]
    assert store.similarities(ids, query) == pytest.approx(expected, abs=5e-4)
    assert len(store.similarities(np.zeros(0, dtype=np.int64), query)) == 0
    store.close()


@pytest.mark.parametrize(
    "terms",
    [['"'], ["NEAR(a b)"], ["*"], ["'; DROP TABLE chunks; --"], ["title:x"], ["^"], []],
)
def test_lexical_search_never_reads_terms_as_syntax(fake_index: Path, terms: list[str]) -> None:
    store = FaissGeneration.open(fake_index)
    assert store.lexical_search(terms, 5) == []
    store.close()


def test_operator_words_are_searched_as_words(fake_index: Path) -> None:
    store = FaissGeneration.open(fake_index)
    hits = store.lexical_search(["AND"], 100)
    assert hits and all(re.search(r"\band\b", store.chunks([i])[i].text) for i, _ in hits)
    store.close()


def test_lexical_search_stems_and_ranks(fake_index: Path) -> None:
    store = FaissGeneration.open(fake_index)
    hits = store.lexical_search(["kharkiv"], 5)
    assert len(hits) == 1
    assert "Kharkiv regional head" in store.chunks([hits[0][0]])[hits[0][0]].text
    # Porter: "negotiating" finds the "negotiator" and the "negotiation", though neither passage
    # has the word itself.
    texts = {i: record.text for i, record in store.chunks(range(18)).items()}
    assert [i for i, text in texts.items() if re.search(r"\bnegotiat", text)] == [3, 12]
    assert not any("negotiating" in text for text in texts.values())
    assert sorted(i for i, _ in store.lexical_search(["negotiating"], 18)) == [3, 12]
    store.close()


def test_missing_index_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="run `semsearch index` first"):
        FaissGeneration.open(tmp_path / "nothing")


def test_other_model_is_refused(fake_index: Path) -> None:
    with pytest.raises(IndexIncompatible, match="built with model 'fake-hash'"):
        FaissGeneration.open(fake_index, model_id="sentence-transformers/all-MiniLM-L6-v2")


def test_other_dimension_is_refused(fake_index: Path) -> None:
    with pytest.raises(IndexIncompatible, match="64-d"):
        FaissGeneration.open(fake_index, model_id="fake-hash", dimension=384)


@pytest.mark.parametrize("name", ["vectors.faiss", "store.sqlite", "sentences.npy"])
def test_damaged_file_is_refused(fake_index: Path, name: str) -> None:
    path = fake_index / "gen-1" / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="checksum"):
        FaissGeneration.open(fake_index)


def test_article_lookup(fake_index: Path) -> None:
    store = FaissGeneration.open(fake_index)
    record = store.article("000_9d59a1cdc1672ff3.txt")
    assert record.title.startswith("US-brokered")
    assert [p.paragraph for p in record.passages] == list(range(1, 19))
    assert store.article("../etc/passwd") is None
    store.close()


def test_build_keeps_two_generations(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    for _ in range(3):
        report = build_index(SEEDS, tmp_path, fake_embedder)
    assert report.generation == "gen-3"
    assert report.removed_generations == ["gen-1"]
    assert sorted(p.name for p in tmp_path.glob("gen-*")) == ["gen-2", "gen-3"]


def test_approximate_indexes_recall_the_exact_neighbours(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(20, 32)).astype(np.float32)
    vectors = centres[rng.integers(0, 20, 3000)] + 0.3 * rng.normal(size=(3000, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    queries = vectors[rng.choice(3000, 50, replace=False)] + 0.05 * rng.normal(size=(50, 32))
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    for kind in ("flat", "hnsw", "ivf"):
        layout = VectorIndexSpec(kind=kind).resolve(len(vectors))
        assert layout["type"] == kind
        faiss_index = build_vector_index(vectors, layout)
        _, found = faiss_index.search(queries.astype(np.float32), 10)
        recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
        assert recall >= (1.0 if kind == "flat" else 0.95), kind


def test_spec_chooses_by_size() -> None:
    spec = VectorIndexSpec(flat_max=100)
    assert spec.resolve(100) == {"type": "flat"}
    assert spec.resolve(101) == {"type": "ivf", "nlist": 2, "nprobe": 64, "encoding": "sq8"}
    assert spec.resolve(10**6)["nlist"] == 4000
    assert VectorIndexSpec(kind="hnsw", flat_max=100).resolve(101)["type"] == "hnsw"
    assert VectorIndexSpec(kind="flat", flat_max=1).resolve(10**6) == {"type": "flat"}


def test_reindex_vectors_switches_type_without_embedding(fake_index: Path) -> None:
    before = FaissGeneration.open(fake_index)
    query = FakeEmbedder().embed_query("drone attacks in Kharkiv")
    expected = [i for i, _ in before.dense_search(query, 5)]
    before.close()
    manifest = reindex_vectors(fake_index, VectorIndexSpec(kind="hnsw"), "2026-01-01T00:00:00")
    assert (manifest["generation"], manifest["faiss"]["type"]) == ("gen-2", "hnsw")
    assert manifest["vectors_from"] == "gen-1"
    after = FaissGeneration.open(fake_index)
    assert [i for i, _ in after.dense_search(query, 5)] == expected  # 18 vectors: HNSW is exact
    assert after.manifest["counts"] == before.manifest["counts"]
    ids = np.arange(18)
    assert after.capabilities.sentence_vectors  # the sentence vectors come along
    assert after.sentence_scores(ids, query).maxima().tolist() == (
        FaissGeneration.open(fake_index, generation="gen-1")
        .sentence_scores(ids, query)
        .maxima()
        .tolist()
    )
    after.close()


def test_reindex_vectors_to_ivf_keeps_the_ranking(fake_index: Path) -> None:
    before = FaissGeneration.open(fake_index)
    query = FakeEmbedder().embed_query("drone attacks in Kharkiv")
    expected = [i for i, _ in before.dense_search(query, 3)]
    before.close()
    manifest = reindex_vectors(fake_index, VectorIndexSpec(kind="ivf"), "2026-01-01T00:00:00")
    assert manifest["faiss"]["type"] == "ivf"
    after = FaissGeneration.open(fake_index)
    assert [i for i, _ in after.dense_search(query, 3)] == expected  # one list: every vector
    after.close()


@pytest.mark.parametrize("stored_vectors", [True, False])
def test_a_format_2_generation_is_still_searched(
    fake_index: Path, fake_embedder, stored_vectors: bool
) -> None:
    """Generations written before articles had their own full-text index (format 2) open and
    answer in every mode, without the whole-article signal, until the next build; the first
    of them had no stored vectors either (hybrid then fuses as it did)."""
    import sqlite3

    from semsearch.index.generations import sha256_of as _sha256
    from semsearch.search.service import SearchService
    from semsearch.search.settings import Settings

    folder = fake_index / "gen-1"
    with sqlite3.connect(folder / "store.sqlite") as connection:
        connection.execute("DROP TABLE articles_fts")
    connection.close()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 2
    manifest["files"]["store.sqlite"] = {
        "sha256": _sha256(folder / "store.sqlite"),
        "bytes": (folder / "store.sqlite").stat().st_size,
    }
    for name in ("sentences.npy", "sentence_offsets.npy"):  # format 4 added them
        (folder / name).unlink()
        del manifest["files"][name]
    if not stored_vectors:
        (folder / "vectors.npy").unlink()
        del manifest["files"]["vectors.npy"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    service = SearchService.open(Settings(index_dir=fake_index), fake_embedder)
    try:
        assert service.store.capabilities.stored_vectors is stored_vectors
        assert service.store.article_lexical_search(["kharkiv"], 10)[2] == 0.0
        for mode in ("hybrid", "dense", "lexical"):
            assert service.search("Kharkiv regional head", k=3, mode=mode)
        # Within one article too: without vectors.npy the exact index gives the vectors back.
        article = service.search("Kharkiv regional head", k=1)[0].article_id
        for mode in ("hybrid", "dense", "lexical"):
            hits = service.search("Kharkiv regional head", k=3, mode=mode, article=article)
            assert hits and {hit.article_id for hit in hits} == {article}
        # Two passages deep, the lexical leg finds passages the dense leg did not list.
        assert len(service.rank("drone attacks on Kharkiv wounded people", depth=2)) > 2
    finally:
        service.close()


def test_lexical_scores_from_kept_words_equal_fts5s(fake_index: Path) -> None:
    """The lexical leg sums each word's kept BM25 array: the same passages, scores and order as
    FTS5's own OR query."""
    from semsearch.index.faiss_generation import FaissGeneration

    store = FaissGeneration.open(fake_index)
    try:
        queries = [["energy", "attacks"], ["kharkiv"], ["talks", "abu", "dhabi", "zzznothing"]]
        for terms in queries:
            fts5 = (
                store._db()
                .execute(
                    "SELECT rowid, -bm25(chunks_fts) AS score FROM chunks_fts WHERE chunks_fts "
                    "MATCH ? ORDER BY score DESC, rowid LIMIT 10",
                    (" OR ".join(f'"{term}"' for term in terms),),
                )
                .fetchall()
            )
            summed = store.lexical_search(terms, 10)
            assert summed and [i for i, _ in summed] == [i for i, _ in fts5]
            assert [s for _, s in summed] == pytest.approx([s for _, s in fts5], rel=1e-12)
            assert all(
                store._lexical._passage_terms.get(term) is not None for term in terms
            )  # kept
            assert store.lexical_search(terms, 10) == summed  # the kept arrays again
        # Weighted columns are FTS5's own query: a word in no title scores as it did, while
        # one in every passage's title ("talks") scores higher with the title weighted.
        weighted = store.lexical_search(["energy"], 3, weights=(2.0, 1.0, 1.0))
        kept = store.lexical_search(["energy"], 3)
        assert [i for i, _ in weighted] == [i for i, _ in kept]
        assert [s for _, s in weighted] == pytest.approx([s for _, s in kept], rel=1e-12)
        plain = dict(store.lexical_search(["talks"], 18))
        titled = dict(store.lexical_search(["talks"], 18, weights=(2.0, 1.0, 1.0)))
        assert set(titled) == set(plain) and all(titled[i] > plain[i] for i in plain)
    finally:
        store.close()
