"""Filtered dense search in a FAISS generation: a `PassageFilter` resolved to the passages it keeps.

A filter is resolved once (per opened generation, then kept) to the chunk ids it keeps and masks
over chunk ids and article codes; the nearest passages among those are found exactly over their
stored vectors (`exact_search`) or by the FAISS index told which ids it may return
(`index_search`, which without a filter is the plain dense search).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from semsearch.index.bounded_cache import BoundedCache
from semsearch.index.stores import PassageFilter
from semsearch.index.vectors import filtered_search_parameters, one_thread

__all__ = [
    "EXACT_FILTER_MAX",
    "FILTER_CACHE_BYTES",
    "FILTER_CACHE_ENTRIES",
    "Allowed",
    "Filters",
    "exact_search",
    "index_search",
]

# A filter keeping at most this many passages is searched exactly, over the stored vectors of
# just those passages; a wider one by the FAISS index itself, told which ids it may return (an
# exact index stays exact; HNSW and IVF look wider as the filter is narrower, so that they
# stay about as approximate as unfiltered: `index.vectors.filtered_search_parameters`).
EXACT_FILTER_MAX = 20_000
# Stored vectors multiplied at once by an exact filtered search (bounds its memory: 6 MB at 384-d).
_EXACT_BLOCK = 4096
# The passages each filter keeps, per opened generation, least recently used dropped first.
FILTER_CACHE_ENTRIES = 256
FILTER_CACHE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Allowed:
    """The passages a filter keeps: their ids (ascending), a mask over chunk ids, and a mask over
    article codes (`articles.rowid`, for the whole-article BM25)."""

    ids: np.ndarray
    passages: np.ndarray
    articles: np.ndarray


def _allowed_cost(where: PassageFilter, allowed: Allowed) -> int:
    arrays = (allowed.ids, allowed.passages, allowed.articles)
    return sys.getsizeof(repr(where)) + sum(array.nbytes + 128 for array in arrays)


class Filters:
    """The passages each filter keeps in one generation, looked up once per filter and kept.

    Args:
        db: the calling thread's SQLite connection to the generation's records.
        article_codes: each chunk's article code, indexed by chunk id.
        metadata: whether the generation's articles have their section, date, author and url.
    """

    def __init__(
        self,
        db: Callable[[], sqlite3.Connection],
        article_codes: Callable[[], np.ndarray],
        metadata: bool,
    ):
        self._db = db
        self._article_codes = article_codes
        self._metadata = metadata
        self._cache: BoundedCache[PassageFilter, Allowed] = BoundedCache(
            FILTER_CACHE_ENTRIES, FILTER_CACHE_BYTES, _allowed_cost, largest=FILTER_CACHE_BYTES
        )

    def allowed(self, where: PassageFilter) -> Allowed:
        """The passages and articles `where` keeps (looked up once per filter and kept)."""
        kept = self._cache.get(where)
        if kept is not None:
            return kept
        conditions, values = ["1"], []
        if where.article is not None:
            conditions.append("id = ?")
            values.append(where.article)
        if where.uses_metadata and not self._metadata:
            conditions.append("0")  # no article of an older format has a section or a date
        if where.sections:
            conditions.append(f"section IN ({','.join('?' * len(where.sections))})")
            values.extend(where.sections)
        if where.after is not None:
            conditions.append("published >= ?")  # ISO dates sort as text; NULL matches nothing
            values.append(where.after)
        if where.before is not None:
            conditions.append("published <= ?")
            values.append(where.before)
        db = self._db()
        codes = np.array(
            [row[0] for row in db.execute(
                f"SELECT rowid FROM articles WHERE {' AND '.join(conditions)}", values
            )],
            dtype=np.int64,
        )  # fmt: skip
        last = db.execute("SELECT max(rowid) FROM articles").fetchone()[0] or 0
        articles = np.zeros(int(last) + 1, dtype=bool)
        articles[codes] = True
        article_codes = self._article_codes()
        passages = articles[article_codes] if len(article_codes) else np.zeros(0, bool)
        allowed = Allowed(np.flatnonzero(passages).astype(np.int64), passages, articles)
        for array in (allowed.ids, allowed.passages, allowed.articles):
            array.setflags(write=False)
        self._cache.put(where, allowed)
        return allowed

    def clear(self) -> None:
        self._cache.clear()


def exact_search(
    similarities: Callable[[np.ndarray, np.ndarray], np.ndarray],
    vector: np.ndarray,
    k: int,
    ids: np.ndarray,
) -> list[tuple[int, float]]:
    """The `k` best of `ids` by `similarities(ids, vector)`, their stored vectors' inner product
    with the query: (chunk id, inner product), best first, ties to the smaller id."""
    if not len(ids) or k < 1:
        return []
    best_ids, best_scores = [], []
    for start in range(0, len(ids), _EXACT_BLOCK):
        block = ids[start : start + _EXACT_BLOCK]
        scores = similarities(block, vector)
        if len(block) > k:  # the best k and those tied with the k-th (ties to smaller ids)
            keep = scores >= np.partition(scores, len(scores) - k)[len(scores) - k]
            block, scores = block[keep], scores[keep]
        best_ids.append(block)
        best_scores.append(scores)
    found, scores = np.concatenate(best_ids), np.concatenate(best_scores)
    order = np.lexsort((found, -scores))[:k]  # ties to the smaller id
    return list(zip(found[order].tolist(), scores[order].astype(float).tolist(), strict=True))


def index_search(
    index: Any, layout: dict[str, Any], vector: np.ndarray, k: int, allowed: Allowed | None
) -> list[tuple[int, float]]:
    """The `k` passages the FAISS `index` (of this manifest `layout`) finds nearest to the query:
    (chunk id, inner product), best first, ties to the smaller id; with `allowed`, only those
    passages (an ID selector over its mask)."""
    if index.ntotal == 0:
        return []
    query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
    params = None
    if allowed is not None:
        # The mask's bits, kept alive here while FAISS reads them.
        bits = np.packbits(allowed.passages, bitorder="little")
        params = filtered_search_parameters(index, layout, bits, len(allowed.ids), k)
    # One query is faster on one thread (measured: 1.5 ms against 2.2 ms for 10k vectors on
    # 2 cores), and leaves the other cores to concurrent requests. The OpenMP setting is the
    # calling thread's own, so it is restored for whatever this thread does next.
    with one_thread():
        scores, ids = index.search(query, min(k, index.ntotal), params=params)
    found = ids[0] >= 0
    ids, scores = ids[0][found], scores[0][found]
    order = np.lexsort((ids, -scores))  # ties to the smaller id
    return list(zip(ids[order].tolist(), scores[order].tolist(), strict=True))
