"""FAISS vector indexes: build the layout a `VectorIndexSpec` chose, and find close neighbours.

The only module besides the FAISS store's that imports faiss.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import faiss
import numpy as np

from semsearch.index.stores import ivf_list_count

__all__ = [
    "build_vector_index",
    "close_neighbours",
    "filtered_search_parameters",
    "one_thread",
    "set_search_breadth",
    "vector_index_bytes",
]

# The widest graph search a filtered HNSW search makes (see `filtered_search_parameters`).
FILTERED_EF_MAX = 4096
# k-means wants at least this many training vectors per list; more only costs time.
_IVF_TRAIN_PER_LIST = 64


def build_vector_index(vectors: np.ndarray, layout: dict[str, Any]) -> Any:
    """A FAISS index (ids = row numbers) of the layout `VectorIndexSpec.resolve` returned."""
    dimension = vectors.shape[1]
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    inner: Any  # one of FAISS's index classes
    if layout["type"] == "hnsw":
        inner = faiss.IndexHNSWFlat(dimension, layout["m"], faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = layout["ef_construction"]
        inner.hnsw.efSearch = layout["ef_search"]
    elif layout["type"] == "ivf":
        inner = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dimension),
            dimension,
            int(layout["nlist"]),
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
        inner.nprobe = int(layout["nprobe"])
        _train_ivf(inner, vectors, int(layout["nlist"]) * _IVF_TRAIN_PER_LIST)
    else:
        inner = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIDMap2(inner)
    if len(vectors):
        ids = np.arange(len(vectors), dtype=np.int64)
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    return index


def _train_ivf(index: Any, vectors: np.ndarray, samples: int) -> None:
    """Train an IVF index's k-means on a seeded sample: the same vectors give the same index."""
    rows = np.random.default_rng(0).permutation(len(vectors))[:samples]
    index.train(vectors[np.sort(rows)])


# Neighbour search for near-duplicates: every pair compared up to NEIGHBOURS_EXACT_MAX vectors,
# an inverted file beyond (see `close_neighbours`); rows searched at once bound the results' memory.
NEIGHBOURS_EXACT_MAX = 20_000
NEIGHBOURS_IVF_PROBES = 8
_NEIGHBOURS_BLOCK = 4096
_NEIGHBOURS_TRAIN_PER_LIST = 39  # the least k-means takes without a warning


def close_neighbours(
    vectors: np.ndarray, cosine: float, limit: int
) -> Iterator[tuple[int, list[int]]]:
    """For each row with others at an inner product of `cosine` or more: (the row, the rows of
    the closest `limit` of them).

    Comparing every pair costs n² products: 14 s for 50,000 vectors on 2 cores, so about an
    hour and a half (and 8 GB per block of 2,048 rows) for a million. Beyond
    `NEIGHBOURS_EXACT_MAX` an inverted file (k-means cells, full vectors) compares each vector
    with those of the `NEIGHBOURS_IVF_PROBES` nearest cells only: vectors this close (cosine
    0.9 for near-duplicate passages) lie in the same cell or the next. On the BBC passages it
    finds the same near-duplicate groups as exact search (with 1 probe it misses one of 841);
    a million passages take under 3 minutes.
    """
    count, dimension = vectors.shape
    if count < 2:
        return
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index: Any  # exact, or an inverted file
    if count <= NEIGHBOURS_EXACT_MAX:
        index = faiss.IndexFlatIP(dimension)
    else:
        lists = ivf_list_count(count)
        index = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT
        )
        _train_ivf(index, vectors, lists * _NEIGHBOURS_TRAIN_PER_LIST)
        index.nprobe = NEIGHBOURS_IVF_PROBES
    index.add(vectors)
    # FAISS keeps the neighbours strictly above the radius: the bar itself counts.
    radius = float(np.nextafter(np.float32(cosine), np.float32(-1)))
    for start in range(0, count, _NEIGHBOURS_BLOCK):
        lims, sims, ids = index.range_search(vectors[start : start + _NEIGHBOURS_BLOCK], radius)
        for row in range(len(lims) - 1):
            found, close = ids[lims[row] : lims[row + 1]], sims[lims[row] : lims[row + 1]]
            others = found != start + row
            found, close = found[others], close[others]
            if len(found) > limit:
                found = found[np.argsort(-close, kind="stable")[:limit]]
            if len(found):
                yield start + row, found.tolist()


def set_search_breadth(index: Any, layout: dict[str, Any]) -> None:
    """Set HNSW's efSearch or IVF's nprobe, which FAISS does not keep in the file."""
    inner: Any = faiss.downcast_index(index.index)
    if layout.get("type") == "hnsw":
        inner.hnsw.efSearch = int(layout["ef_search"])
    elif layout.get("type") == "ivf":
        inner.nprobe = int(layout["nprobe"])


def filtered_search_parameters(
    index: Any, layout: dict[str, Any], bits: np.ndarray, allowed: int, k: int
) -> Any:
    """Search parameters for `index` (an `IndexIDMap2` of `build_vector_index`) that let it
    return only the ids whose bit is set in `bits` (bit i of byte i // 8, least significant
    first; `allowed` of them set).

    HNSW and IVF look as much wider as the filter is narrow: a graph search that may only
    return one passage in ten looks at ten times the candidates (efSearch, at most
    `FILTERED_EF_MAX`), and IVF probes ten times the lists, so that about as many allowed
    passages are compared as unfiltered. The caller keeps `bits` alive until the search is
    over: FAISS reads it in place.
    """
    api: Any = faiss  # (its stubs lack the parameter classes' keywords)
    total = int(index.ntotal)
    widen = total / max(allowed, 1)
    selector = api.IDSelectorBitmap(total, api.swig_ptr(bits))
    if layout.get("type") == "hnsw":
        ef = max(int(layout["ef_search"]), k) * widen
        return api.SearchParametersHNSW(sel=selector, efSearch=int(min(ef, FILTERED_EF_MAX)))
    if layout.get("type") == "ivf":
        # IVF refuses parameters of another type; nprobe is not kept in the file either.
        inner: Any = api.downcast_index(index.index)
        nprobe = math.ceil(int(layout.get("nprobe", inner.nprobe)) * widen)
        return api.SearchParametersIVF(sel=selector, nprobe=min(nprobe, int(inner.nlist)))
    return api.SearchParameters(sel=selector)


def vector_index_bytes(index: Any) -> int:
    """How many bytes a FAISS index takes serialised: about what it holds in memory."""
    return int(faiss.serialize_index(index).nbytes)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """FAISS on one OpenMP thread in this block: the setting is the calling thread's own, and is
    restored for whatever the thread does next."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)
