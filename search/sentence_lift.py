"""The dense leg lifted toward each candidate's best sentence, with the sentence scores at hand.

`fusion.lift_to_sentences` moves each candidate's cosine toward its best sentence's. Its
sentence scores come one of two ways:

- its candidates' sentences (`PassageStore.sentence_scores`), asked once the dense search has
  named them: exact, and what an in-process store (FAISS) does, where a call costs little;
- the query's nearest sentences in the whole index (`nearest_sentences`), asked at the same time
  as the dense search, where every call is a round trip to a server (a store with the
  capability `sentence_search`): the two wait for the server together, not one after the other.

The nearest sentences give a candidate's best sentence exactly where any of its sentences is
among them. Of the others they say only that no sentence scores above their `ceiling`: such a
candidate with a cosine at least the ceiling is not lifted either way; one below could be
lifted as far as the ceiling would lift it. Where that bound could bring it into the first
`EXACT_DEPTH` of the ranking, its own sentences are scored (one more call, for those few), so
the first `EXACT_DEPTH` passages, and their order, are the ones exact scores give. Further down
a candidate may stay below where its best sentence would lift it.

Measured on BBC tech (2,357 passages, 9,478 sentences) with the real model on a Milvus 2.3.5
server, 50 queries: the 500 nearest sentences held a sentence of 193 of the 300 candidates on
average; no query needed the extra call for its first 50 passages, 4% for its first 100 (with
300 nearest sentences, 4% and 40%). Answer sentences: 9.9 of a page's 10 hits on average.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from semsearch.index.sentence_scores import SentenceScores
from semsearch.search.fusion import Ranking, lift_to_sentences

__all__ = ["EXACT_DEPTH", "NEAREST_SENTENCES", "lift_with_nearest"]

# The nearest sentences asked for beside the dense search.
NEAREST_SENTENCES = 500
# How much of the ranking is certain to be what exact sentence scores give (the first pages,
# and Recall@100).
EXACT_DEPTH = 100


def lift_with_nearest(
    dense: Ranking,
    nearest: SentenceScores,
    weight: float,
    score: Callable[[np.ndarray], SentenceScores],
    exact_depth: int = EXACT_DEPTH,
) -> tuple[Ranking, SentenceScores]:
    """The dense leg lifted with the query's nearest sentences, best first, and the sentence
    scores used (those of `nearest` and any scored since).

    Args:
        dense: the dense leg (chunk ids and cosines).
        nearest: the query's nearest sentences (a `ceiling` on the rest).
        weight: the sentence weight (`lift_to_sentences`).
        score: each of these passages' sentences scored (`PassageStore.sentence_scores`): for
            the candidates the ceiling leaves in doubt.
        exact_depth: how many of the first passages must be as exact scores rank them.
    """
    ids, cosines = dense.ids, np.asarray(dense.scores, dtype=np.float64)
    best, listed = _best_of(nearest, ids)
    lifted = lift_to_sentences(cosines, best, weight)
    if nearest.ceiling > -np.inf and len(ids):
        highest = lift_to_sentences(cosines, np.full(len(ids), nearest.ceiling), weight)
        doubt = ~listed & (highest > lifted)
        if len(ids) > exact_depth:
            # Lower bounds all: the exact ranking's `exact_depth`-th passage scores at least this.
            floor = np.partition(lifted, len(ids) - exact_depth)[len(ids) - exact_depth]
            doubt &= highest >= floor
        if doubt.any():
            scored = score(ids[doubt])
            exact = _best_of(scored, ids[doubt])[0]
            lifted[doubt] = lift_to_sentences(cosines[doubt], exact, weight)
            nearest = nearest.taking(scored)
    return Ranking.best_first(ids, lifted), nearest


def _best_of(scores: SentenceScores, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `ids`: its best sentence's product in `scores` (-inf where none), and
    whether `scores` holds the passage."""
    if not len(scores.ids):
        return np.full(len(ids), -np.inf), np.zeros(len(ids), dtype=bool)
    order = np.argsort(scores.ids, kind="stable")
    known, maxima = scores.ids[order], scores.maxima()[order]
    at = np.minimum(np.searchsorted(known, ids), len(known) - 1)
    held = known[at] == ids
    return np.where(held, maxima[at], -np.inf), held
