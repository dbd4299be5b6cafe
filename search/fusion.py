"""Rank fusion: combine ranked lists of ids into one ranking."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["RRF_K", "fuse_rrf"]

# The constant of Cormack et al. (2009): damps the weight of the very first ranks.
RRF_K = 60


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
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            best[item] = min(best.get(item, rank), rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], best[pair[0]], pair[0]))
