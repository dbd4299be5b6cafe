"""The scores of some passages' sentences against one query vector, computed once.

A search scores its candidates' sentences to lift each passage toward its best sentence
(`maxima`); the hits it shows then need which sentence that was (`best`), for their answer
sentence. Both read the same products, so a store computes them once (`sentence_scores`) and the
search keeps them.

A store whose every call is a round trip (a Milvus server) can instead find the query's nearest
sentences in the whole index beside its dense search (`nearest_sentences`), not after it: those
scores list some sentences of some passages, and say that no sentence they leave out scores
above their `ceiling` (`search.sentence_lift` decides when that is enough).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["SentenceScores"]


@dataclass(frozen=True)
class SentenceScores:
    """Each passage's sentences' inner products with a query vector.

    Args:
        ids: the passages' chunk ids, in the order they were asked for.
        products: every sentence's product, passage after passage.
        firsts: where each passage's sentences start in `products`.
        counts: how many sentences each passage has (0: none long enough, or an index without
            sentence vectors).
        ceiling: -inf where every sentence of these passages is scored. Otherwise (the nearest
            sentences of an index) a sentence left out scores at most this: a passage's left
            out sentences are -inf in `products`, and a passage not in `ids` may have sentences.
    """

    ids: np.ndarray
    products: np.ndarray
    firsts: np.ndarray
    counts: np.ndarray
    ceiling: float = -np.inf

    @classmethod
    def laid_out(
        cls, passages: np.ndarray, numbers: np.ndarray, products: np.ndarray, ceiling: float
    ) -> SentenceScores:
        """The scores of some sentences, each given by its passage, its number in that passage
        and its product: each passage's in its sentences' order, -inf for those not given."""
        passages = np.asarray(passages, dtype=np.int64)
        numbers = np.asarray(numbers, dtype=np.int64)
        known, where = np.unique(passages, return_inverse=True)
        counts = np.zeros(len(known), dtype=np.int64)
        np.maximum.at(counts, where, numbers + 1)
        firsts = np.cumsum(counts) - counts
        laid = np.full(int(counts.sum()), -np.inf, dtype=np.float32)
        laid[firsts[where] + numbers] = products
        return cls(known, laid, firsts, counts, float(ceiling))

    def taking(self, other: SentenceScores) -> SentenceScores:
        """These scores and `other`'s (of other passages) as one; the ceiling stays this one's."""
        return SentenceScores(
            np.concatenate([self.ids, other.ids]),
            np.concatenate([self.products, other.products]),
            np.concatenate([self.firsts, other.firsts + len(self.products)]),
            np.concatenate([self.counts, other.counts]),
            self.ceiling,
        )

    @classmethod
    def none(cls, ids: np.ndarray) -> SentenceScores:
        """No sentence has a vector: every passage has none."""
        wanted = np.asarray(ids, dtype=np.int64)
        empty = np.zeros(len(wanted), dtype=np.int64)
        return cls(wanted, np.zeros(0, dtype=np.float32), empty, empty)

    def maxima(self) -> np.ndarray:
        """For each passage, its best sentence's product; -inf where it has none."""
        best = np.full(len(self.ids), -np.inf)
        has = self.counts > 0
        if has.any():
            best[has] = np.maximum.reduceat(self.products, self.firsts[has])
        return best

    def best(self, ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each of these chunk ids: the number of its best sentence (from 0, in
        `index.chunking.sentences` order; the first of ties) and its product, -1 and -inf where
        it has none; and whether the id was among those scored (False: -1 and -inf too)."""
        wanted = np.fromiter((int(i) for i in ids), dtype=np.int64)
        numbers = np.full(len(wanted), -1, dtype=np.int64)
        products = np.full(len(wanted), -np.inf)
        if not len(wanted) or not len(self.ids):
            return numbers, products, np.zeros(len(wanted), dtype=bool)
        # Where each wanted id was scored (a hit's few ids against the few hundred candidates).
        match = self.ids[None, :] == wanted[:, None]
        known = match.any(axis=1)
        for row, position in enumerate(match.argmax(axis=1).tolist()):
            count = int(self.counts[position]) if known[row] else 0
            if count:
                first = int(self.firsts[position])
                own = self.products[first : first + count]
                numbers[row] = int(own.argmax())
                products[row] = float(own[numbers[row]])
        return numbers, products, known
