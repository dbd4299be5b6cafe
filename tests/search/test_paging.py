"""Paging: every page of a query is a slice of one ranking, and the checks of offset and filters."""

from __future__ import annotations

import pytest

from semsearch.index.builder import build_from_articles
from semsearch.search.errors import InvalidQuery
from semsearch.search.service import MAX_RESULTS, SearchService
from semsearch.search.settings import Settings
from tests.conftest import FakeEmbedder
from tests.index.test_filters import QUERY, filter_corpus


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    index_dir = tmp_path_factory.mktemp("paging")
    embedder = FakeEmbedder()
    build_from_articles(filter_corpus(), index_dir, embedder, source="test")
    opened = SearchService.open(Settings(index_dir=index_dir), embedder)
    yield opened
    opened.close()


def _keys(hits) -> list[tuple[int, float]]:
    return [(hit.chunk_id, hit.score) for hit in hits]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_pages_are_slices_of_one_ranking(service: SearchService, mode: str) -> None:
    whole = service.search(QUERY, k=100, mode=mode) + service.search(
        QUERY, k=100, mode=mode, offset=100
    )
    assert [hit.rank for hit in whole] == list(range(1, MAX_RESULTS + 1))
    assert [hit.chunk_id for hit in whole] == service.rank(QUERY, mode=mode)[:MAX_RESULTS]
    for k in (1, 7, 10, 50):
        pages = [service.search(QUERY, k=k, mode=mode, offset=o) for o in range(0, 150, k)]
        flat = [hit for page in pages for hit in page]
        assert _keys(flat) == _keys(whole[: len(flat)])
        assert [hit.rank for hit in flat] == list(range(1, len(flat) + 1))


def test_pages_with_a_cap_per_article_agree(service: SearchService) -> None:
    whole = service.search(QUERY, k=60, max_per_article=1)
    assert len({hit.article_id for hit in whole}) == 60
    pages = [service.search(QUERY, k=6, max_per_article=1, offset=o) for o in range(0, 60, 6)]
    assert _keys([hit for page in pages for hit in page]) == _keys(whole)


def test_filtered_pages_agree_too(service: SearchService) -> None:
    whole = service.search(QUERY, k=20, after="2005-06-01")
    assert all(str(hit.published) >= "2005-06-01" for hit in whole)
    pages = service.search(QUERY, k=10, after="2005-06-01") + service.search(
        QUERY, k=10, after="2005-06-01", offset=10
    )
    assert _keys(pages) == _keys(whole)


def test_the_search_page_says_whether_more_follow_and_counts_sections(
    service: SearchService,
) -> None:
    first = service.search_page(QUERY, k=10)
    assert first.more and [hit.rank for hit in first.hits] == list(range(1, 11))
    assert dict(first.sections) == {"business": MAX_RESULTS}  # the first 200 are all business
    last = service.search_page(QUERY, k=10, offset=MAX_RESULTS - 10)
    assert not last.more and last.hits[0].rank == MAX_RESULTS - 9
    tech = service.search_page(QUERY, k=10, sections=["tech", "sport"])
    assert dict(tech.sections) == {"tech": 6, "sport": 4} and not tech.more
    assert tech.sections[0] == ("tech", 6)  # most first


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"k": 10, "offset": 191}, "offset \\+ k is 201; results go 200 deep at most"),
        ({"k": 100, "offset": 101}, "200 deep at most"),
        ({"offset": -1}, "offset must be a whole number from 0"),
        ({"after": "2005-13-01"}, "after must be a date written YYYY-MM-DD, not '2005-13-01'"),
        ({"before": "yesterday"}, "before must be a date written YYYY-MM-DD"),
        ({"after": "2005-03-02", "before": "2005-03-01"}, "after \\(2005-03-02\\) is later than"),
        ({"sections": [""]}, "a section is empty"),
        ({"sections": ["x" * 201]}, "the limit is 200"),
        ({"sections": ["a\x00"]}, "NUL"),
        ({"sections": ["\ud800"]}, "lone surrogate"),
        ({"sections": [str(n) for n in range(51)]}, "51 sections named; the limit is 50"),
    ],
)
def test_bad_offsets_and_filters_are_refused(
    service: SearchService, arguments: dict, message: str
) -> None:
    with pytest.raises(InvalidQuery, match=message):
        service.search(QUERY, **arguments)


def test_the_same_filter_twice_is_one_filter(service: SearchService) -> None:
    """Sections are a set: order and repeats change nothing (and share one cached lookup)."""
    one = service.search(QUERY, k=10, sections=["tech", "sport"])
    other = service.search(QUERY, k=10, sections=["sport", "tech", "sport"])
    assert _keys(one) == _keys(other)


def test_search_keeps_its_speed_without_facets(service: SearchService) -> None:
    """`search` asks for no extra hit and no section counts (the page does)."""
    calls: list[int] = []
    chunks = service.store.chunks

    def counting(ids):
        ids = list(ids)
        calls.append(len(ids))
        return chunks(ids)

    service.store.chunks = counting  # type: ignore[method-assign]
    try:
        service.search(QUERY, k=10)
    finally:
        del service.store.chunks
    assert calls == [10]
