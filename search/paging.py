"""Pages of a search: one slice of a query's ranking, whether a next page has hits, facets.

Every page of a query is a slice of the same ranking (`search.ranking.FUSION_DEPTH` deep
whatever `k` and `offset` are); the facets are the sections of its first `MAX_RESULTS` passages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from semsearch.index.stores import PassageStore
from semsearch.search.fusion import Ranking
from semsearch.search.hits import Hit
from semsearch.search.query import MAX_RESULTS, check_offset, make_filter, validate_query
from semsearch.search.ranking import FUSION_DEPTH, PER_ARTICLE_DEPTH, Ranker, Turn

__all__ = ["ResultPage", "page", "section_counts"]


@dataclass(frozen=True)
class ResultPage:
    """One page of a search: its hits, whether a next page has more, and how many of the
    query's first `MAX_RESULTS` ranked passages are in each section (most first)."""

    hits: list[Hit]
    more: bool
    sections: tuple[tuple[str, int], ...]


def page(
    ranker: Ranker,
    turn: Turn,
    query: str,
    k: int,
    mode: str,
    max_per_article: int | None,
    collapse: bool,
    timings: dict[str, float] | None,
    article: str | None,
    sections: Iterable[str],
    after: str | None,
    before: str | None,
    offset: int,
    facets: bool,
) -> ResultPage:
    """A page of hits (`SearchService.search` and `search_page`); with `facets`, whether the
    next page has any and the section counts (`more` is False without)."""
    query = validate_query(query, k, mode)
    check_offset(k, offset)
    where = make_filter(article, sections, after, before)
    ranker.check_lexical(mode)
    ranker.check_metadata(where)
    # Independent of k and offset, so that pages agree (see FUSION_DEPTH).
    depth = FUSION_DEPTH if max_per_article is None else PER_ARTICLE_DEPTH
    with turn(timings):
        legs = ranker.rank(query, mode, depth, timings, None if where.is_empty else where)
        ranked = ranker.collapse(legs.ranked, legs.keys) if collapse else legs.ranked
        # One hit more than asked says whether the next page has any.
        wanted = k + 1 if facets and offset + k < MAX_RESULTS else k
        hits = ranker.hits(query, ranked, legs, wanted, max_per_article, collapse, offset)
        counted = section_counts(ranker.store, ranked) if facets else ()
    return ResultPage(hits[:k], len(hits) > k, counted)


def section_counts(store: PassageStore, ranked: Ranking) -> tuple[tuple[str, int], ...]:
    """The sections of the first `MAX_RESULTS` ranked passages, most first, then by name."""
    if not store.capabilities.metadata or not len(ranked):
        return ()
    records = store.chunks(ranked.ids[:MAX_RESULTS].tolist())
    counts = Counter(record.section for record in records.values() if record.section)
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
