"""Ranking a query: run the dense and lexical legs (side by side in hybrid mode), fuse them.

`Ranker` also collapses near-duplicates and turns a ranking into hits (`search.hits`); it
takes validated queries, and `search.service` gives each search its turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, TypeVar

import numpy as np

from semsearch.index.stores import PassageFilter, PassageStore, SentenceScores
from semsearch.search.errors import InvalidQuery
from semsearch.search.fusion import (
    Ranking,
    anchor,
    article_boosts,
    article_words,
    bounded_columns,
    fuse_bounded_columns,
    fuse_rrf,
    fuse_zscore,
    lift_to_sentences,
)
from semsearch.search.hits import Hit, build_hits
from semsearch.search.score_parts import Stages
from semsearch.search.sentence_lift import NEAREST_SENTENCES, lift_with_nearest
from semsearch.search.settings import Settings
from semsearch.search.text import lexical_terms

__all__ = ["ARTICLE_DEPTH", "FUSION_DEPTH", "PER_ARTICLE_DEPTH", "Ranked", "Ranker", "Turn"]

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
T = TypeVar("T")
# How a search waits for its turn (`SearchService._turn`), the wait recorded in timings if given.
Turn = Callable[[dict[str, float] | None], AbstractContextManager[None]]


class Ranked(NamedTuple):
    """A fused ranking and what it came from."""

    ranked: Ranking
    dense: list[tuple[int, float]]  # the dense leg, best first
    lexical: list[tuple[int, float]]  # the lexical leg, best first
    keys: tuple[Any, Any] | None  # the store's passage keys, when already looked up
    cosines: Ranking | None  # bounded fusion: the cosine of every candidate, both legs'
    vector: np.ndarray | None = None  # the query's vector (none in lexical mode)
    sentences: SentenceScores | None = None  # the candidates' sentences, when they were scored
    anchored: int | None = None  # hybrid: the dense leg's best passage, when it was moved up
    stages: Stages | None = None  # the ranking after each step, to explain a hit's score


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


class Ranker:
    """Ranks passages of one opened index: the legs, their fusion, near-duplicates, hits.

    Thread-safe; `embed_query` gives a query's (read-only) vector, and `pool` runs the lexical
    leg of hybrid queries beside the dense one."""

    def __init__(
        self,
        store: PassageStore,
        settings: Settings,
        embed_query: Callable[[str], np.ndarray],
        pool: Executor,
    ):
        self.store = store
        self.settings = settings
        self._embed_query = embed_query
        self._pool = pool

    def check_metadata(self, where: PassageFilter) -> None:
        if where.uses_metadata and not self.store.capabilities.metadata:
            raise InvalidQuery(
                f"the index {self.store.generation} was built before articles had sections and "
                "dates: run `semsearch index` to rebuild it, then filter by them"
            )

    def legs(self, mode: str) -> tuple[str, ...]:
        """The legs a search in `mode` runs here: hybrid is dense alone on a store without a
        lexical leg (a Milvus without full-text search), and a response says so."""
        if mode == "hybrid":
            return ("dense", "lexical") if self.store.capabilities.lexical else ("dense",)
        return (mode,)

    def check_lexical(self, mode: str) -> None:
        if mode == "lexical" and not self.store.capabilities.lexical:
            raise InvalidQuery(
                "this index has no lexical leg: its Milvus has no full-text search (BM25 "
                "functions need Milvus 2.5 or later); use mode=dense or hybrid (dense only here)"
            )

    def collapse(self, ranked: Ranking, keys: tuple[Any, Any] | None = None) -> Ranking:
        """Keep the best-ranked passage of each near-duplicate group.

        `keys` are the store's `passage_keys` for these ids when `rank` looked them up already.
        """
        if not len(ranked):
            return ranked
        groups = (keys or self.store.passage_keys(ranked.ids))[0]
        if isinstance(groups, np.ndarray):
            group_of = groups[ranked.ids]
        else:
            group_of = np.array([groups[chunk_id] for chunk_id in ranked.ids.tolist()])
        return ranked.first_of_each(group_of)

    def rank(
        self,
        query: str,
        mode: str,
        depth: int,
        timings: dict[str, float] | None = None,
        where: PassageFilter | None = None,
    ) -> Ranked:
        """The fused ranking, the legs it came from, and the store's passage keys if looked up.

        `where` (None: every passage) is applied by the store inside each leg's ranking."""
        cosines = None
        lexical: list[tuple[int, float]] = []
        keys = None
        ceiling, matched = 0.0, None
        clock = _Stopwatch(timings)
        pending = None
        sentences = None
        fused = None
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
            pending = self._pool.submit(
                self._lexical, query, depth, timings, where, bounded or words, words
            )
        dense_leg = Ranking.of([])
        if mode in ("hybrid", "dense"):
            vector = clock.lap("embed", self._embed_query(query))
            nearest = self._nearest_sentences(vector, where)
            dense_leg = Ranking.of(self.store.dense_search(vector, depth, where))
            if not bounded:  # (bounded fusion lifts the leg with the lexical candidates, below)
                dense_leg, sentences = self._with_sentences(dense_leg, vector, nearest)
            clock.lap("dense", None)
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
                cosines, sentences = self._with_sentences(complete, vector, nearest)
                in_leg = np.isin(cosines.ids, dense_leg.ids, assume_unique=True)
                dense_leg = Ranking(cosines.ids[in_leg], cosines.scores[in_leg])
                columns = bounded_columns(cosines, found, ceiling)
                ranked = fuse_bounded_columns(columns, self.settings.dense_weight)
                fused = (*columns, self.settings.dense_weight)
        elif mode == "lexical":
            ranked = Ranking.of(lexical)
            if matched is not None and len(ranked):
                # On the scale of the article's share: each passage's BM25 over its ceiling.
                ranked = Ranking(ranked.ids, ranked.scores / (ceiling if ceiling > 0 else 1.0))
        else:
            ranked = dense_leg
        # What each passage's article adds: its best passage's score (hybrid), its words.
        stages = Stages(ranked.ids, ranked.scores, fused=fused)
        if mode == "hybrid" and self.settings.article_weight and len(ranked):
            keys = self.store.passage_keys(ranked.ids)
            boosts = article_boosts(ranked, keys[1], self.settings.article_weight)
            stages = stages._replace(article=boosts)
        if matched is not None and len(ranked):
            keys = keys or self.store.passage_keys(ranked.ids)
            weight = self.settings.article_words_weight
            stages = stages._replace(words=article_words(ranked, keys[1], *matched, weight))
        if stages.article is not None or stages.words is not None:
            ranked = Ranking.best_first(ranked.ids, stages.total())
        anchored = None
        if mode == "hybrid":
            if len(dense_leg):
                # The dense leg's best passage among the first `dense_anchor` (`fusion.anchor`).
                best = int(dense_leg.ids[0])
                ranked, moved = anchor(ranked, best, self.settings.dense_anchor)
                anchored = best if moved else None
            clock.lap("fuse", None)
        embedded = vector if mode in ("hybrid", "dense") else None
        return Ranked(
            ranked, dense_leg.pairs(), lexical, keys, cosines, embedded, sentences, anchored, stages
        )

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

    def _nearest_sentences(
        self, vector: np.ndarray, where: PassageFilter | None
    ) -> Future[SentenceScores] | None:
        """The query's nearest sentences, being looked up beside the dense search, where the
        store looks them up so (`search.sentence_lift`) and no filter leaves most aside."""
        capabilities = self.store.capabilities
        if not (capabilities.sentence_search and self.settings.sentence_weight):
            return None
        if where is not None and not where.is_empty:
            return None
        return self._pool.submit(self.store.nearest_sentences, vector, NEAREST_SENTENCES)

    def _with_sentences(
        self,
        dense: Ranking,
        vector: np.ndarray,
        nearest: Future[SentenceScores] | None = None,
    ) -> tuple[Ranking, SentenceScores | None]:
        """Dense scores raised toward each passage's best sentence (`lift_to_sentences`), in
        their new order, and the sentences' scores (kept for the hits' answer sentences); as
        they were, and None, when the index keeps no sentence vectors. With `nearest`, the
        query's nearest sentences on their way, from them (`sentence_lift.lift_with_nearest`)."""
        weight = self.settings.sentence_weight
        if not weight or not len(dense) or not self.store.capabilities.sentence_vectors:
            return dense, None
        if nearest is not None:
            return lift_with_nearest(
                dense, nearest.result(), weight, lambda ids: self.store.sentence_scores(ids, vector)
            )
        sentences = self.store.sentence_scores(dense.ids, vector)
        lifted = lift_to_sentences(dense.scores, sentences.maxima(), weight)
        return Ranking.best_first(dense.ids, lifted), sentences

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
            timings["lexical"] = time.perf_counter() - started
        matched = None
        if with_articles and found and self.store.capabilities.article_lexical:
            started = time.perf_counter()
            codes, scores, article_ceiling = self.store.article_lexical_search(
                terms, ARTICLE_DEPTH, where
            )
            if len(codes) and article_ceiling > 0:
                matched = (codes, scores, article_ceiling)
            if timings is not None:
                timings["lexical_articles"] = time.perf_counter() - started
        return found, ceiling, matched

    def hits(
        self,
        query: str,
        ranked: Ranking,
        legs: Ranked,
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
            legs.sentences,
            legs.anchored,
            self._pool,
            legs.stages,
        )
