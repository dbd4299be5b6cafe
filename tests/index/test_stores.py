"""The store seam: the same behaviour from the FAISS + SQLite store and the Milvus store.

Milvus runs embedded (Milvus Lite, a local folder) with a FLAT index, so exact search can be
compared with FAISS's exact search and with numpy.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from semsearch.index.builder import build_index
from semsearch.index.errors import IndexNotFound, StoreUnavailable
from semsearch.index.faiss_store import FaissStore
from semsearch.index.milvus_store import MilvusStore
from semsearch.index.records import SentenceVectors
from semsearch.index.stores import PassageFilter, Store
from semsearch.search.errors import InvalidQuery
from semsearch.search.service import SearchService
from semsearch.search.settings import Settings
from tests.conftest import SEEDS, FakeEmbedder, milvus_settings
from tests.index.test_dedup import OTHER, STORY
from tests.search.test_service import HOSTILE

BACKENDS = ["faiss", "milvus"]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path: Path, milvus_uri: str, milvus_alias: str) -> Store:
    if request.param == "milvus":
        made = MilvusStore(milvus_uri, alias=milvus_alias, index_type="flat")
        yield made
        made.drop()
        made.close()
    else:
        yield FaissStore(tmp_path / "faiss")


def settings_for(backend: Store, tmp_path: Path) -> Settings:
    if isinstance(backend, MilvusStore):
        return Settings(
            index_dir=tmp_path / "index",
            store="milvus",
            milvus_uri=backend.uri,
            milvus_collection=backend.alias,
            milvus_index="flat",
        )
    return Settings(index_dir=backend.index_dir)


def synthetic_corpus(folder: Path, articles: int = 30, seed: int = 7) -> Path:
    """Articles of random words: a few paragraphs each, some words shared widely."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(300)] + ["power", "outage", "grid", "storm", "market"]
    folder.mkdir(parents=True)
    for number in range(articles):
        paragraphs = [
            " ".join(rng.choice(words, size=int(rng.integers(12, 40)))).capitalize() + "."
            for _ in range(int(rng.integers(2, 6)))
        ]
        text = f"Article {number}\n\n" + "\n\n".join(paragraphs) + "\n"
        (folder / f"a{number:03d}.txt").write_text(text)
    return folder


@pytest.fixture
def seeded(backend: Store, tmp_path: Path):
    embedder = FakeEmbedder()
    report = build_index(SEEDS, tmp_path / "index", embedder, store=backend)
    store = backend.open(model_id=embedder.model_id)
    yield store, embedder, report
    store.close()


def test_build_publishes_one_generation(seeded, backend: Store) -> None:
    store, _, report = seeded
    assert (report.generation, report.passages, store.count()) == ("gen-1", 18, 18)
    assert backend.live_generation() == "gen-1" == store.generation
    counts = {"articles": 1, "passages": 18, "duplicate_passages": 0, "sentences": 20}
    assert report.sentences == 20 and store.capabilities.sentence_vectors
    assert store.manifest["counts"] == counts
    assert store.describe()["store"] == backend.kind


def test_exact_dense_search_equals_numpy(seeded) -> None:
    store, embedder, _ = seeded
    records = store.chunks(range(18))
    vectors = embedder.embed_batch(
        [
            f"{r.title}\n{r.heading}\n{r.text}" if r.heading else f"{r.title}\n{r.text}"
            for r in (records[i] for i in range(18))
        ]
    )
    for text in ("Russia energy infrastructure", "talks in Abu Dhabi", "prisoner exchange"):
        query = embedder.embed_query(text)
        expected = np.argsort(-(vectors @ query), kind="stable")[:5].tolist()
        hits = store.dense_search(query, 5)
        assert [i for i, _ in hits] == expected
        assert np.allclose([s for _, s in hits], (vectors @ query)[expected], atol=1e-5)
        ids = np.array([17, 2, 9])  # in no particular order
        # From the stored vectors (float16 in a FAISS generation): within ~1e-4.
        assert np.allclose(store.similarities(ids, query), (vectors @ query)[ids], atol=5e-4)


@pytest.mark.milvus_bm25
def test_milvus_exact_search_equals_faiss_on_a_synthetic_set(
    tmp_path: Path, milvus_uri: str, milvus_alias: str
) -> None:
    corpus = synthetic_corpus(tmp_path / "corpus")
    embedder = FakeEmbedder()
    milvus = MilvusStore(milvus_uri, alias=milvus_alias, index_type="flat")
    build_index(corpus, tmp_path / "index", embedder, store=milvus)
    build_index(corpus, tmp_path / "faiss", embedder)
    ours, theirs = milvus.open(), FaissStore(tmp_path / "faiss").open()
    try:
        assert ours.count() == theirs.count() > 60
        assert ours.passage_locations() == theirs.passage_locations()
        for text in ("power outage", "storm grid market", "w1 w2 w3", "nothing like it"):
            query = embedder.embed_query(text)
            dense, expected = ours.dense_search(query, 20), theirs.dense_search(query, 20)
            assert np.allclose([s for _, s in dense], [s for _, s in expected], atol=1e-5)
            for (mine, score), (other, other_score) in zip(dense, expected, strict=True):
                # The same passages in the same order, but for passages tied on score.
                assert mine == other or abs(score - other_score) < 1e-5
            # BM25 differs in detail (one field against three columns): the best match agrees.
            lexical = ours.lexical_search(text.split(), 10)
            reference = theirs.lexical_search(text.split(), 10)
            assert [i for i, _ in lexical[:1]] == [i for i, _ in reference[:1]]
            # Each ceiling bounds its own engine's BM25 (Milvus's idf is Lucene's, FTS5's not).
            for store, found in ((ours, lexical), (theirs, reference)):
                ceiling = store.lexical_ceiling(text.split())
                assert (ceiling > 0) == bool(found)
                assert all(score <= ceiling for _, score in found)
    finally:
        ours.close()
        theirs.close()
        milvus.drop()


def test_article_filter_on_both_legs(seeded) -> None:
    store, embedder, _ = seeded
    article = "000_9d59a1cdc1672ff3.txt"
    query = embedder.embed_query("energy")
    only = PassageFilter(article=article)
    assert store.dense_search(query, 5, only) == store.dense_search(query, 5)
    assert store.dense_search(query, 5, PassageFilter(article="other.txt")) == []
    hostile = PassageFilter(article='x" or id >= 0 or "')
    assert store.dense_search(query, 5, hostile) == []
    if not store.capabilities.lexical:  # (a Milvus before 2.5: the lexical leg finds nothing)
        assert store.lexical_search(["energy"], 5) == []
        return
    found = store.lexical_search(["energy"], 5)
    assert found and store.lexical_search(["energy"], 5, only) == found
    assert store.lexical_search(["energy"], 5, hostile) == []


@pytest.mark.milvus_bm25
def test_lexical_stems_and_hostile_terms(seeded) -> None:
    store, _, _ = seeded
    # Porter: "negotiating" finds the passages of "negotiator" and "negotiation" (3 and 12),
    # neither of which has the word itself.
    texts = {i: record.text for i, record in store.chunks(range(18)).items()}
    assert not any("negotiating" in text for text in texts.values())
    found = [i for i, _ in store.lexical_search(["negotiating"], 18)]
    assert sorted(found) == [i for i, text in texts.items() if "negotiat" in text] == [3, 12]
    for query in HOSTILE:
        store.lexical_search(query.split(), 5)


def test_the_bm25_ceiling_is_the_same_asked_again(seeded, backend: Store) -> None:
    """FAISS's store keeps document frequencies once looked up: the answer must not change."""
    store, _, _ = seeded
    texts = [f"{r.title} {r.heading} {r.text}" for r in store.chunks(range(18)).values()]
    assert sum("energ" in t for t in texts) == 3 and sum("attack" in t for t in texts) == 11
    # Each word found adds idf * (k1 + 1) = idf * 2.2, with 18 passages: "energy" in 3 of them,
    # "attacks" in 11 (FTS5's idf ln(7.5 / 11.5) < 0 is clipped to 1e-6; Milvus's is Lucene's).
    if backend.kind == "milvus":
        expected = 2.2 * (math.log(1 + 15.5 / 3.5) + math.log(1 + 7.5 / 11.5))
    else:
        expected = 2.2 * (math.log(15.5 / 3.5) + 1e-6)
    terms = ["energy", "attacks", "zzzunknown"]
    first = store.lexical_ceiling(terms)
    assert first == pytest.approx(expected, rel=1e-9)
    assert store.lexical_ceiling(terms) == first  # now from the kept frequencies
    # A word asked twice is searched once, so it counts once in the ceiling too.
    assert store.lexical_ceiling(["energy", "energy", *terms]) == pytest.approx(first, rel=1e-12)
    assert store.lexical_ceiling(["attacks", "zzzunknown"]) < first
    fresh = backend.open(model_id=store.manifest["model"]["id"])
    try:
        assert fresh.lexical_ceiling(["attacks", "zzzunknown"]) == store.lexical_ceiling(
            ["attacks", "zzzunknown"]
        )
    finally:
        fresh.close()


def test_records_articles_and_counts(seeded) -> None:
    store, _, _ = seeded
    record = store.chunks([11])[11]
    assert (record.id, record.paragraph, record.article_id) == (11, 12, "000_9d59a1cdc1672ff3.txt")
    assert record.text.startswith("Kharkiv regional head")
    article = store.article("000_9d59a1cdc1672ff3.txt")
    assert article is not None and len(article.passages) == 18
    assert [p.paragraph for p in article.passages] == sorted(p.paragraph for p in article.passages)
    assert store.article("missing.txt") is None
    assert len(store.passage_locations()) == 18


@pytest.mark.parametrize(
    "mode", ["hybrid", "dense", pytest.param("lexical", marks=pytest.mark.milvus_bm25)]
)
@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_through_the_service(
    seeded, backend: Store, tmp_path: Path, query: str, mode: str
) -> None:
    store, embedder, _ = seeded
    service = SearchService(store, embedder, settings_for(backend, tmp_path))
    hits = service.search(query, k=5, mode=mode)
    assert len(hits) <= 5


def test_duplicates_collapse_the_same_way(backend: Store, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(STORY)
    (corpus / "b.txt").write_text(STORY)
    (corpus / "c.txt").write_text(STORY.replace("Thursday", "Wednesday"))
    (corpus / "d.txt").write_text(OTHER)
    embedder = FakeEmbedder()
    report = build_index(corpus, tmp_path / "index", embedder, store=backend)
    assert report.duplicates == 4
    store = backend.open()
    try:
        assert store.manifest["counts"]["duplicate_passages"] == 4
        assert [a for _, a, _ in store.duplicates_of(0)] == ["b.txt", "c.txt"]
        assert store.duplicates_of(6) == []
        many = store.duplicates_of_many([6, 0, 1, 99999])  # together, as the hits ask
        assert many == {i: store.duplicates_of(i) for i in (6, 0, 1, 99999)}
        assert [a for _, a, _ in many[0]] == ["b.txt", "c.txt"] and many[99999] == []
        service = SearchService(store, embedder, settings_for(backend, tmp_path))
        hits = service.search("interest rates unchanged", k=10)
        assert len({h.text for h in hits}) == len(hits) == 3
        assert set(hits[0].also_in) | {hits[0].article_id} >= {"a.txt", "b.txt"}
    finally:
        store.close()


def test_writer_deletes_an_articles_passages(backend: Store, tmp_path: Path) -> None:
    from semsearch.index.articles import read_corpus
    from semsearch.index.chunking import chunk_article
    from semsearch.index.dedup import near_duplicate_groups

    corpus = synthetic_corpus(tmp_path / "corpus", articles=5)
    embedder = FakeEmbedder()
    articles = list(read_corpus(corpus, lambda message: None))
    chunks = [
        c
        for a in articles
        for c in chunk_article(a, count_tokens=embedder.count_tokens, token_limit=254)
    ]
    vectors = embedder.embed_batch([c.embed_text for c in chunks])
    groups = near_duplicate_groups(vectors, [c.text for c in chunks])
    # Each passage's "sentences" here: its own vector, once or twice (what matters is the rows)
    counts = [1 + i % 2 for i in range(len(chunks))]
    rows = np.repeat(vectors, counts, axis=0)
    writer = backend.writer()
    writer.add(articles, chunks, vectors, groups, SentenceVectors.of(counts, rows))
    gone = sum(1 for c in chunks if c.article_id == "a002.txt")
    assert writer.delete_article("a002.txt") == gone > 0
    assert writer.delete_article("a002.txt") == 0
    name = writer.commit({"model": {"id": "fake-hash", "dimension": 64}, "source": "test"})
    store = backend.open(generation=name)
    try:
        assert store.count() == len(chunks) - gone
        assert store.article("a002.txt") is None
        assert store.article("a003.txt") is not None
        assert store.manifest["counts"]["articles"] == 4
        if store.capabilities.sentence_vectors:
            # The kept passages' sentence rows stayed with them: each one's best is itself.
            # (FAISS numbers the kept passages anew; Milvus keeps their ids)
            kept = np.array(sorted(store.chunks(range(len(chunks)))), dtype=np.int64)
            assert len(kept) == store.count()
            query = vectors[[i for i, c in enumerate(chunks) if c.article_id != "a002.txt"][3]]
            assert store.sentence_scores(kept, query).maxima() == pytest.approx(
                store.similarities(kept, query), abs=2e-3
            )
    finally:
        store.close()


def test_a_new_generation_switches_atomically(backend: Store, tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    build_index(SEEDS, tmp_path / "index", embedder, store=backend)
    old = backend.open()
    corpus = synthetic_corpus(tmp_path / "corpus", articles=3)
    build_index(corpus, tmp_path / "index", embedder, store=backend)
    try:
        assert old.count() == 18  # the open generation keeps answering
        assert old.dense_search(embedder.embed_query("energy"), 3)
        assert backend.live_generation() == "gen-2"
        new = backend.open()
        assert new.count() != 18 and new.generation == "gen-2"
        new.close()
    finally:
        old.close()
    build_index(SEEDS, tmp_path / "index", embedder, store=backend, skip_unchanged=False)
    assert backend.generation_names()[-2:] == ["gen-2", "gen-3"]
    assert backend.live_generation() == "gen-3"


def test_nothing_built_is_index_not_found(backend: Store) -> None:
    assert backend.live_generation() is None
    with pytest.raises(IndexNotFound):
        backend.open()


def test_bad_milvus_settings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="not a Milvus name"):
        MilvusStore(str(tmp_path / "m.db"), alias="has-dash")
    with pytest.raises(StoreUnavailable, match=r"must end in \.db"):
        MilvusStore(str(tmp_path / "folder"), alias="ok").client()


def test_without_full_text_search_hybrid_is_dense_and_lexical_is_refused(
    tmp_path: Path, milvus_uri: str, milvus_alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pymilvus

    create = pymilvus.MilvusClient.create_collection

    def without_functions(self, name, *args, schema=None, **kwargs):  # as Milvus 2.4 answers
        if schema is not None and schema.functions:
            raise pymilvus.MilvusException(message="function is not supported")
        return create(self, name, *args, schema=schema, **kwargs)

    monkeypatch.setattr(pymilvus.MilvusClient, "create_collection", without_functions)
    backend = MilvusStore(milvus_uri, alias=milvus_alias, index_type="flat")
    embedder = FakeEmbedder()
    build_index(SEEDS, tmp_path / "index", embedder, store=backend)
    store = backend.open()
    try:
        assert store.manifest["milvus"]["lexical"] == "unavailable"
        service = SearchService(store, embedder, settings_for(backend, tmp_path))
        hits = service.search("energy infrastructure", k=3)
        assert hits and all(h.lexical_rank is None for h in hits)
        assert service.legs("hybrid") == ("dense",) and service.legs("dense") == ("dense",)
        with pytest.raises(InvalidQuery, match="full-text"):
            service.search("energy infrastructure", k=3, mode="lexical")
        from fastapi.testclient import TestClient

        from semsearch.api.app import create_app

        with TestClient(create_app(settings_for(backend, tmp_path), embedder)) as client:
            found = client.get("/search", params={"q": "energy infrastructure"}).json()
            assert found["legs"] == ["dense"] and found["hits"]
            page = client.get("/", params={"q": "energy infrastructure"})
            assert "dense only: this index has no full-text search" in page.text
    finally:
        store.close()
        backend.drop()


def test_a_milvus_search_brings_its_hits_groups_and_articles(
    tmp_path: Path, milvus_uri: str, milvus_alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ranking asks for each candidate's group and article next: they come with the
    search's hits, not in another query (one round trip to a server fewer a search)."""
    import semsearch.index.milvus_rows as rows

    backend = MilvusStore(milvus_uri, alias=milvus_alias, index_type="flat")
    embedder = FakeEmbedder()
    build_index(SEEDS, tmp_path / "index", embedder, store=backend)
    store = backend.open()
    try:
        found = store.dense_search(embedder.embed_query("energy infrastructure"), 5)
        ids = np.array([chunk_id for chunk_id, _ in found])
        expected = store.chunks([*ids.tolist(), 17])
        assert 17 not in ids.tolist()  # (one passage the search did not return)
        queries = []
        real = rows.call
        monkeypatch.setattr(
            rows,
            "call",
            lambda method, *a, **k: queries.append(method) or real(method, *a, **k),
        )
        groups, articles = store.passage_keys(ids)
        assert queries == []  # all known from the search
        assert articles == {i: expected[i].article_id for i in ids.tolist()}
        assert set(groups) == set(ids.tolist())
        groups, articles = store.passage_keys(np.array([*ids.tolist(), 17]))
        assert (
            len(queries) == 1
            and articles[17] == expected.get(17, store.chunks([17])[17]).article_id
        )
        # Whether a hit shares its group came with it too: no query when none does.
        queries.clear()
        assert store.duplicates_of_many(ids.tolist()) == {i: [] for i in ids.tolist()}
        assert queries == []
        store.duplicates_of_many([17])  # (not searched: its group is looked up)
        assert len(queries) == 1
    finally:
        store.close()
        backend.drop()


def test_a_server_older_than_2_5_is_not_asked_for_bm25_and_nothing_is_logged_but_one_line(
    tmp_path: Path,
    milvus_uri: str,
    milvus_alias: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real 2.3 server refuses a BM25 function in create_index, and pymilvus logs the
    refusal with its traceback: a server that says it is older is not asked at all."""
    import pymilvus

    create = pymilvus.MilvusClient.create_collection
    asked = []

    def refusing(self, name, *args, schema=None, **kwargs):
        asked.append(bool(schema is not None and schema.functions))
        if schema is not None and schema.functions:
            raise AssertionError("a 2.3 server was asked for a BM25 function")
        return create(self, name, *args, schema=schema, **kwargs)

    monkeypatch.setattr(pymilvus.MilvusClient, "create_collection", refusing)
    monkeypatch.setattr(pymilvus.MilvusClient, "get_server_version", lambda self, **_: "v2.3.5")
    backend = MilvusStore(milvus_uri, alias=milvus_alias, index_type="flat")
    with caplog.at_level(logging.INFO):
        build_index(SEEDS, tmp_path / "index", FakeEmbedder(), store=backend)
    try:
        assert asked and not any(asked)  # (the passages, the vocabulary, the manifests)
        # (Milvus Lite's in-process gRPC server logs calls it does not implement: not ours)
        warnings = [
            r
            for r in caplog.records
            if r.levelno >= logging.WARNING and not r.name.startswith("grpc")
        ]
        assert [r.name for r in warnings] == ["semsearch.milvus"]
        assert "predates 2.5" in warnings[0].getMessage()
        assert backend.open().manifest["milvus"]["lexical"] == "unavailable"
    finally:
        backend.drop()


@pytest.mark.parametrize(
    ("version", "expected"),
    [("v2.3.5", False), ("2.4.13", False), ("v2.5.0", True), ("v2.6.1-rc", True),
     ("milvus_lite-3.2.2", None), ("", None)],
)  # fmt: skip
def test_full_text_search_is_read_from_the_server_version(version: str, expected: bool) -> None:
    from semsearch.index.milvus_writer import full_text_search

    class Client:
        def get_server_version(self) -> str:
            return version

    assert full_text_search(Client()) is expected


def test_service_and_api_on_milvus_answer_like_faiss(
    tmp_path: Path, milvus_uri: str, milvus_alias: str
) -> None:
    from fastapi.testclient import TestClient

    from semsearch.api.app import create_app

    embedder = FakeEmbedder()
    settings = milvus_settings(tmp_path / "index", milvus_uri, milvus_alias, reload_interval=0)
    reference = Settings(index_dir=tmp_path / "faiss", reload_interval=0)
    from semsearch.search.settings import store_for

    build_index(SEEDS, settings.index_dir, embedder, store=store_for(settings))
    build_index(SEEDS, reference.index_dir, embedder)
    ours = SearchService.open(settings, embedder)
    theirs = SearchService.open(reference, embedder)
    try:
        for query in ("power outages", "prisoner exchange talks", "Kharkiv drone attack"):
            dense = [h.chunk_id for h in ours.search(query, k=5, mode="dense")]
            assert dense == [h.chunk_id for h in theirs.search(query, k=5, mode="dense")]
            first = ours.search(query, k=3)[0]
            assert first.chunk_id == theirs.search(query, k=3)[0].chunk_id
            assert first.dense_rank is not None and first.snippet
        assert ours.stats()["store"] == "milvus"
    finally:
        ours.close()
        theirs.close()
    with TestClient(create_app(settings, embedder=embedder)) as client:
        found = client.get("/search", params={"q": "power outages", "k": 3})
        assert found.status_code == 200, found.text
        assert len(found.json()["hits"]) == 3
        assert client.get("/stats").json()["store"] == "milvus"
        article = found.json()["hits"][0]["article_id"]
        within = client.get("/search", params={"q": "talks", "article": article}).json()
        assert {h["article_id"] for h in within["hits"]} == {article}
        assert (
            client.get("/search", params={"q": "talks", "article": "none.txt"}).json()["hits"] == []
        )


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_milvus_server_on_loopback(tmp_path: Path) -> None:
    """The same client code against a server over gRPC (milvus-lite's server, on 127.0.0.1)."""
    import shutil
    import socket
    import subprocess
    import sys
    import time

    command = shutil.which("milvus-lite") or str(Path(sys.executable).parent / "milvus-lite")
    if not Path(command).exists():
        pytest.skip("the milvus-lite command is not installed")
    port = _free_port()
    server = subprocess.Popen(
        [command, "server", "--data-dir", str(tmp_path / "server.db"), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.skip("the Milvus server did not start within 30 s")
                time.sleep(0.3)
        backend = MilvusStore(f"http://127.0.0.1:{port}", alias="loopback", index_type="flat")
        embedder = FakeEmbedder()
        build_index(SEEDS, tmp_path / "index", embedder, store=backend)
        build_index(SEEDS, tmp_path / "faiss", embedder)
        ours, theirs = backend.open(), FaissStore(tmp_path / "faiss").open()
        query = embedder.embed_query("energy infrastructure")
        assert [i for i, _ in ours.dense_search(query, 5)] == [
            i for i, _ in theirs.dense_search(query, 5)
        ]
        assert (
            ours.lexical_search(["kharkiv"], 3)[0][0] == theirs.lexical_search(["kharkiv"], 3)[0][0]
        )
        ours.close()
        theirs.close()
        backend.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_an_unreachable_milvus_server_is_a_clear_error() -> None:
    backend = MilvusStore(f"http://127.0.0.1:{_free_port()}", alias="nowhere")
    with pytest.raises(StoreUnavailable, match="Milvus"):
        backend.live_generation()


def test_a_milvus_still_loading_its_collections_is_unavailable_not_an_error() -> None:
    """A restarted server answers "collection not loaded" (code 101) for some seconds: the
    service must answer 503 and retry, not 500 (seen on Milvus 2.3.5, `make test-milvus`)."""
    from pymilvus import MilvusException

    from semsearch.index.milvus_client import call

    def loading() -> None:
        raise MilvusException(code=101, message="collection not loaded[collection=451]")

    with pytest.raises(StoreUnavailable, match="not ready"):
        call(loading)

    def refused() -> None:
        raise MilvusException(code=1100, message="invalid parameter")

    with pytest.raises(MilvusException):  # any other error stays what it is
        call(refused)


def test_passages_added_in_several_calls_keep_their_own_ids(backend: Store, tmp_path: Path) -> None:
    from semsearch.index.articles import read_corpus
    from semsearch.index.chunking import chunk_article

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in [("a.txt", STORY), ("b.txt", OTHER), ("c.txt", STORY)]:
        (corpus / name).write_text(text)
    embedder = FakeEmbedder()
    writer = backend.writer()
    seen = 0
    for article in read_corpus(corpus, lambda message: None):
        chunks = chunk_article(article, count_tokens=embedder.count_tokens, token_limit=254)
        vectors = embedder.embed_batch([c.embed_text for c in chunks])
        writer.add([article], chunks, vectors, np.arange(len(chunks)))
        seen += len(chunks)
    gone = writer.delete_article("a.txt")
    name = writer.commit({"model": {"id": "fake-hash", "dimension": 64}, "source": "test"})
    store = backend.open(generation=name)
    try:
        assert store.count() == seen - gone
        locations = [(a, p) for a, p, t in store.passage_locations() if t]
        assert len(locations) == len(set(locations)) == seen - gone
        assert {a for a, _ in locations} == {"b.txt", "c.txt"}
    finally:
        store.close()


# File names (article ids) Linux allows: line breaks, control characters, quotes, backslashes.
ODD_IDS = ["a\nb.txt", "c\rd.txt", "tab\tbed.txt", "esc\x1b[31m.txt", 'say "hi".txt',
           "back\\slash.txt", "\\.txt", "n\\\nn.txt", "cr\r\nlf.txt"]  # fmt: skip


@pytest.mark.milvus_bm25
def test_an_article_filter_finds_any_article_id(backend: Store, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number, name in enumerate(ODD_IDS):
        (corpus / name).write_text(f"Report {number}\n\nPower talks, part w{number}.\n")
    embedder = FakeEmbedder()
    build_index(corpus, tmp_path / "index", embedder, store=backend)
    store = backend.open()
    try:
        query = embedder.embed_query("power talks")
        for name in ODD_IDS:
            dense = store.dense_search(query, 5, PassageFilter(article=name))
            lexical = store.lexical_search(["power"], 5, PassageFilter(article=name))
            assert len(dense) == len(lexical) == 1 and dense[0][0] == lexical[0][0]
            assert store.chunks([dense[0][0]])[dense[0][0]].article_id == name
            found = store.article(name)
            assert found is not None and found.id == name
        for none in ["a\nb", "a\x00b", "\r", "\t", "\x1b", '"', "\\", "\\n", 'a" or "1" == "1']:
            assert store.dense_search(query, 5, PassageFilter(article=none)) == []
            assert store.lexical_search(["power"], 5, PassageFilter(article=none)) == []
            assert store.article(none) is None
        service = SearchService(store, embedder, settings_for(backend, tmp_path))
        for mode in ("hybrid", "dense", "lexical"):
            hits = service.search("power talks", k=5, mode=mode, article="a\nb.txt")
            assert [h.article_id for h in hits] == ["a\nb.txt"]
            assert service.search("power talks", k=5, mode=mode, article="a\nb") == []
    finally:
        store.close()


def test_a_milvus_alias_moved_to_another_collection_is_a_clear_error(
    tmp_path: Path, milvus_uri: str, milvus_alias: str
) -> None:
    from semsearch.index.errors import IndexCorrupt
    from semsearch.search.serving import ServiceHolder

    settings = Settings(index_dir=tmp_path / "index", store="milvus", milvus_uri=milvus_uri,
                        milvus_collection=milvus_alias, milvus_index="flat")  # fmt: skip
    milvus = MilvusStore(milvus_uri, alias=milvus_alias, index_type="flat")
    try:
        build_index(SEEDS, settings.index_dir, FakeEmbedder(), store=milvus)
        client = milvus.client()
        client.create_collection(f"{milvus_alias}_other", dimension=4)
        client.alter_alias(collection_name=f"{milvus_alias}_other", alias=milvus_alias)
        with pytest.raises(IndexCorrupt) as caught:
            milvus.open()
        assert str(caught.value) == (
            f"Milvus alias {milvus_alias} points at collection {milvus_alias}_other, which is not "
            f"one of its generations ({milvus_alias}_gen_<n>): run `semsearch index` to build one "
            "and point the alias at it"
        )
        holder = ServiceHolder(settings, FakeEmbedder())  # falls back to the newest generation
        try:
            assert holder.get().store.generation == "gen-1"
            problem = holder.problem or ""
            assert problem.startswith("the live generation was refused (Milvus alias ")
        finally:
            holder.close()
    finally:
        milvus.drop()
        milvus.client().drop_collection(f"{milvus_alias}_other")
        milvus.close()


def test_sentence_scores_give_each_passages_nearest_sentence(seeded, backend: Store) -> None:
    from semsearch.index.chunking import sentences

    store, embedder, _ = seeded
    query = embedder.embed_query("Russia energy infrastructure attacks negotiation table")
    ids = np.array([12, 3, 17, 0, 3], dtype=np.int64)  # any order, repeats allowed
    numbers, products, known = store.sentence_scores(ids, query).best(ids.tolist())
    assert known.all()
    assert numbers.dtype == np.int64 and len(numbers) == len(products) == len(ids)
    records = store.chunks(ids.tolist())
    for chunk_id, number, product in zip(ids.tolist(), numbers, products, strict=True):
        scores = [embedder.embed_query(s) @ query for s in sentences(records[chunk_id].text)]
        assert number == int(np.argmax(scores))
        assert product == pytest.approx(max(scores), abs=2e-3)  # (float16 sentence vectors)
    assert products == pytest.approx(store.sentence_scores(ids, query).maxima(), abs=1e-6)
    assert sum(number > 0 for number in numbers) >= 1  # not always the first sentence
    none = np.zeros(0, dtype=np.int64)
    assert [len(part) for part in store.sentence_scores(none, query).best([])] == [0, 0, 0]
    numbers, products, known = store.sentence_scores(ids[:2], query).best([99999, 12])
    assert known.tolist() == [False, True] and numbers[0] == -1 and np.isneginf(products[0])


def test_nearest_sentences_are_the_best_of_every_passages_sentences(seeded, backend: Store) -> None:
    store, embedder, _ = seeded
    query = embedder.embed_query("Russia energy infrastructure attacks negotiation table")
    every = np.arange(store.count(), dtype=np.int64)
    scored = store.sentence_scores(every, query)
    products = np.sort(scored.products)[::-1]
    nearest = store.nearest_sentences(query, 7)
    listed = np.sort(nearest.products[np.isfinite(nearest.products)])[::-1]
    assert listed == pytest.approx(products[:7], abs=1e-5)
    assert nearest.ceiling == pytest.approx(products[6], abs=1e-5)
    # Each listed passage's best sentence is its own best, at its own number.
    numbers, best, known = nearest.best(nearest.ids.tolist())
    want = scored.best(nearest.ids.tolist())
    assert known.all() and numbers.tolist() == want[0].tolist()
    assert best == pytest.approx(want[1], abs=1e-5)
    everything = store.nearest_sentences(query, len(scored.products) + 5)
    assert everything.ceiling == -np.inf and len(everything.products) == len(scored.products)


def test_answers_and_similar_through_the_service(seeded, backend: Store, tmp_path: Path) -> None:
    store, embedder, _ = seeded
    service = SearchService(store, embedder, settings_for(backend, tmp_path))
    hits = service.search("negotiation table missiles", k=5, mode="hybrid")
    answered = [hit.answer is not None for hit in hits]
    assert any(answered)
    similar = service.similar(hits[0].chunk_id, k=4)
    assert len(similar) == 4 and hits[0].chunk_id not in [hit.chunk_id for hit in similar]
