"""How each FAISS index type does at a size: build time, latency, recall@10 and memory.

For `semsearch bench`, which hands in the real vectors of a built index: synthetic vectors are
drawn around them (clustered) or uniformly, at each size asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from semsearch.index.stores import VectorIndexSpec
from semsearch.index.vectors import build_vector_index, vector_index_bytes

__all__ = ["TIMED_QUERIES", "bench_vector_indexes"]

Say = Callable[[str], None]
# HNSW's graph takes over half an hour to build on 2 cores above this many vectors.
HNSW_BENCH_MAX = 200_000
# Latency is the mean of TIMED_QUERIES single queries; recall uses 200.
TIMED_QUERIES = 50


def _synthetic(base: np.ndarray, count: int, clustered: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dimension = base.shape[1]
    if clustered:  # a mixture around real passage vectors
        centres = base[rng.integers(0, len(base), count)]
        vectors = centres + rng.normal(scale=0.05, size=(count, dimension)).astype(np.float32)
    else:
        vectors = rng.normal(size=(count, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def _recall_at_10(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)]))


def bench_vector_indexes(
    base: np.ndarray, sizes: list[int], say: Say, real: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Each FAISS index type on synthetic vectors: build time, latency, recall@10, memory.

    Recall is measured on 200 queries drawn like the vectors and, for the clustered data, on
    `real`: query texts embedded by the model. Real queries are further from the passages than
    the synthetic ones, and approximate indexes find their neighbours less often.
    """
    rows = []
    for size in sizes:
        for clustered in (True, False):
            vectors = _synthetic(base, size, clustered, seed=size)
            queries = _synthetic(base, 200, clustered, seed=size + 1)
            real_queries = real if clustered and real is not None and len(real) else None
            exact = exact_real = None
            for kind in ("flat", "hnsw", "ivf"):
                if kind == "hnsw" and size > HNSW_BENCH_MAX:
                    say(
                        f"vectors: hnsw not built at {size} passages: its graph takes over half an "
                        "hour to build on 2 cores and 1.7 GB (auto uses ivf above the flat limit)"
                    )
                    continue
                started = time.perf_counter()
                index = build_vector_index(vectors, VectorIndexSpec(kind=kind).resolve(size))
                build_seconds = time.perf_counter() - started
                started = time.perf_counter()
                for query in queries[:TIMED_QUERIES]:
                    index.search(query.reshape(1, -1), 10)
                per_query_ms = (time.perf_counter() - started) * 1000 / TIMED_QUERIES
                _, found = index.search(queries, 10)
                if exact is None:
                    exact = found
                row = {
                    "passages": size,
                    "data": "clustered" if clustered else "uniform",
                    "index": kind,
                    "build_seconds": round(build_seconds, 1),
                    "ms_per_query": round(per_query_ms, 3),
                    "recall@10": round(_recall_at_10(found, exact), 4),
                    "recall@10_real_queries": None,
                    "index_mb": round(vector_index_bytes(index) / 2**20, 1),
                }
                if real_queries is not None:
                    _, found_real = index.search(real_queries, 10)
                    if exact_real is None:
                        exact_real = found_real
                    recall_real = _recall_at_10(found_real, exact_real)
                    row["recall@10_real_queries"] = round(recall_real, 4)
                rows.append(row)
                say(f"vectors: {row}")
                del index
    return rows
