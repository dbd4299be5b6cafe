"""Rank fusion: combine the dense and lexical rankings into one, and add article context."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ARTICLE_WEIGHT",
    "ARTICLE_WORDS_WEIGHT",
    "DENSE_ANCHOR",
    "DENSE_WEIGHT",
    "RRF_K",
    "SENTENCE_WEIGHT",
    "Ranking",
    "add_article_words",
    "anchor",
    "article_boosts",
    "article_words",
    "boost_articles",
    "bounded_columns",
    "fuse_bounded",
    "fuse_bounded_columns",
    "fuse_rrf",
    "fuse_zscore",
    "lift_to_sentences",
]

# The constant of Cormack et al. (2009): damps the weight of the very first ranks.
RRF_K = 60
# Tuned on scifact-dev and bbc-dev together (see the README's "Search quality"): the dense share of
# bounded fusion (SciFact is flat from 0.55 to 0.7; news wants 0.6 or more).
DENSE_WEIGHT = 0.6
ARTICLE_WEIGHT = 1.0
ARTICLE_WORDS_WEIGHT = 0.8
# How far a passage's cosine moves toward its best sentence's when that is higher (README).
SENTENCE_WEIGHT = 0.4
# Hybrid shows the dense leg's best passage among its first DENSE_ANCHOR hits (0: off). On
# scifact-dev and bbc-dev it changes little (nDCG@10 0.7530 -> 0.7534, passage hit@5 0.800 ->
# 0.8125; the same for 2 to 5); it bounds how far the fixed weights can bury a passage the model
# itself ranks first, where a held-out news set found dense alone ahead of hybrid.
DENSE_ANCHOR = 3


@dataclass(frozen=True, slots=True)
class Ranking:
    """Ids and their scores, best first, kept as arrays from the legs to the hits.

    Iterating gives (id, score) pairs; `pairs()` lists them.
    """

    ids: np.ndarray  # int64
    scores: np.ndarray  # float64

    @classmethod
    def of(cls, scored: Sequence[tuple[int, float]] | Ranking) -> Ranking:
        """A ranking from (id, score) pairs in their order (a Ranking is returned as it is)."""
        if isinstance(scored, Ranking):
            return scored
        if not len(scored):
            return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
        # One conversion in C; ids pass through float64 exactly (they are far below 2**53).
        pairs = np.asarray(scored, dtype=np.float64).reshape(-1, 2)
        return cls(pairs[:, 0].astype(np.int64), pairs[:, 1].copy())

    @classmethod
    def best_first(cls, ids: np.ndarray, scores: np.ndarray) -> Ranking:
        """A ranking of these ids and scores: best score first, ties to the smaller id."""
        order = np.lexsort((ids, -scores))
        return cls(ids[order], scores[order])

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return iter(self.pairs())

    def pairs(self) -> list[tuple[int, float]]:
        return list(zip(self.ids.tolist(), self.scores.tolist(), strict=True))

    def first_of_each(self, keys: np.ndarray | None = None) -> Ranking:
        """Each id once, where it first appears; with `keys` (one per id), each key once."""
        if len(self.ids) < 2:
            return self
        first = np.unique(self.ids if keys is None else keys, return_index=True)[1]
        if len(first) == len(self.ids):
            return self
        keep = np.sort(first)
        return Ranking(self.ids[keep], self.scores[keep])


def lift_to_sentences(
    scores: np.ndarray, best_sentence: np.ndarray, weight: float = SENTENCE_WEIGHT
) -> np.ndarray:
    """Each passage's cosine moved `weight` of the way up to its best sentence's cosine.

    A passage embedded whole can bury the one sentence a query is about (a claim restating one
    finding of an abstract, a question about one fact of a story); that sentence embedded alone
    matches it better. Only a higher sentence counts: a passage is never marked down for its
    sentences (-inf, no sentence vector, leaves it as it is).

    Args:
        scores: the passages' cosines.
        best_sentence: for each passage, the largest cosine of one of its sentences.
        weight: the share of the gap added, in [0, 1].
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not weight or not len(scores):
        return scores
    gap = np.asarray(best_sentence, dtype=np.float64) - scores
    return scores + weight * np.where(gap > 0, gap, 0.0)


def fuse_rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> Ranking:
    """Reciprocal rank fusion: each id scores the sum of 1 / (k + rank) over the lists.

    Args:
        rankings: lists of ids, best first.
        k: the damping constant.

    Returns:
        (id, fused score), best first; ties go to the better best rank, then the smaller id.
    """
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking in rankings:
        for rank, item in enumerate(dict.fromkeys(ranking), start=1):  # a repeat counts once
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            best[item] = min(best.get(item, rank), rank)
    return Ranking.of(sorted(scores.items(), key=lambda pair: (-pair[1], best[pair[0]], pair[0])))


def _zscores(scored: Ranking) -> Ranking:
    """Each id once (the first time) with its standardised score."""
    scored = scored.first_of_each()
    if not len(scored):
        return scored
    values = scored.scores
    spread = values.std() or 1.0
    return Ranking(scored.ids, (values - values.mean()) / spread)


def _column(ids: np.ndarray, leg: Ranking) -> np.ndarray:
    """A leg's score for each of the sorted `ids`; one the leg did not return gets its lowest."""
    leg = leg.first_of_each()  # a repeat counts once, the first time
    column = np.full(len(ids), leg.scores.min() if len(leg) else 0.0)
    column[np.searchsorted(ids, leg.ids)] = leg.scores
    return column


def fuse_bounded(
    dense: Sequence[tuple[int, float]] | Ranking,
    lexical: Sequence[tuple[int, float]] | Ranking,
    lexical_ceiling: float,
    dense_weight: float = DENSE_WEIGHT,
) -> Ranking:
    """Convex combination of scores divided by the most each leg could give this query.

    Cosine similarity is bounded by 1 already; a BM25 score is divided by `lexical_ceiling`, the
    score of a passage holding every query term as often as BM25 rewards it (see
    `PassageStore.lexical_ceiling`). Unlike z-scores or min-max over the returned lists, the
    scale does not depend on what else came back, so a weak lexical match stays weak (the
    "theoretical min-max" normalisation of Bruch et al., 2023). A passage missing from a leg
    gets that leg's lowest returned score.

    Args:
        dense: (id, cosine) of the dense leg, best first.
        lexical: (id, BM25) of the lexical leg, best first.
        lexical_ceiling: the query's largest possible BM25 score (<= 0: 1 is used).
        dense_weight: the dense leg's weight in [0, 1]; the lexical leg gets the rest.

    Returns:
        (id, fused score), best first; ties go to the smaller id.
    """
    return fuse_bounded_columns(bounded_columns(dense, lexical, lexical_ceiling), dense_weight)


def fuse_bounded_columns(
    columns: tuple[np.ndarray, np.ndarray, np.ndarray], dense_weight: float = DENSE_WEIGHT
) -> Ranking:
    """`fuse_bounded` from its `bounded_columns` (kept by a caller that shows them)."""
    ids, cosines, words = columns
    if not len(ids):
        return Ranking.of([])
    return Ranking.best_first(ids, dense_weight * cosines + (1 - dense_weight) * words)


def bounded_columns(
    dense: Sequence[tuple[int, float]] | Ranking,
    lexical: Sequence[tuple[int, float]] | Ranking,
    lexical_ceiling: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What `fuse_bounded` combines: the ids of both legs (sorted), and for each its cosine and
    its BM25 over `lexical_ceiling`, the leg's lowest where the leg did not return it."""
    dense, lexical = Ranking.of(dense), Ranking.of(lexical)
    ids = np.union1d(dense.ids, lexical.ids)
    if not len(ids):
        return ids, np.zeros(0), np.zeros(0)
    ceiling = lexical_ceiling if lexical_ceiling > 0 else 1.0
    return ids, _column(ids, dense), _column(ids, lexical) / ceiling


def fuse_zscore(
    dense: Sequence[tuple[int, float]] | Ranking,
    lexical: Sequence[tuple[int, float]] | Ranking,
    dense_weight: float = 0.5,
) -> Ranking:
    """Convex combination of z-score normalised scores.

    Each leg's scores are standardised over its own candidate list, so cosine similarities and
    BM25 scores become comparable; an id missing from a leg gets that leg's lowest standardised
    score (it ranked below every candidate there).

    Args:
        dense: (id, score) of the dense leg, best first.
        lexical: (id, score) of the lexical leg, best first.
        dense_weight: the dense leg's weight in [0, 1]; the lexical leg gets the rest.

    Returns:
        (id, fused score), best first; ties go to the smaller id.
    """
    zd, zl = _zscores(Ranking.of(dense)), _zscores(Ranking.of(lexical))
    ids = np.union1d(zd.ids, zl.ids)
    if not len(ids):
        return Ranking.of([])
    fused = dense_weight * _column(ids, zd) + (1 - dense_weight) * _column(ids, zl)
    return Ranking.best_first(ids, fused)


def boost_articles(
    scored: Sequence[tuple[int, float]] | Ranking,
    article_of: Sequence[int] | Mapping[int, Hashable],
    weight: float = ARTICLE_WEIGHT,
) -> Ranking:
    """Add to each passage's score `weight` times the best score in its article.

    A passage is more likely the answer when its article as a whole matches the query: this puts
    the paragraphs of the best-matching article together near the top.

    Args:
        scored: (id, score), best first.
        article_of: the article of each id (an integer code or the article id), indexable
            by id.
        weight: how much the article's best score counts.
    """
    scored = Ranking.of(scored)
    if not weight or not len(scored):
        return scored
    return Ranking.best_first(
        scored.ids, scored.scores + article_boosts(scored, article_of, weight)
    )


def article_boosts(
    scored: Ranking, article_of: Sequence[int] | Mapping[int, Hashable], weight: float
) -> np.ndarray:
    """What `boost_articles` adds to each of `scored`, in its order."""
    articles, which = np.unique(_articles_of(scored.ids, article_of), return_inverse=True)
    best = np.full(len(articles), -np.inf)
    np.maximum.at(best, which, scored.scores)
    return weight * best[which]


def _articles_of(ids: np.ndarray, article_of: Sequence[int] | Mapping[int, Hashable]) -> np.ndarray:
    """The article of each of `ids`: integer codes (a store's whole column) or article ids."""
    if isinstance(article_of, np.ndarray):
        return article_of[ids]
    return np.array([article_of[i] for i in ids.tolist()])


def add_article_words(
    scored: Ranking,
    article_of: Sequence[int] | Mapping[int, Hashable],
    articles: np.ndarray,
    article_scores: np.ndarray,
    ceiling: float,
    weight: float = ARTICLE_WORDS_WEIGHT,
) -> Ranking:
    """Add to each passage's score `weight` times its article's BM25 divided by `ceiling`.

    The words of a query are often spread over a story: the paragraph that answers it holds some
    of them, its article the rest. Matching the whole article (title, headings and every
    paragraph) as one text counts that evidence; divided by the most the query could score
    (see `fuse_bounded`), it is on the scale of a passage's own BM25 share.

    Args:
        scored: (id, score), best first.
        article_of: the article of each passage (an integer code or the article id),
            indexable by id.
        articles, article_scores: the articles the query matched (as `article_of` names them),
            and their BM25.
        ceiling: the query's largest possible article BM25 (<= 0: nothing is added).
        weight: how much the article's words count.
    """
    if not weight or ceiling <= 0 or not len(scored) or not len(articles):
        return scored
    extra = article_words(scored, article_of, articles, article_scores, ceiling, weight)
    return Ranking.best_first(scored.ids, scored.scores + extra)


def article_words(
    scored: Ranking,
    article_of: Sequence[int] | Mapping[int, Hashable],
    articles: np.ndarray,
    article_scores: np.ndarray,
    ceiling: float,
    weight: float,
) -> np.ndarray:
    """What `add_article_words` adds to each of `scored` (ceiling > 0), in its order."""
    order = np.argsort(articles)
    known, values = articles[order], article_scores[order] / ceiling
    codes = _articles_of(scored.ids, article_of)
    at = np.minimum(np.searchsorted(known, codes), len(known) - 1)
    return weight * np.where(known[at] == codes, values[at], 0.0)


def anchor(scored: Ranking, chunk_id: int, within: int = DENSE_ANCHOR) -> tuple[Ranking, bool]:
    """`scored` with `chunk_id` moved up to rank `within` (from 1) when it ranks lower.

    The moved passage takes the score of the one it passes at that rank, so scores stay in
    order and every page of a query is still a slice of one ranking. A passage not in `scored`,
    or already among its first `within`, leaves it as it is.

    Returns:
        The ranking, and whether the passage was moved.
    """
    if within <= 0 or len(scored) <= within:
        return scored, False
    found = np.flatnonzero(scored.ids == chunk_id)
    if not len(found) or found[0] < within:
        return scored, False
    at = int(found[0])
    rest = np.delete(np.arange(len(scored)), at)
    order = np.concatenate([rest[: within - 1], [at], rest[within - 1 :]])
    scores = scored.scores[order].copy()
    scores[within - 1] = scored.scores[within - 1]
    return Ranking(scored.ids[order], scores), True
