"""What a hit's score is made of: its passage's own score, its article's, its article's words.

The ranking adds its signals in steps (`search.ranking`; docs/quality.md, "How hybrid ranks"):
each passage's own score (fused in hybrid mode), plus its article's best passage's score (the
article boost), plus its article's BM25 (the article's words). `Stages` keeps the ranking after
each step; `score_parts` reads the shown hits' parts back from them, so that each part is the
one the ranking added and `passage + article + article_words` is the hit's score (but for an
anchored hit, which took the score of the hit it passed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from semsearch.search.fusion import Ranking, bounded_columns

__all__ = ["ScoreParts", "Stages", "score_parts"]


@dataclass(frozen=True)
class ScoreParts:
    """A hit's score in its parts; `passage + article + article_words` is the score."""

    passage: float  # the passage's own: fused (hybrid), its cosine (dense), BM25 share (lexical)
    article: float  # what its article's best passage added (the article boost; 0: none)
    article_words: float  # what its article's BM25 added (0: none)
    dense: float | None = None  # bounded hybrid: the cosine fused (its best sentence's lift in)
    lexical: float | None = None  # bounded hybrid: its BM25 over the query's ceiling
    dense_weight: float | None = None  # bounded hybrid: passage = w dense + (1 - w) lexical


class Stages(NamedTuple):
    """The ranking after each of its steps, every candidate's score in each."""

    passage: Ranking  # each passage's own score
    article: Ranking | None = None  # after the article boost (None: not applied)
    words: Ranking | None = None  # after the article's words (None: not added)
    # Bounded hybrid: what was fused (the cosines, the BM25s, the query's BM25 ceiling) and the
    # dense weight.
    fused: tuple[Ranking, Ranking, float, float] | None = None


def score_parts(stages: Stages, chunk_ids: Sequence[int]) -> dict[int, ScoreParts]:
    """The parts of the score of each of `chunk_ids` that the ranking holds, rounded as hits'
    scores are (6 places)."""
    wanted = np.asarray(chunk_ids, dtype=np.int64)
    own = _scores_of(stages.passage, wanted)
    boosted = own if stages.article is None else _scores_of(stages.article, wanted)
    worded = boosted if stages.words is None else _scores_of(stages.words, wanted)
    cosines = shares = None
    weight = None
    if stages.fused is not None:
        cosines_fused, lexical_fused, ceiling, weight = stages.fused
        ids, dense, lexical = bounded_columns(cosines_fused, lexical_fused, ceiling)
        cosines = _scores_of(Ranking(ids, dense), wanted)
        shares = _scores_of(Ranking(ids, lexical), wanted)
    parts: dict[int, ScoreParts] = {}
    for i, chunk_id in enumerate(wanted.tolist()):
        if np.isnan(own[i]):
            continue  # not in this ranking
        parts[chunk_id] = ScoreParts(
            passage=round(float(own[i]), 6),
            article=round(float(boosted[i] - own[i]), 6),
            article_words=round(float(worded[i] - boosted[i]), 6),
            dense=_rounded(cosines, i),
            lexical=_rounded(shares, i),
            dense_weight=weight,
        )
    return parts


def _scores_of(ranking: Ranking, wanted: np.ndarray) -> np.ndarray:
    """The score in `ranking` of each of `wanted` (NaN where it holds none)."""
    if not len(ranking):
        return np.full(len(wanted), np.nan)
    order = np.argsort(ranking.ids, kind="stable")
    ids = ranking.ids[order]
    at = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    return np.where(ids[at] == wanted, ranking.scores[order][at], np.nan)


def _rounded(values: np.ndarray | None, i: int) -> float | None:
    if values is None or np.isnan(values[i]):
        return None
    return round(float(values[i]), 6)
