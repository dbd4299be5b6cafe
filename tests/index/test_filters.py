"""Article metadata kept by both stores, and filters applied inside each leg's ranking.

A filter is never a cut of the unfiltered top k: the tech passages below rank under hundreds of
business passages for the query, yet a search of the tech section finds every one of them.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from semsearch.index import faiss_generation
from semsearch.index.articles import Article, article_from_text
from semsearch.index.builder import build_from_articles
from semsearch.index.faiss_store import FaissStore
from semsearch.index.generations import sha256_of
from semsearch.index.milvus_client import filter_expression
from semsearch.index.stores import PassageFilter, Store, VectorIndexSpec
from semsearch.search.errors import InvalidQuery
from semsearch.search.service import SearchService
from semsearch.search.settings import Settings
from semsearch.search.text import lexical_terms
from tests.conftest import FakeEmbedder
from tests.index.test_stores import backend, settings_for  # noqa: F401 (the fixture)

QUERY = "power grid outage"
BUSINESS = 160  # articles of three passages each, all about the query
TECH_DATES = ["2005-01-01", "2005-02-15", "2005-02-15", "2005-03-31", None, "2004-12-31"]
SPORT = 4  # articles sharing no word with the query


def _words(rng: np.random.Generator, count: int) -> str:
    return " ".join(f"z{int(i)}" for i in rng.integers(0, 5000, size=count))


def _article(article_id: str, title: str, paragraphs: list[str], **metadata: object) -> Article:
    article = article_from_text(article_id, title, "\n\n".join(paragraphs))
    return dataclasses.replace(article, **metadata)


def filter_corpus() -> list[Article]:
    """480 business passages about the query, 6 tech passages that mention "power" once among
    many other words (dated, with authors and urls), 4 sport articles, 1 with no metadata."""
    rng = np.random.default_rng(11)
    articles = [
        _article(
            f"business/{n:03d}.txt",
            f"Business report {n}",
            [f"Power grid outage: power grid outage {_words(rng, 12)}." for _ in range(3)],
            section="business",
            published=f"2005-{1 + n % 12:02d}-{1 + n % 28:02d}",
            author="Ann Lee",
            url=f"https://example.com/business/{n}",
        )
        for n in range(BUSINESS)
    ]
    articles += [
        _article(
            f"tech/{n}.txt",
            f"Tech note {n}",
            [f"The power {_words(rng, 40)}."],
            section="tech",
            published=date,
            author="Jane Doe",
            url=f"https://example.com/tech/{n}",
            tags=("gadgets", f"note {n}"),
        )
        for n, date in enumerate(TECH_DATES)
    ]
    articles += [
        _article(f"sport/{n}.txt", f"Match {n}", [f"Goals {_words(rng, 20)}."], section="sport")
        for n in range(SPORT)
    ]
    articles.append(_article("loose.txt", "Loose page", [f"A page {_words(rng, 20)}."]))
    return articles


@pytest.fixture
def filtered(backend: Store, tmp_path: Path):  # noqa: F811 (the fixture imported above)
    embedder = FakeEmbedder()
    articles = filter_corpus()
    build_from_articles(articles, tmp_path / "index", embedder, source="test", store=backend)
    store = backend.open(model_id=embedder.model_id)
    yield store, embedder, {a.id: a for a in articles}
    store.close()


def _ids_of(store, prefix: str) -> set[int]:
    return {
        chunk_id
        for chunk_id, record in store.chunks(range(store.count())).items()
        if record.article_id.startswith(prefix)
    }


def test_metadata_is_stored_and_returned(filtered) -> None:
    store, _, articles = filtered
    records = store.chunks(range(store.count()))
    assert len(records) == store.count() == 3 * BUSINESS + len(TECH_DATES) + SPORT + 1
    for record in records.values():
        article = articles[record.article_id]
        got = (record.section, record.published, record.author, record.url)
        assert got == (article.section, article.published, article.author, article.url)
    undated = store.article("tech/4.txt")
    assert undated is not None and undated.published is None  # (Milvus keeps "" for none)
    assert (undated.section, undated.author, undated.url) == (
        "tech",
        "Jane Doe",
        "https://example.com/tech/4",
    )
    assert {p.section for p in undated.passages} == {"tech"}
    loose = store.article("loose.txt")
    assert loose is not None
    assert (loose.section, loose.published, loose.author, loose.url) == ("", None, "", "")


@pytest.mark.milvus_bm25
def test_a_section_filter_finds_what_a_cut_of_the_top_k_would_lose(filtered) -> None:
    store, embedder, _ = filtered
    vector, terms = embedder.embed_query(QUERY), lexical_terms(QUERY)
    tech = _ids_of(store, "tech/")
    # Unfiltered, 300 deep (the service's depth), neither leg lists a tech passage.
    assert not tech & {i for i, _ in store.dense_search(vector, 300)}
    assert not tech & {i for i, _ in store.lexical_search(terms, 300)}
    only = PassageFilter(sections=("tech",))
    assert {i for i, _ in store.dense_search(vector, 10, only)} == tech
    assert {i for i, _ in store.lexical_search(terms, 10, only)} == tech  # all say "power"
    # Ordered as the unfiltered ranking orders them, scores unchanged.
    everything = dict(store.dense_search(vector, store.count()))
    dense = store.dense_search(vector, 3, only)
    assert [i for i, _ in dense] == sorted(tech, key=lambda i: (-everything[i], i))[:3]
    # (Filtered, few passages are scored from the float16 vectors.npy: within ~1e-4.)
    assert [s for _, s in dense] == pytest.approx([everything[i] for i, _ in dense], abs=5e-4)
    # Any of several sections; a section nobody has; with an article too.
    both = PassageFilter(sections=("sport", "tech"))
    sport_and_tech = tech | _ids_of(store, "sport/")
    assert {i for i, _ in store.dense_search(vector, 50, both)} == sport_and_tech
    assert store.dense_search(vector, 5, PassageFilter(sections=("nope",))) == []
    assert store.lexical_search(terms, 5, PassageFilter(sections=('x" or id >= 0 or "',))) == []
    one = PassageFilter(article="tech/2.txt", sections=("tech",))
    assert [i for i, _ in store.dense_search(vector, 5, one)] == list(_ids_of(store, "tech/2"))
    assert store.dense_search(vector, 5, PassageFilter(article="tech/2.txt", sections=("x",))) == []


@pytest.mark.parametrize(
    ("after", "before", "expected"),
    [
        ("2005-02-15", None, {1, 2, 3}),
        (None, "2005-02-15", {0, 1, 2, 5}),
        ("2005-02-15", "2005-02-15", {1, 2}),
        ("2005-01-01", "2005-03-31", {0, 1, 2, 3}),
        ("2005-04-01", None, set()),
    ],
)
@pytest.mark.milvus_bm25
def test_date_bounds_are_inclusive_and_undated_articles_match_none(
    filtered, after: str | None, before: str | None, expected: set[int]
) -> None:
    store, embedder, _ = filtered
    where = PassageFilter(sections=("tech",), after=after, before=before)
    found = store.dense_search(embedder.embed_query(QUERY), 20, where)
    lexical = store.lexical_search(lexical_terms(QUERY), 20, where)
    records = store.chunks([i for i, _ in found + lexical])
    for leg in (found, lexical):
        numbers = {int(records[i].article_id.split("/")[1].split(".")[0]) for i, _ in leg}
        assert numbers == expected


def test_the_milvus_expression_quotes_every_value() -> None:
    where = PassageFilter(article='a"b', sections=("x", 'y"\\'), after="2005-01-01")
    assert filter_expression(where) == (
        'article_id == "a\\"b" and section in ["x", "y\\"\\\\"] and published != "" and '
        'published >= "2005-01-01"'
    )
    assert filter_expression(PassageFilter()) == filter_expression(None) == ""
    assert filter_expression(PassageFilter(sections=("x",)), metadata=False) == "id < 0"


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_a_wide_filter_searches_the_faiss_index_with_an_id_selector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Above EXACT_FILTER_MAX passages a filter is handed to FAISS as an id selector: on this
    small index HNSW and IVF (every list probed) find what exact search over the subset finds."""
    embedder = FakeEmbedder()
    build_from_articles(
        filter_corpus(), tmp_path, embedder, source="test", vector_index=VectorIndexSpec(kind)
    )
    store = FaissStore(tmp_path).open()
    try:
        vector = embedder.embed_query(QUERY)
        assert store.manifest["faiss"]["type"] == kind
        for where in (PassageFilter(sections=("tech",)), PassageFilter(after="2005-06-01")):
            exact = store.dense_search(vector, 30, where)
            monkeypatch.setattr(faiss_generation, "EXACT_FILTER_MAX", 0)
            selected = store.dense_search(vector, 30, where)
            monkeypatch.undo()
            records = store.chunks([i for i, _ in selected])
            assert len(selected) == len(exact) and all(
                _keeps(where, records[i]) for i, _ in selected
            )
            if kind == "ivf":  # IVF-SQ8 scores 8-bit vectors: close scores may swap
                own = store.similarities(np.array([i for i, _ in selected]), vector)
                assert own.min() >= exact[-1][1] - 0.02
                continue
            # `exact` scores from the float16 vectors.npy, the index from float32: ~1e-4 apart.
            assert [s for _, s in selected] == pytest.approx([s for _, s in exact], abs=5e-4)
            last = exact[-1][1]  # (ties at the cut may be either passage)
            assert {i for i, s in selected if s > last + 5e-4} == {
                i for i, s in exact if s > last + 5e-4
            }
    finally:
        store.close()


def test_whole_article_bm25_keeps_to_the_filter(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    build_from_articles(filter_corpus(), tmp_path, embedder, source="test")
    store = FaissStore(tmp_path).open()
    try:
        terms = lexical_terms(QUERY)
        codes, _, _ = store.article_lexical_search(terms, BUSINESS)
        _, article_codes = store.passage_keys(np.arange(store.count()))
        tech_codes = {int(article_codes[i]) for i in _ids_of(store, "tech/")}
        assert not tech_codes & set(codes.tolist())  # the business articles rank above
        codes, _, _ = store.article_lexical_search(terms, 3, PassageFilter(sections=("tech",)))
        assert len(codes) == 3 and set(codes.tolist()) <= tech_codes
    finally:
        store.close()


def _keeps(where: PassageFilter, record) -> bool:
    in_section = not where.sections or record.section in where.sections
    dated = where.after is None or (record.published or "") >= where.after
    return in_section and dated


def _as_format(index_dir: Path, version: int, sql: str) -> None:
    """Rewrite the live generation as an older format wrote it: `sql` on its store, the manifest
    saying `version` and the store's new checksum."""
    folder = index_dir / (index_dir / "CURRENT").read_text().strip()
    with sqlite3.connect(folder / "store.sqlite") as connection:
        connection.executescript(sql)
    connection.close()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = version
    manifest["files"]["store.sqlite"] = {
        "sha256": sha256_of(folder / "store.sqlite"),
        "bytes": (folder / "store.sqlite").stat().st_size,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _as_format_4(index_dir: Path) -> None:
    """As format 4 wrote it: articles without metadata columns."""
    _as_format(
        index_dir,
        4,
        "DROP INDEX articles_by_section; DROP INDEX articles_by_date;"
        "ALTER TABLE articles DROP COLUMN section; ALTER TABLE articles DROP COLUMN published;"
        "ALTER TABLE articles DROP COLUMN author; ALTER TABLE articles DROP COLUMN url;"
        "ALTER TABLE articles DROP COLUMN tags;",
    )


def test_tags_are_stored_with_the_article_and_returned_on_its_hits(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    build_from_articles(filter_corpus(), tmp_path, embedder, source="test")
    service = SearchService.open(Settings(index_dir=tmp_path), embedder)
    try:
        hits = service.search(QUERY, k=3, sections=["tech"])
        assert hits and all(hit.tags[0] == "gadgets" and len(hit.tags) == 2 for hit in hits)
        record = service.article("tech/1.txt")
        assert record is not None and record.tags == ("gadgets", "note 1")
        assert record.passages[0].tags == ("gadgets", "note 1")
        assert service.article("business/001.txt").tags == ()  # type: ignore[union-attr]
    finally:
        service.close()


def test_a_format_5_generation_is_read_without_tags(tmp_path: Path) -> None:
    """Generations built before tags keep their metadata and serve, their articles untagged."""
    embedder = FakeEmbedder()
    build_from_articles(filter_corpus(), tmp_path, embedder, source="test")
    _as_format(tmp_path, 5, "ALTER TABLE articles DROP COLUMN tags;")
    service = SearchService.open(Settings(index_dir=tmp_path), embedder)
    try:
        hits = service.search(QUERY, k=3, sections=["tech"])
        assert hits and all(hit.tags == () and hit.author == "Jane Doe" for hit in hits)
        assert service.article("tech/1.txt").tags == ()  # type: ignore[union-attr]
    finally:
        service.close()


def test_a_format_4_generation_is_read_without_metadata(tmp_path: Path) -> None:
    """Generations built before metadata still serve, their articles without any; a section or
    date filter is refused with what to run (it could only find nothing)."""
    embedder = FakeEmbedder()
    build_from_articles(filter_corpus(), tmp_path, embedder, source="test")
    _as_format_4(tmp_path)
    service = SearchService.open(Settings(index_dir=tmp_path), embedder)
    try:
        assert not service.store.capabilities.metadata
        hits = service.search(QUERY, k=3)
        assert hits and all(
            (h.section, h.published, h.author, h.url) == ("", None, "", "") for h in hits
        )
        record = service.article("tech/1.txt")
        assert record is not None and record.section == "" and record.passages
        with pytest.raises(InvalidQuery, match="run `semsearch index`"):
            service.search(QUERY, sections=["tech"])
        with pytest.raises(InvalidQuery, match="run `semsearch index`"):
            service.search(QUERY, after="2005-01-01")
        assert {h.article_id for h in service.search(QUERY, article="tech/1.txt")} == {"tech/1.txt"}
        # The store itself keeps nothing for such a filter rather than failing.
        vector = embedder.embed_query(QUERY)
        assert service.store.dense_search(vector, 5, PassageFilter(sections=("tech",))) == []
    finally:
        service.close()


def test_a_change_of_metadata_alone_is_a_new_build(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    articles = filter_corpus()
    first = build_from_articles(articles, tmp_path, embedder, source="test", skip_unchanged=True)
    again = build_from_articles(articles, tmp_path, embedder, source="test", skip_unchanged=True)
    assert again.up_to_date
    articles[-1] = dataclasses.replace(articles[-1], published="2006-01-01")
    changed = build_from_articles(articles, tmp_path, embedder, source="test", skip_unchanged=True)
    assert not changed.up_to_date and changed.generation != first.generation
    store = FaissStore(tmp_path).open()
    try:
        loose = store.article("loose.txt")
        assert loose is not None and loose.published == "2006-01-01"
    finally:
        store.close()


@pytest.mark.milvus_bm25
def test_the_service_filters_in_every_mode(filtered, backend: Store, tmp_path: Path) -> None:  # noqa: F811
    store, embedder, _ = filtered
    service = SearchService(store, embedder, settings_for(backend, tmp_path))
    for mode in ("hybrid", "dense", "lexical"):
        assert not any(h.section == "tech" for h in service.search(QUERY, k=100, mode=mode))
        hits = service.search(QUERY, k=10, mode=mode, sections=["tech"])
        assert {h.article_id for h in hits} == {f"tech/{n}.txt" for n in range(len(TECH_DATES))}
        assert {(h.section, h.author) for h in hits} == {("tech", "Jane Doe")}
        dated = service.search(QUERY, k=10, mode=mode, after="2005-02-15", before="2005-03-31")
        assert dated and all("2005-02-15" <= str(h.published) <= "2005-03-31" for h in dated)
        tech = service.search(QUERY, k=10, mode=mode, sections=["tech"], after="2005-02-15")
        assert {h.article_id for h in tech} == {"tech/1.txt", "tech/2.txt", "tech/3.txt"}
