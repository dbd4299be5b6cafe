"""The search service: one opened index and embedder, answering queries one turn at a time.

Each search waits for its turn (at most `search_concurrency` at once); the work is handed on:
ranking (the legs and their fusion) to `search.ranking`, pages and facets to `search.paging`,
similar passages to `search.similar`. Query bounds and validation are in `search.query`, hit
building in `search.hits`; their names are re-exported here for the modules that import them
from here.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np

from semsearch.index.embedding import Embedder
from semsearch.index.records import ArticleRecord
from semsearch.index.stores import PassageStore
from semsearch.search.hits import Hit
from semsearch.search.paging import ResultPage, page
from semsearch.search.query import (
    MAX_K,
    MAX_QUERY_CHARS,
    MAX_RESULTS,
    MODES,
    check_query_text,
    validate_query,
)
from semsearch.search.ranking import FUSION_DEPTH, PER_ARTICLE_DEPTH, Ranker
from semsearch.search.settings import Settings, embedder_for, store_for
from semsearch.search.similar import similar_passages

__all__ = [
    "FUSION_DEPTH",
    "MAX_K",
    "MAX_QUERY_CHARS",
    "MAX_RESULTS",
    "MODES",
    "PER_ARTICLE_DEPTH",
    "Hit",
    "ResultPage",
    "SearchService",
    "check_query_text",
    "validate_query",
]

# Threads that run the lexical leg of hybrid queries beside the dense leg.
LEXICAL_THREADS = 8


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class SearchService:
    """Answers queries over one opened index with one embedder. Thread-safe for searching."""

    def __init__(self, store: PassageStore, embedder: Embedder, settings: Settings | None = None):
        self.store = store
        self.embedder = embedder
        self.settings = settings or Settings()
        # Repeated queries (paging, a popular search) skip the model; vectors are read-only.
        self._embed_query = lru_cache(maxsize=self.settings.query_cache_size)(self._embed)
        # Hybrid mode runs the lexical leg here while the calling thread embeds the query: SQLite
        # and the model both release the GIL, so on two cores the legs overlap.
        self._lexical_pool = ThreadPoolExecutor(
            max_workers=LEXICAL_THREADS, thread_name_prefix="semsearch-lexical"
        )
        # Searches beyond the cores only fight over them (and over the GIL): measured on 2
        # cores with 8 concurrent callers, 145 hybrid searches/s unbounded, 200/s two at a time.
        self._gate = threading.BoundedSemaphore(
            self.settings.search_concurrency
            or _cores() * (1 if store.capabilities.in_process else 4)
        )
        self._running = 0  # searches holding a turn
        self._running_lock = threading.Lock()
        # A query embedded while no other search runs may use every core (the model's latency
        # compilation: 16-token query 2.0 instead of 3.1 ms on 2 cores); with others running,
        # one core each serves more of them.
        self._spreads = embedder.spreads_queries
        self._ranker = Ranker(store, self.settings, self._embed_query, self._lexical_pool)

    def _embed(self, query: str) -> np.ndarray:
        if self._spreads and self._running == 1:
            vector = self.embedder.embed_query(query, all_cores=True)  # type: ignore[call-arg]
        else:
            vector = self.embedder.embed_query(query)
        vector.setflags(write=False)
        return vector

    @classmethod
    def open(
        cls, settings: Settings, embedder: Embedder | None = None, generation: str | None = None
    ) -> SearchService:
        """Open the index named by `settings`, checked against the configured model.

        `generation` names one to open (such as "gen-3") instead of the one CURRENT names.

        Raises:
            IndexNotFound, IndexIncompatible, IndexCorrupt, ModelError.
        """
        if embedder is None:
            embedder = embedder_for(settings)
        store = store_for(settings).open(model_id=embedder.model_id, generation=generation)
        try:
            store.check_dimension(embedder.dimension)  # needs the model loaded: checked second
        except BaseException:
            store.close()
            raise
        return cls(store, embedder, settings)

    def search(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        max_per_article: int | None = None,
        collapse: bool = True,
        timings: dict[str, float] | None = None,
        article: str | None = None,
        sections: Iterable[str] = (),
        after: str | None = None,
        before: str | None = None,
        offset: int = 0,
    ) -> list[Hit]:
        """Rank passages for a query.

        Args:
            query: free text, 1 to 1,000 characters.
            k: how many hits to return, 1 to 100.
            mode: "hybrid" (dense and lexical fused), "dense" or "lexical".
            max_per_article: when set, at most this many hits from one article.
            collapse: show near-duplicate passages once, the other articles in `also_in`.
            article: when given, only this article's passages are searched.
            sections: when given, only articles of any of these sections are searched.
            after, before: when given, only articles published on or after / on or before
                these dates (YYYY-MM-DD; an article without a date matches neither). The
                filters are applied inside each leg's ranking, never to its top k afterwards.
            offset: skip this many hits first (the next page: offset + k); offset + k is at
                most `MAX_RESULTS`, and every page is a slice of the same ranking.
            timings: when given, filled with the seconds spent in each stage that ran
                ("embed", "dense", "lexical", "lexical_articles" (whole articles), "fuse"; in
                hybrid mode the lexical leg runs beside the dense one, and "lexical_wait" is
                how long it was still needed after;
                "queue" when it waited for other searches to finish first), for metrics.

        Returns:
            Hits, best first, ranked offset + 1 .. offset + n (n <= k).

        Raises:
            InvalidQuery: the query, k, mode, offset or a filter is out of bounds, or a filter
                needs metadata that the index predates.
        """
        return page(
            self._ranker, self._turn, query, k, mode, max_per_article, collapse, timings,
            article, sections, after, before, offset, facets=False,
        ).hits  # fmt: skip

    def search_page(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        max_per_article: int | None = None,
        collapse: bool = True,
        timings: dict[str, float] | None = None,
        article: str | None = None,
        sections: Iterable[str] = (),
        after: str | None = None,
        before: str | None = None,
        offset: int = 0,
    ) -> ResultPage:
        """`search`, with whether a next page has hits, and the sections of the query's first
        `MAX_RESULTS` ranked passages (after collapsing near-duplicates), for the search page."""
        return page(
            self._ranker, self._turn, query, k, mode, max_per_article, collapse, timings,
            article, sections, after, before, offset, facets=True,
        )  # fmt: skip

    def rank(
        self, query: str, mode: str = "hybrid", depth: int = FUSION_DEPTH, collapse: bool = True
    ) -> list[int]:
        """Chunk ids for a query, best first, as `search` ranks them, `depth` deep per leg.

        For evaluation and tools that need more than 100 results and no hit formatting.
        """
        query = validate_query(query, 1, mode)
        self._ranker.check_lexical(mode)
        with self._turn(None):
            legs = self._ranker.rank(query, mode, depth)
            kept = self._ranker.collapse(legs.ranked, legs.keys) if collapse else legs.ranked
        return kept.ids.tolist()

    @contextmanager
    def _turn(self, timings: dict[str, float] | None) -> Iterator[None]:
        """Wait until fewer than `search_concurrency` searches are running, then run this one."""
        if not self._gate.acquire(blocking=False):
            started = time.perf_counter()
            self._gate.acquire()
            if timings is not None:
                timings["queue"] = time.perf_counter() - started
        with self._running_lock:
            self._running += 1
        try:
            yield
        finally:
            with self._running_lock:
                self._running -= 1
            self._gate.release()

    def legs(self, mode: str) -> tuple[str, ...]:
        """The legs a search in `mode` runs on this index: ("dense", "lexical") for hybrid,
        ("dense",) alone where the store has no lexical leg."""
        return self._ranker.legs(mode)

    def similar(self, chunk_id: int, k: int = 10) -> list[Hit]:
        """The `k` passages nearest to a passage's stored vector, best first, as hits with their
        cosine as score and dense score (no highlights, no answer).

        The passage itself and its near-duplicates (the same text in other articles) are left
        out, and near-duplicates among the rest are shown once (`also_in`), as by `search`.

        Raises:
            InvalidQuery: `chunk_id` is not a whole number from 0, `k` not from 1 to 100, or
                the generation's vectors cannot be read back (a rebuild keeps them).
            UnknownPassage: no passage has this chunk id.
        """
        return similar_passages(self._ranker, self._turn, chunk_id, k)

    def article(self, article_id: str) -> ArticleRecord | None:
        """An article's title and passages, or None when unknown."""
        return self.store.article(article_id)

    def stats(self) -> dict[str, Any]:
        """What is indexed: counts, model, generation, when it was built and from where."""
        manifest = self.store.manifest
        return {
            "articles": manifest["counts"]["articles"],
            "passages": manifest["counts"]["passages"],
            "model": manifest["model"]["id"],
            "dimension": manifest["model"]["dimension"],
            "generation": self.store.generation,
            "built_at": manifest["created_at"],
            "source": manifest.get("source"),
            "index_dir": str(self.settings.index_dir),
            "store": self.store.describe()["store"],
        }

    def close(self) -> None:
        self._lexical_pool.shutdown(wait=True)
        self.store.close()
