"""One search from the command line: open the index, search it once, close it, with timings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from semsearch.search.errors import InvalidQuery
from semsearch.search.query import MAX_K, check_offset, make_filter
from semsearch.search.service import Hit, SearchService, validate_query
from semsearch.search.settings import Settings

__all__ = ["Lookup", "search_once", "similar_once"]


@dataclass(frozen=True)
class Lookup:
    """A search's hits, the mode it ran in, and how long it took (in all and by stage)."""

    query: str
    mode: str
    k: int
    hits: list[Hit]
    took_ms: float
    timings: dict[str, float] = field(default_factory=dict)  # seconds, by stage
    legs: tuple[str, ...] = ()  # the legs that ran (hybrid: dense alone without a lexical leg)


def search_once(
    settings: Settings,
    query: str,
    *,
    k: int = 10,
    mode: str | None = None,
    per_article: int | None = None,
    collapse: bool = True,
    article: str | None = None,
    sections: tuple[str, ...] = (),
    after: str | None = None,
    before: str | None = None,
    offset: int = 0,
) -> Lookup:
    """Search the configured index once (`mode` None: the settings' default mode).

    The query is checked before the model loads.

    Raises:
        InvalidQuery: an empty or too long query, a k or offset out of range, an unknown mode,
            a bad date or section.
        IndexNotFound: nothing is built yet (and its kin for an unusable index).
    """
    mode = mode or settings.default_mode
    validate_query(query, k, mode)  # fail fast, before the model loads
    check_offset(k, offset)
    make_filter(article, sections, after, before)
    service = SearchService.open(settings)
    try:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        hits = service.search(
            query, k=k, mode=mode, max_per_article=per_article, collapse=collapse,
            timings=timings, article=article, sections=sections, after=after, before=before,
            offset=offset,
        )  # fmt: skip
        took_ms = round((time.perf_counter() - started) * 1000, 2)
        legs = service.legs(mode)
    finally:
        service.close()
    return Lookup(query, mode, k, hits, took_ms, timings, legs)


def similar_once(settings: Settings, chunk_id: int, *, k: int = 10) -> Lookup:
    """The passages nearest to passage `chunk_id` in the configured index
    (`SearchService.similar`); the Lookup's query is "similar to passage N", its mode "dense".

    Raises:
        InvalidQuery: a k out of range, a bad chunk id (checked before the model loads).
        UnknownPassage: no passage has this chunk id.
        IndexNotFound: nothing is built yet (and its kin for an unusable index).
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidQuery(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    service = SearchService.open(settings)
    try:
        started = time.perf_counter()
        hits = service.similar(chunk_id, k)
        took_ms = round((time.perf_counter() - started) * 1000, 2)
    finally:
        service.close()
    return Lookup(f"similar to passage {chunk_id}", "dense", k, hits, took_ms, legs=("dense",))
