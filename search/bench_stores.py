"""`semsearch bench --stores`: the FAISS store beside the Milvus store on the same corpus.

Both serve the same build (Milvus's vectors come from the embedding cache the FAISS build
filled) through the same `SearchService`, in this process, one query at a time. Each query is
embedded once, by the overlap pass, and then comes from the service's query cache, so the
figures are the stores' own: each mode's p50, p95 and p99 (every mode of both stores run on
one query before the next, three passes: `bench_tools.timed_together`), and how much of
FAISS's top 10 the Milvus top 10 holds. The Milvus is `SEMSEARCH_MILVUS_URI` when it names a server
(`http://host:19530`), else a Milvus Lite folder made for the run; beside the modes, its bare
search call (`dense_search`, k = 10), the floor every query pays.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.index.builder import build_index
from semsearch.index.store_choice import make_store
from semsearch.search.bench_tools import machine, passage_queries, timed_together
from semsearch.search.errors import InvalidQuery
from semsearch.search.settings import Settings, embedder_for, store_for

__all__ = ["STORE_QUERIES", "bench_stores", "format_stores", "run_stores_bench"]

Say = Callable[[str], None]
# Queries timed per mode on each store (Milvus Lite is slow: 0.02-0.3 s a query), each
# `STORE_PASSES` times.
STORE_QUERIES = 50
STORE_PASSES = 3
MODES = ("hybrid", "dense", "lexical")


def bench_stores(
    corpus: Path, work: Path, settings: Settings, queries: list[str], say: Say
) -> dict[str, Any]:
    """Figures of both stores on `corpus`, whose FAISS index is built in `work / "index"`."""
    try:
        import pymilvus  # noqa: F401
    except ImportError:  # pragma: no cover - the dev extra installs it
        return {"skipped": "pymilvus is not installed (pip install 'semsearch[milvus]')"}
    from semsearch.search.service import SearchService

    index_dir = work / "index"
    server = settings.milvus_uri.startswith(("http://", "https://", "tcp://"))
    uri = settings.milvus_uri if server else str(work / "milvus.db")
    embedder = embedder_for(settings.model_copy(update={"index_dir": index_dir}))
    milvus = store_for(
        settings.model_copy(
            update={
                "store": "milvus",
                "index_dir": index_dir,
                "milvus_uri": uri,
                "milvus_collection": f"semsearch_bench_{int(time.time())}",
            }
        )
    )
    started = time.perf_counter()
    report = build_index(corpus, index_dir, embedder, store=milvus)
    build_seconds = time.perf_counter() - started
    say(f"milvus build (cached vectors): {report.passages} passages in {build_seconds:.1f} s")
    queries = queries[:STORE_QUERIES]
    vectors = {query: embedder.embed_query(query) for query in queries}  # (the bare call's)
    opened = milvus.open()
    rows: dict[str, Any] = {
        "milvus_uri": uri if server else "Milvus Lite (local folder)",
        "milvus_index": settings.milvus_index,
        "milvus_build_seconds": round(build_seconds, 2),
        "passages": report.passages,
        "queries": len(queries),
    }
    # (every query's vector kept, whatever SEMSEARCH_QUERY_CACHE_SIZE says)
    cache = max(settings.query_cache_size, len(queries))
    settings = settings.model_copy(update={"query_cache_size": cache})
    services = {
        "faiss": SearchService(make_store("faiss", index_dir).open(), embedder, settings),
        "milvus": SearchService(opened, embedder, settings),
    }
    runs: dict[str, Callable[[str], Any]] = {}
    try:
        for query in queries[:10]:  # warm up
            for service in services.values():
                service.search(query, k=10)
        for mode in MODES:
            try:
                found = {
                    name: [{hit.chunk_id for hit in s.search(q, k=10, mode=mode)} for q in queries]
                    for name, s in services.items()
                }
            except InvalidQuery as error:  # (lexical, on a Milvus without full-text search)
                rows[f"milvus_{mode}"] = {"unavailable": str(error)}
                continue
            shared = [len(a & b) / max(len(a), 1) for a, b in zip(*found.values(), strict=True)]
            rows[f"{mode}_top10_overlap"] = round(float(np.mean(shared)), 3)
            for name, service in services.items():
                runs[f"{name}_{mode}"] = partial(service.search, k=10, mode=mode)
        rows["milvus_legs_hybrid"] = list(services["milvus"].legs("hybrid"))
        runs["milvus_search_call"] = lambda q: opened.dense_search(vectors[q], 10)
        # Every mode of both stores, and the bare call, on each query in turn: the ratios hold
        # on a machine whose speed drifts from minute to minute.
        for name, figures in timed_together(runs, queries, STORE_PASSES).items():
            rows[name] = figures
            say(f"{name.replace('_', ', ', 1)}: {figures}")
    finally:
        for service in services.values():
            service.close()
        milvus.drop()
        milvus.close()
    return rows


def run_stores_bench(corpus: Path, settings: Settings, query_count: int, say: Say) -> dict:
    """Build `corpus` in a temporary folder and compare the stores on it."""
    with tempfile.TemporaryDirectory(prefix="semsearch-bench-stores-") as scratch:
        work = Path(scratch)
        index_dir = work / "index"
        embedder = embedder_for(settings.model_copy(update={"index_dir": index_dir}))
        started = time.perf_counter()
        report = build_index(corpus, index_dir, embedder)
        say(f"faiss build: {report.passages} passages in {time.perf_counter() - started:.1f} s")
        queries = passage_queries(index_dir, query_count)
        stores = bench_stores(corpus, work, settings, queries, say)
    return {"machine": machine(), "stores": stores}


def format_stores(stores: dict[str, Any]) -> list[str]:
    """The store comparison as lines of a readable report."""
    if "skipped" in stores:
        return [f"stores: Milvus skipped: {stores['skipped']}"]
    overlaps = ", ".join(
        f"{mode} {stores[f'{mode}_top10_overlap']}"
        for mode in MODES
        if f"{mode}_top10_overlap" in stores
    )
    lines = [
        f"stores in-process, 1 client, {stores['queries']} queries, {stores['passages']} "
        f"passages ({stores['milvus_uri']}, "
        f"{stores['milvus_index']}; milvus build from cached vectors "
        f"{stores['milvus_build_seconds']} s; top-10 overlap with faiss: {overlaps}; "
        f"milvus hybrid legs: {', '.join(stores['milvus_legs_hybrid'])}):",
        f"{'store':<8}{'mode':<13}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}",
    ]
    for mode in (*MODES, "search_call"):
        for name in ("faiss", "milvus"):
            row = stores.get(f"{name}_{mode}")
            if isinstance(row, dict):
                lines.append(_line(name, mode, row))
    return lines


def _line(name: str, mode: str, row: dict[str, Any]) -> str:
    if "unavailable" in row:
        return f"{name:<8}{mode:<13}  unavailable: {row['unavailable']}"
    return f"{name:<8}{mode:<13}{row['p50_ms']:>9}{row['p95_ms']:>9}{row['p99_ms']:>9}"
