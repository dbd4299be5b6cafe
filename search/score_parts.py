"""What a hit's score is made of: its passage's own score, its article's, its article's words.

The ranking adds its signals in steps (`search.ranking`; docs/quality.md, "How hybrid ranks"):
each passage's own score (fused in hybrid mode), plus its article's best passage's score (the
article boost), plus its article's BM25 (the article's words). `Stages` holds what each step
gave every candidate, and the ranking is the order of their sum; `score_parts` reads the shown
hits' parts from it, so that each part is the one the ranking added and `passage + article +
article_words` is the hit's score (but for an anchored hit, which took the score of the hit it
passed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

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
    """Each candidate's score in its parts, as the ranking adds them (arrays in `ids`' order)."""

    ids: np.ndarray
    passage: np.ndarray  # each passage's own score
    article: np.ndarray | None = None  # what its article's best passage adds (None: nothing)
    words: np.ndarray | None = None  # what its article's BM25 adds (None: nothing)
    # Bounded hybrid: the columns fused (`fusion.bounded_columns`: the sorted ids, their
    # cosines, their BM25 shares) and the dense weight.
    fused: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None

    def total(self) -> np.ndarray:
        """Each candidate's score: the sum of its parts."""
        total = self.passage
        for part in (self.article, self.words):
            if part is not None:
                total = total + part
        return total


def score_parts(stages: Stages, chunk_ids: Sequence[int]) -> dict[int, ScoreParts]:
    """The parts of the score of each of `chunk_ids` that the ranking holds, rounded as hits'
    scores are (6 places)."""
    wanted = np.asarray(chunk_ids, dtype=np.int64)
    at_wanted, at = _positions(stages.ids, wanted)
    nothing = np.zeros(len(stages.ids))
    rows = np.full((5, len(wanted)), np.nan)
    for row, values in enumerate((stages.passage, stages.article, stages.words)):
        rows[row, at_wanted] = (nothing if values is None else values)[at]
    weight = None
    if stages.fused is not None:
        ids, cosines, shares, weight = stages.fused
        fused_wanted, fused_at = _positions(ids, wanted)
        rows[3, fused_wanted], rows[4, fused_wanted] = cosines[fused_at], shares[fused_at]
    parts: dict[int, ScoreParts] = {}
    listed = zip(wanted.tolist(), *np.round(rows, 6).tolist(), strict=True)
    for chunk_id, passage, article, words, cosine, share in listed:
        if passage != passage:  # NaN: not in this ranking
            continue
        parts[chunk_id] = ScoreParts(
            passage, article, words,
            dense=None if cosine != cosine else cosine,
            lexical=None if share != share else share,
            dense_weight=weight,
        )  # fmt: skip
    return parts


def _positions(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `wanted` that `ids` holds is: (its index in `wanted`, its index in `ids`).

    A page's few ids against a ranking's few hundred: one comparison, no sort."""
    at_wanted, at_ids = np.nonzero(wanted[:, None] == ids[None, :])
    return at_wanted, at_ids
