"""The search service: run the dense and lexical legs of a query, fuse them, show the hits.

Query bounds and validation are in `search.query`, hit building and explanations in
`search.hits`; their names are re-exported here for the modules that import them from here.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

import numpy as np

from semsearch.index.embedding import Embedder
from semsearch.index.errors import IndexIncompatible
from semsearch.index.records import ArticleRecord
from semsearch.index.stores import PassageFilter, PassageStore
from semsearch.search.errors import InvalidQuery, UnknownPassage
from semsearch.search.fusion import (
    Ranking,
    add_article_words,
    boost_articles,
    fuse_bounded,
    fuse_rrf,
    fuse_zscore,
    lift_to_sentences,
)
from semsearch.search.hits import Hit, build_hits
from semsearch.search.query import (
    MAX_K,
    MAX_QUERY_CHARS,
    MAX_RESULTS,
    MODES,
    check_offset,
    check_query_text,
    make_filter,
    validate_query,
)
from semsearch.search.settings import Settings, embedder_for, store_for
from semsearch.search.text import lexical_terms

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

# How deep each leg looks before fusion: fusion needs more than the k it returns, and a deep
# list costs little (FAISS scans everything anyway; FTS5 ranks every match before LIMIT).
# The same whatever k and offset ask for (at most MAX_RESULTS), so that every page of a query is
# a slice of one ranking.
FUSION_DEPTH = 300
# As deep with a cap on hits per article, whose hits lie further down (again the same for
# every k and offset: 10 candidates for each of the first 100 hits).
PER_ARTICLE_DEPTH = 1000
# Articles matched as wholes whose BM25 joins their passages' scores (the rest add nothing).
ARTICLE_DEPTH = 300
# Threads that run the lexical leg of hybrid queries beside the dense leg.
LEXICAL_THREADS = 8
T = TypeVar("T")


@dataclass(frozen=True)
class ResultPage:
    """One page of a search: its hits, whether a next page has more, and how many of the
    query's first `MAX_RESULTS` ranked passages are in each section (most first)."""

    hits: list[Hit]
    more: bool
    sections: tuple[tuple[str, int], ...]


class _Ranked(NamedTuple):
    """A fused ranking and what it came from."""

    ranked: Ranking
    dense: list[tuple[int, float]]  # the dense leg, best first
    lexical: list[tuple[int, float]]  # the lexical leg, best first
    keys: tuple[Any, Any] | None  # the store's passage keys, when already looked up
    cosines: Ranking | None  # bounded fusion: the cosine of every candidate, both legs'
    vector: np.ndarray | None = None  # the query's vector (none in lexical mode)


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Stopwatch:
    """Records the seconds since the previous lap under a stage name, when asked to record."""

    def __init__(self, timings: dict[str, float] | None):
        self._timings = timings
        self._last = time.perf_counter()

    def lap(self, stage: str, value: T) -> T:
        if self._timings is not None:
            now = time.perf_counter()
            self._timings[stage] = now - self._last
            self._last = now
        return value


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
                ("embed", "faiss", "fts5", "fts5_articles" (whole articles), "fuse"; in
                hybrid mode the lexical leg runs beside the dense one, and "lexical_wait" is
                how long it was still needed after;
                "queue" when it waited for other searches to finish first), for metrics.

        Returns:
            Hits, best first, ranked offset + 1 .. offset + n (n <= k).

        Raises:
            InvalidQuery: the query, k, mode, offset or a filter is out of bounds, or a filter
                needs metadata that the index predates.
        """
        return self._page(
            query, k, mode, max_per_article, collapse, timings, article, sections, after,
            before, offset, facets=False,
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
        return self._page(
            query, k, mode, max_per_article, collapse, timings, article, sections, after,
            before, offset, facets=True,
        )  # fmt: skip

    def _page(
        self,
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
        """A page of hits; with `facets`, whether the next page has any and the section counts
        (`more` is False without)."""
        query = validate_query(query, k, mode)
        check_offset(k, offset)
        where = make_filter(article, sections, after, before)
        self._check_lexical(mode)
        self._check_metadata(where)
        # Independent of k and offset, so that pages agree (see FUSION_DEPTH).
        depth = FUSION_DEPTH if max_per_article is None else PER_ARTICLE_DEPTH
        with self._turn(timings):
            legs = self._rank(query, mode, depth, timings, None if where.is_empty else where)
            ranked = self._collapse(legs.ranked, legs.keys) if collapse else legs.ranked
            # One hit more than asked says whether the next page has any.
            wanted = k + 1 if facets and offset + k < MAX_RESULTS else k
            hits = self._hits(query, ranked, legs, wanted, max_per_article, collapse, offset)
            counted = self._section_counts(ranked) if facets else ()
        return ResultPage(hits[:k], len(hits) > k, counted)

    def _section_counts(self, ranked: Ranking) -> tuple[tuple[str, int], ...]:
        """The sections of the first `MAX_RESULTS` ranked passages, most first, then by name."""
        if not self.store.capabilities.metadata or not len(ranked):
            return ()
        records = self.store.chunks(ranked.ids[:MAX_RESULTS].tolist())
        counts = Counter(record.section for record in records.values() if record.section)
        return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def _check_metadata(self, where: PassageFilter) -> None:
        if where.uses_metadata and not self.store.capabilities.metadata:
            raise InvalidQuery(
                f"the index {self.store.generation} was built before articles had sections and "
                "dates: run `semsearch index` to rebuild it, then filter by them"
            )

    def rank(
        self, query: str, mode: str = "hybrid", depth: int = FUSION_DEPTH, collapse: bool = True
    ) -> list[int]:
        """Chunk ids for a query, best first, as `search` ranks them, `depth` deep per leg.

        For evaluation and tools that need more than 100 results and no hit formatting.
        """
        query = validate_query(query, 1, mode)
        self._check_lexical(mode)
        with self._turn(None):
            legs = self._rank(query, mode, depth)
            kept = self._collapse(legs.ranked, legs.keys) if collapse else legs.ranked
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

    def _check_lexical(self, mode: str) -> None:
        if mode == "lexical" and not self.store.capabilities.lexical:
            raise InvalidQuery(
                "this index has no lexical leg: its Milvus has no full-text search (BM25 "
                "functions need Milvus 2.5 or later); use mode=dense or hybrid (dense only here)"
            )

    def _collapse(self, ranked: Ranking, keys: tuple[Any, Any] | None = None) -> Ranking:
        """Keep the best-ranked passage of each near-duplicate group.

        `keys` are the store's `passage_keys` for these ids when `_rank` looked them up already.
        """
        if not len(ranked):
            return ranked
        groups = (keys or self.store.passage_keys(ranked.ids))[0]
        if isinstance(groups, np.ndarray):
            group_of = groups[ranked.ids]
        else:
            group_of = np.array([groups[chunk_id] for chunk_id in ranked.ids.tolist()])
        return ranked.first_of_each(group_of)

    def _rank(
        self,
        query: str,
        mode: str,
        depth: int,
        timings: dict[str, float] | None = None,
        where: PassageFilter | None = None,
    ) -> _Ranked:
        """The fused ranking, the legs it came from, and the store's passage keys if looked up.

        `where` (None: every passage) is applied by the store inside each leg's ranking."""
        cosines = None
        lexical: list[tuple[int, float]] = []
        keys = None
        ceiling, matched = 0.0, None
        clock = _Stopwatch(timings)
        pending = None
        # The BM25 ceilings (document-frequency lookups) are looked up in the lexical thread.
        bounded = mode == "hybrid" and self.settings.fusion == "bounded"
        # Whole-article BM25 (on the scale of bounded scores) joins lexical and bounded hybrid
        # ranking, unless one article is searched (it would add the same to every passage).
        words = (
            (bounded or mode == "lexical")
            and (where is None or where.article is None)
            and self.settings.article_words_weight > 0
        )
        if mode == "hybrid":
            pending = self._lexical_pool.submit(
                self._lexical, query, depth, timings, where, bounded or words, words
            )
        dense_leg = Ranking.of([])
        if mode in ("hybrid", "dense"):
            vector = clock.lap("embed", self._embed_query(query))
            dense_leg = Ranking.of(self.store.dense_search(vector, depth, where))
            if not bounded:  # (bounded fusion lifts the leg with the lexical candidates, below)
                dense_leg = self._with_sentences(dense_leg, vector)
            clock.lap("faiss", None)
        if pending is not None:
            lexical, ceiling, matched = pending.result()
        elif mode == "lexical":
            lexical, ceiling, matched = self._lexical(query, depth, timings, where, words, words)
        if mode == "hybrid":
            clock.lap("lexical_wait", None)
            if self.settings.fusion == "rrf":
                ranked = fuse_rrf([dense_leg.ids.tolist(), [i for i, _ in lexical]])
            elif self.settings.fusion == "zscore":
                ranked = fuse_zscore(dense_leg, lexical, self.settings.dense_weight)
            else:
                found = Ranking.of(lexical)
                # Every candidate's cosine, lifted toward its best sentence's in one look-up.
                complete = self._complete_dense(dense_leg, found, vector)
                cosines = self._with_sentences(complete, vector)
                in_leg = np.isin(cosines.ids, dense_leg.ids, assume_unique=True)
                dense_leg = Ranking(cosines.ids[in_leg], cosines.scores[in_leg])
                ranked = fuse_bounded(cosines, found, ceiling, self.settings.dense_weight)
            if self.settings.article_weight and len(ranked):
                keys = self.store.passage_keys(ranked.ids)  # the boost does not change the ids
                ranked = boost_articles(ranked, keys[1], self.settings.article_weight)
        elif mode == "lexical":
            ranked = Ranking.of(lexical)
            if matched is not None and len(ranked):
                # On the scale of the article's share: each passage's BM25 over its ceiling.
                ranked = Ranking(ranked.ids, ranked.scores / (ceiling if ceiling > 0 else 1.0))
        else:
            ranked = dense_leg
        if matched is not None and len(ranked):
            keys = keys or self.store.passage_keys(ranked.ids)
            ranked = add_article_words(
                ranked, keys[1], *matched, weight=self.settings.article_words_weight
            )
        if mode == "hybrid":
            clock.lap("fuse", None)
        embedded = vector if mode in ("hybrid", "dense") else None
        return _Ranked(ranked, dense_leg.pairs(), lexical, keys, cosines, embedded)

    def _complete_dense(self, dense: Ranking, lexical: Ranking, vector: np.ndarray) -> Ranking:
        """The dense leg, with the exact cosine of each lexical candidate it did not return.

        Bounded fusion compares scores on a fixed scale. The dense leg's lowest score flatters a
        passage only the lexical leg found (with exact search its own cosine is at most that,
        and far lower when the words match but the meaning does not); its own cosine, a product
        with its stored vector, judges it: Recall@100 on scifact-dev 0.956 -> 0.960 (README).
        """
        if not len(lexical) or not self.store.capabilities.stored_vectors:
            return dense  # (without stored vectors, such a passage gets the leg's lowest)
        # Each leg holds a passage once (FAISS and FTS5 ids are unique).
        missing = lexical.ids[~np.isin(lexical.ids, dense.ids, assume_unique=True)]
        if not len(missing):
            return dense
        scores = np.asarray(self.store.similarities(missing, vector), dtype=np.float64)
        return Ranking.best_first(
            np.concatenate([dense.ids, missing]), np.concatenate([dense.scores, scores])
        )

    def _with_sentences(self, dense: Ranking, vector: np.ndarray) -> Ranking:
        """Dense scores raised toward each passage's best sentence (`lift_to_sentences`), in
        their new order; as they were when the index keeps no sentence vectors."""
        weight = self.settings.sentence_weight
        if not weight or not len(dense) or not self.store.capabilities.sentence_vectors:
            return dense
        best = self.store.sentence_similarities(dense.ids, vector)
        return Ranking.best_first(dense.ids, lift_to_sentences(dense.scores, best, weight))

    def _lexical(
        self,
        query: str,
        depth: int,
        timings: dict[str, float] | None,
        where: PassageFilter | None = None,
        with_ceiling: bool = False,
        with_articles: bool = False,
    ) -> tuple[list[tuple[int, float]], float, tuple[np.ndarray, np.ndarray, float] | None]:
        """The lexical leg; when asked, the query's largest possible BM25 score, and the BM25
        of the articles it matches as wholes: (codes, scores, ceiling), None when the store
        has no index of whole articles or nothing matched."""
        started = time.perf_counter()
        terms = lexical_terms(query)
        found = self.store.lexical_search(terms, depth, where)
        ceiling = self.store.lexical_ceiling(terms) if with_ceiling and found else 0.0
        if timings is not None:
            timings["fts5"] = time.perf_counter() - started
        matched = None
        if with_articles and found and self.store.capabilities.article_lexical:
            started = time.perf_counter()
            codes, scores, article_ceiling = self.store.article_lexical_search(
                terms, ARTICLE_DEPTH, where
            )
            if len(codes) and article_ceiling > 0:
                matched = (codes, scores, article_ceiling)
            if timings is not None:
                timings["fts5_articles"] = time.perf_counter() - started
        return found, ceiling, matched

    def _hits(
        self,
        query: str,
        ranked: Ranking,
        legs: _Ranked,
        k: int,
        max_per_article: int | None,
        collapse: bool,
        offset: int = 0,
    ) -> list[Hit]:
        """The hits `ranked` shows, explained by `legs` (`search.hits.build_hits`), each with
        its answer sentence where the query has a vector."""
        return build_hits(
            self.store,
            query,
            ranked,
            legs.dense,
            legs.lexical,
            legs.cosines,
            k,
            max_per_article,
            collapse,
            offset,
            legs.vector,
        )

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
        if isinstance(chunk_id, bool) or not isinstance(chunk_id, int) or chunk_id < 0:
            raise InvalidQuery(f"a chunk id is a whole number from 0, got {chunk_id!r}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InvalidQuery(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
        with self._turn(None):
            # (Chunk ids are 64-bit in both stores: a larger one names no passage.)
            if chunk_id >= 2**63 or chunk_id not in self.store.chunks([chunk_id]):
                raise UnknownPassage(
                    f"no passage has chunk id {chunk_id} in index generation "
                    f"{self.store.generation}"
                )
            try:
                vector = self.store.vectors(np.array([chunk_id], dtype=np.int64))[0]
            except IndexIncompatible as error:
                raise InvalidQuery(
                    f"similar passages need the passages' vectors: {error}"
                ) from None
            # Deep enough that leaving out the passage, its duplicates and the duplicates among
            # the rest still leaves k (as `search`, the same depth whatever k is).
            same = {chunk_id, *(other for other, _, _ in self.store.duplicates_of(chunk_id))}
            found = [
                pair
                for pair in self.store.dense_search(vector, FUSION_DEPTH)
                if pair[0] not in same
            ]
            ranked = self._collapse(Ranking.of(found))
            return build_hits(self.store, "", ranked, found, [], None, k, None, True)

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
