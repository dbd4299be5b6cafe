"""The sentence vectors of a FAISS generation: each passage's sentences scored against a query.

The rows of `sentences.npy` (each passage's sentences, passage after passage, where
`sentence_offsets.npy` says) are memory-mapped when first needed, never copied: a query reads
only its candidates' rows, and the operating system keeps in memory the pages queries touch. A
passage's score is its best sentence's inner product with the query vector (`SentenceScores`).
The rows are 8-bit codes (`index.sentence_codes`: a query's rows are gathered and scored
without being decoded), or float16 or float32 in generations written before (float32 read in
place by FAISS's `fvec_inner_products_by_idx`).
"""

from __future__ import annotations

import threading
from pathlib import Path

import faiss
import numpy as np

from semsearch.index.faiss_layout import SENTENCE_OFFSETS_NPY, SENTENCE_RANGES_NPY, SENTENCES_NPY
from semsearch.index.sentence_codes import CODE_DTYPE, products
from semsearch.index.sentence_scores import SentenceScores
from semsearch.index.vectors import one_thread

__all__ = ["SentenceIndex"]

# Sentence rows scored at once by `nearest` (their float32 products: 100 MB at 384 dimensions).
_NEAREST_BLOCK = 65_536


class SentenceIndex:
    """The sentence vectors of the generation in `folder`, read when first needed; safe to share
    between threads.

    Args:
        folder: the generation's folder.
        present: whether the generation has sentence vectors (built without: every passage has
            none).
    """

    def __init__(self, folder: Path, present: bool):
        self._folder = folder
        self._present = present
        self._lock = threading.Lock()
        self._loaded: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None

    def scores(self, ids: np.ndarray, vector: np.ndarray) -> SentenceScores:
        """The inner product of the query vector with every sentence of these passages."""
        wanted = np.asarray(ids, dtype=np.int64)
        found = self._scores(wanted, vector)
        if found is None:
            return SentenceScores.none(wanted)
        return SentenceScores(wanted, *found)

    def nearest(self, vector: np.ndarray, limit: int) -> SentenceScores:
        """The `limit` sentences of the whole generation nearest to the query vector, as the
        scores of their passages, the `limit`-th product their ceiling (-inf: all are listed).

        Every row is read: searches here score their candidates' sentences instead
        (`scores`), which costs less; this is the stores' common ground for the ranking's
        sentence look-up beside a server's dense search (`search.sentence_lift`)."""
        if not self._present or limit <= 0:
            return SentenceScores.none(np.zeros(0, dtype=np.int64))
        offsets, vectors, ranges = self._index()
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        rows = np.zeros(0, dtype=np.int64)
        scores = np.zeros(0, dtype=np.float32)
        for start in range(0, len(vectors), _NEAREST_BLOCK):  # (a block's floats at a time)
            block = vectors[start : start + _NEAREST_BLOCK]
            found = (
                products(block, query, ranges)
                if ranges is not None
                else np.asarray(block, dtype=np.float32) @ query
            )
            rows = np.concatenate([rows, np.arange(start, start + len(block), dtype=np.int64)])
            scores = np.concatenate([scores, found.astype(np.float32)])
            if len(scores) > limit:
                best = np.argpartition(-scores, limit - 1)[:limit]
                rows, scores = rows[best], scores[best]
        ceiling = float(scores.min()) if len(vectors) > limit else -np.inf
        passages = np.searchsorted(offsets, rows, side="right") - 1
        return SentenceScores.laid_out(passages, rows - offsets[passages], scores, ceiling)

    def _scores(
        self, wanted: np.ndarray, vector: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The inner product of the vector with each sentence of these passages, passage after
        passage; where each passage's rows start in them; how many each has. None when no
        passage has a sentence vector."""
        if not self._present or not len(wanted):
            return None
        offsets, vectors, ranges = self._index()
        starts, counts = offsets[wanted], offsets[wanted + 1] - offsets[wanted]
        if not counts.any():
            return None
        # Row numbers of every wanted passage's sentences, passage after passage.
        firsts = np.cumsum(counts) - counts
        rows = np.arange(counts.sum(), dtype=np.int64) + np.repeat(starts - firsts, counts)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        if ranges is not None:
            return products(vectors[rows], query, ranges), firsts, counts
        if vectors.dtype != np.float32:
            return vectors[rows].astype(np.float32) @ query, firsts, counts
        scores = np.empty(len(rows), dtype=np.float32)
        # The products with just these rows, read in place from the mapped file (numpy would
        # gather a copy of them first: 0.25 against 0.1 ms for a hybrid query's ~1,300 rows).
        with one_thread():  # as in the dense search (`index.faiss_filter.index_search`)
            faiss.fvec_inner_products_by_idx(  # type: ignore[attr-defined]
                faiss.swig_ptr(scores), faiss.swig_ptr(query), faiss.swig_ptr(vectors),
                faiss.swig_ptr(rows), vectors.shape[1], 1, len(rows),
            )  # fmt: skip
        return scores, firsts, counts

    def _index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The sentence offsets, the sentence vectors (a row each, memory-mapped when the file
        holds contiguous codes, float16 or float32, as writers save it) and, for codes, their
        ranges; read when first needed."""
        with self._lock:
            if self._loaded is None:
                # Checked against the manifest's checksums when the generation was opened.
                offsets = np.load(self._folder / SENTENCE_OFFSETS_NPY, allow_pickle=False)
                rows = np.load(self._folder / SENTENCES_NPY, mmap_mode="r", allow_pickle=False)
                ranges = None
                if rows.dtype == CODE_DTYPE:
                    ranges = np.load(self._folder / SENTENCE_RANGES_NPY, allow_pickle=False)
                elif rows.dtype not in (np.float16, np.float32):
                    rows = np.asarray(rows, dtype=np.float32)  # (a copy, in memory)
                if not rows.flags["C_CONTIGUOUS"]:
                    rows = np.ascontiguousarray(rows)
                self._loaded = (offsets, rows, ranges)
            return self._loaded

    def close(self) -> None:
        """Let go of the sentence vectors (mapped again if asked for after; a search still
        reading them keeps its own reference until it is done)."""
        with self._lock:
            self._loaded = None
