"""Rank fusion: combine the dense and lexical rankings into one, and add article context."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

__all__ = [
    "ARTICLE_WEIGHT",
    "DENSE_WEIGHT",
    "RRF_K",
    "boost_articles",
    "fuse_bounded",
    "fuse_rrf",
    "fuse_zscore",
]

# The constant of Cormack et al. (2009): damps the weight of the very first ranks.
RRF_K = 60
# Tuned on scifact-dev and bbc-dev together (see the README's "Search quality"): the dense share of
# bounded fusion (SciFact is flat from 0.35 to 0.6; news wants 0.55 or more).
DENSE_WEIGHT = 0.55
ARTICLE_WEIGHT = 1.0


def fuse_rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
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
    return sorted(scores.items(), key=lambda pair: (-pair[1], best[pair[0]], pair[0]))


def _zscores(scored: Sequence[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Ids (a repeat counts once, the first time) and their standardised scores."""
    if not scored:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    ids = np.fromiter((i for i, _ in scored), dtype=np.int64, count=len(scored))
    values = np.fromiter((s for _, s in scored), dtype=np.float64, count=len(scored))
    first = np.sort(np.unique(ids, return_index=True)[1])
    ids, values = ids[first], values[first]
    spread = values.std() or 1.0
    return ids, (values - values.mean()) / spread


def _ranked(ids: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    """(id, score) pairs, best score first, ties to the smaller id."""
    order = np.lexsort((ids, -scores))
    return list(zip(ids[order].tolist(), scores[order].tolist(), strict=True))


def _column(ids: np.ndarray, leg: Sequence[tuple[int, float]]) -> np.ndarray:
    """A leg's score for each of `ids`; an id the leg did not return gets its lowest score."""
    seen: dict[int, float] = {}
    for i, score in leg:
        seen.setdefault(i, score)  # a repeat counts once, the first time
    floor = min(seen.values(), default=0.0)
    return np.array([seen.get(i, floor) for i in ids.tolist()], dtype=np.float64)


def fuse_bounded(
    dense: Sequence[tuple[int, float]],
    lexical: Sequence[tuple[int, float]],
    lexical_ceiling: float,
    dense_weight: float = DENSE_WEIGHT,
) -> list[tuple[int, float]]:
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
    ids = np.union1d(
        np.fromiter((i for i, _ in dense), dtype=np.int64, count=len(dense)),
        np.fromiter((i for i, _ in lexical), dtype=np.int64, count=len(lexical)),
    )
    if not len(ids):
        return []
    ceiling = lexical_ceiling if lexical_ceiling > 0 else 1.0
    fused = (
        dense_weight * _column(ids, dense) + (1 - dense_weight) * _column(ids, lexical) / ceiling
    )
    return _ranked(ids, fused)


def fuse_zscore(
    dense: Sequence[tuple[int, float]],
    lexical: Sequence[tuple[int, float]],
    dense_weight: float = 0.5,
) -> list[tuple[int, float]]:
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
    dense_ids, zd = _zscores(dense)
    lexical_ids, zl = _zscores(lexical)
    ids = np.union1d(dense_ids, lexical_ids)
    both = []
    for leg_ids, z in ((dense_ids, zd), (lexical_ids, zl)):
        column = np.full(len(ids), z.min() if len(z) else 0.0)
        column[np.searchsorted(ids, leg_ids)] = z
        both.append(column)
    return _ranked(ids, dense_weight * both[0] + (1 - dense_weight) * both[1])


def boost_articles(
    scored: Sequence[tuple[int, float]],
    article_of: Sequence[int] | Mapping[int, Hashable],
    weight: float = ARTICLE_WEIGHT,
) -> list[tuple[int, float]]:
    """Add to each passage's score `weight` times the best score in its article.

    A passage is more likely the answer when its article as a whole matches the query: this puts
    the paragraphs of the best-matching article together near the top.

    Args:
        scored: (id, score), best first.
        article_of: the article of each id (an integer code or the article id), indexable
            by id.
        weight: how much the article's best score counts.
    """
    if not weight or not scored:
        return list(scored)
    ids = np.fromiter((i for i, _ in scored), dtype=np.int64, count=len(scored))
    scores = np.fromiter((s for _, s in scored), dtype=np.float64, count=len(scored))
    if isinstance(article_of, np.ndarray):
        codes = article_of[ids]
    else:
        codes = np.array([article_of[i] for i in ids.tolist()])  # ints or article ids
    articles, which = np.unique(codes, return_inverse=True)
    best = np.full(len(articles), -np.inf)
    np.maximum.at(best, which, scores)
    return _ranked(ids, scores + weight * best[which])
