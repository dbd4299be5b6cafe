"""BM25's constants and the largest score a query can reach, shared by every lexical index."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["BM25_B", "BM25_K1", "bm25_ceiling"]

# BM25's term-frequency saturation in SQLite FTS5 (fixed there), and in the Milvus store's index.
BM25_K1 = 1.2
BM25_B = 0.75


def bm25_ceiling(document_frequencies: Sequence[int], passages: int, idf: str = "fts5") -> float:
    """The most BM25 can give one passage for query terms with these document frequencies.

    Each term found in the corpus contributes idf * (k1 + 1). `idf` names the engine's formula:
    "fts5", ln((N - df + 0.5) / (df + 0.5)) clipped at 1e-6 (SQLite), or "lucene",
    ln(1 + (N - df + 0.5) / (df + 0.5)) (Milvus, Lucene), never below zero.
    """
    total = 0.0
    for df in document_frequencies:
        if df <= 0:
            continue
        ratio = (passages - df + 0.5) / (df + 0.5)
        total += math.log1p(ratio) if idf == "lucene" else max(math.log(ratio), 1e-6)
    return total * (BM25_K1 + 1)
