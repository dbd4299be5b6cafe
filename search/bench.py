"""`semsearch bench`: build, rebuild, query-latency and vector-search figures on one machine."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.index.articles import read_corpus
from semsearch.index.builder import build_index
from semsearch.index.chunking import chunk_articles, sentences
from semsearch.index.embedding import count_tokens_many, resolve_model
from semsearch.index.store_choice import make_store
from semsearch.index.vector_bench import TIMED_QUERIES, bench_vector_indexes
from semsearch.search.bench_stores import bench_stores, format_stores
from semsearch.search.bench_tools import (
    free_port,
    http_load,
    machine,
    passage_queries,
    rss_mb,
    wait_for_server,
)
from semsearch.search.settings import Settings, embedder_for, vector_index_spec

__all__ = ["format_bench", "run_bench"]

Say = Callable[[str], None]
# HNSW build time grows past what one bench run can afford beyond this many vectors on 2 cores.
# The naive encode runs on every NAIVE_STRIDE-th passage: the whole corpus again would double
# the run.
NAIVE_STRIDE = 4
MODES = ("hybrid", "dense", "lexical")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bench_build(corpus: Path, work: Path, settings: Settings, say: Say) -> dict[str, Any]:
    seeds = work / "corpus"
    shutil.copytree(corpus, seeds, symlinks=True)
    index_dir = work / "index"
    # As `semsearch index` would: the configured backend, exports kept in the index folder.
    settings = settings.model_copy(update={"index_dir": index_dir})
    embedder = embedder_for(settings)
    started = time.perf_counter()
    embedder.load()  # type: ignore[attr-defined]  # each runtime's own; not on the protocol
    load_seconds = time.perf_counter() - started
    runtime = embedder.runtime
    say(f"model ready ({runtime}, export included if it ran) in {load_seconds:.1f} s")
    spec = vector_index_spec(settings)
    started = time.perf_counter()
    cold = build_index(seeds, index_dir, embedder, vector_index=spec)
    cold_seconds = time.perf_counter() - started
    say(f"cold build: {cold.passages} passages in {cold_seconds:.1f} s")
    # The naive path on the same embed texts: sentence-transformers' defaults (torch, batch 32),
    # on every NAIVE_STRIDE-th passage of the build and its sentences (a spread sample of the
    # same texts), so that the run stays within its time budget. The ratio compares the time
    # each takes to embed what the build embedded: passages and their sentences.
    from sentence_transformers import SentenceTransformer

    chunks = [
        chunk
        for article_chunks in chunk_articles(
            read_corpus(seeds, lambda _: None),
            count_tokens=embedder.count_tokens,
            count_many=lambda texts: count_tokens_many(embedder, texts),
            token_limit=embedder.max_tokens,
        )
        for chunk in article_chunks
    ][::NAIVE_STRIDE]
    texts = [chunk.embed_text for chunk in chunks]
    with_sentences = texts + [s for chunk in chunks for s in sentences(chunk.text)]
    if not cold.sentences:
        with_sentences = texts  # built without sentence vectors
    naive = SentenceTransformer(resolve_model(settings.model)[1], device="cpu")
    started = time.perf_counter()
    naive_vectors = naive.encode(texts, batch_size=32, normalize_embeddings=True)
    naive.encode(with_sentences[len(texts) :], batch_size=32, normalize_embeddings=True)
    naive_seconds = time.perf_counter() - started
    del naive
    say(
        f"naive encode: {len(texts)} passages (every {NAIVE_STRIDE}th) and their "
        f"{len(with_sentences) - len(texts)} sentences in {naive_seconds:.1f} s"
    )
    # What the naive path would take for everything the cold build embedded.
    naive_cold_seconds = naive_seconds * cold.texts_embedded / max(len(with_sentences), 1)
    ours = make_store("faiss", index_dir).open()
    stored = ours.vectors(np.arange(0, ours.count(), NAIVE_STRIDE))
    ours.close()
    agreement = float(np.min(np.sum(stored * naive_vectors, axis=1))) if len(texts) else 1.0
    up_to_date = build_index(seeds, index_dir, embedder, vector_index=spec, skip_unchanged=True)
    forced = build_index(seeds, index_dir, embedder, vector_index=spec)
    articles = sorted(seeds.rglob("*.txt"))
    edited = articles[::100][: max(1, len(articles) // 100)]
    for path in edited:  # 1% of the articles get one new sentence in their first paragraph
        text = path.read_text(encoding="utf-8", errors="replace")
        title, _, body = text.partition("\n\n")
        path.write_text(f"{title}\n\nThis story was updated for the benchmark. {body}")
    changed = build_index(seeds, index_dir, embedder, vector_index=spec, skip_unchanged=True)
    say(
        f"rebuild: unchanged {up_to_date.seconds:.1f} s (up to date: {up_to_date.up_to_date}), "
        f"forced {forced.seconds:.1f} s ({forced.embedded} embedded), "
        f"{len(edited)} articles edited {changed.seconds:.1f} s ({changed.embedded} embedded)"
    )
    return {
        "corpus": str(corpus),
        "backend": runtime,
        "model_ready_seconds": round(load_seconds, 2),
        "articles": cold.articles,
        "passages": cold.passages,
        "cold_seconds": round(cold_seconds, 2),
        "cold_passages_per_s": round(cold.passages / cold_seconds, 1),
        "sentences": cold.sentences,
        "cold_texts_embedded": cold.texts_embedded,
        "cold_texts_per_s": round(cold.texts_embedded / cold_seconds, 1),
        "naive_passages": len(texts),
        "naive_texts": len(with_sentences),
        "naive_texts_per_s": round(len(with_sentences) / naive_seconds, 1),
        "naive_cold_seconds": round(naive_cold_seconds, 1),
        "ratio_ours_naive": round(naive_cold_seconds / cold_seconds, 2),
        "min_cosine_to_naive": round(agreement, 6),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rebuild_unchanged_seconds": round(up_to_date.seconds, 2),
        "rebuild_unchanged_up_to_date": up_to_date.up_to_date,
        "rebuild_forced_seconds": round(forced.seconds, 2),
        "rebuild_forced_embedded": forced.embedded,
        "rebuild_1pct_articles": len(edited),
        "rebuild_1pct_seconds": round(changed.seconds, 2),
        "rebuild_1pct_embedded": changed.embedded,
    }


def _bench_server(
    index_dir: Path,
    settings: Settings,
    queries: list[str],
    say: Say,
    warm_up: Sequence[str] = (),
) -> dict[str, Any]:
    import httpx

    port = free_port()
    command = [str(Path(sys.executable).parent / "semsearch"), "serve", "--port", str(port)]
    env = {
        **os.environ,
        "SEMSEARCH_INDEX_DIR": str(index_dir),
        "SEMSEARCH_MODEL": settings.model,
        "SEMSEARCH_EMBEDDING_RUNTIME": settings.embedding_runtime,
        "SEMSEARCH_THREADS": str(settings.threads),
        "SEMSEARCH_QUERY_CACHE_SIZE": "0",  # each mode sees the same queries: measure the model
    }
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(base, server, 120)
        results: dict[str, Any] = {}
        with httpx.Client(base_url=base, timeout=30) as client:
            # Warm up as a server that has been answering for a while (model, the common words'
            # article scores and document frequencies, connections), on other queries than the
            # measured ones: the openings of the passages after theirs.
            for query in warm_up:
                client.get("/search", params={"q": query, "k": 10})
        for mode in MODES:
            for clients in (1, 8):
                results[f"{mode}_{clients}"] = http_load(base, queries, mode, clients)
                say(f"{mode}, {clients} client(s): {results[f'{mode}_{clients}']}")
        results["server_rss_mb"] = round(rss_mb(server.pid), 1)
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def _query_vectors(index_dir: Path, settings: Settings, queries: list[str]) -> np.ndarray:
    """The benchmark's queries embedded as the server embeds them."""
    embedder = embedder_for(settings.model_copy(update={"index_dir": index_dir}))
    return np.stack([embedder.embed_query(query) for query in queries]).astype(np.float32)


def run_bench(
    corpus: Path, settings: Settings, vector_sizes: list[int], query_count: int, say: Say
) -> dict[str, Any]:
    """Run every benchmark and return the figures; `say` reports progress.

    The model, backend and threads come from `settings`; the index and caches are made afresh in
    a temporary folder.
    """
    if not any(read_corpus(corpus, lambda _: None)):
        raise ValueError(f"no readable article under {corpus}")
    with tempfile.TemporaryDirectory(prefix="semsearch-bench-") as scratch:
        work = Path(scratch)
        build = _bench_build(corpus, work, settings, say)
        queries = passage_queries(work / "index", query_count)
        warm_up = passage_queries(work / "index", query_count, offset=1)
        server = _bench_server(work / "index", settings, queries, say, warm_up)
        stores = bench_stores(work / "corpus", work, settings, queries, say)
        built = make_store("faiss", work / "index").open()
        base = built.vectors(np.arange(built.count()))
        built.close()
        real = _query_vectors(work / "index", settings, queries)
    vectors = bench_vector_indexes(base, vector_sizes, say, real)
    return {
        "machine": machine(),
        "build": build,
        "queries": {"count": len(queries), **server},
        "stores": stores,
        "vectors": vectors,
    }


def format_bench(figures: dict[str, Any]) -> list[str]:
    """The figures as the lines of a readable report."""
    build, queries, machine = figures["build"], figures["queries"], figures["machine"]
    skipped = build["rebuild_unchanged_up_to_date"]
    unchanged = "up to date, nothing written" if skipped else "rebuilt"
    lines = [
        f"machine: {machine['cores']} cores ({machine.get('cpu') or 'unknown CPU'}), "
        f"{machine.get('memory') or '? GiB'}, Python {machine['python']}",
        f"embedding backend: {build['backend']} (model ready in {build['model_ready_seconds']} s)",
        f"cold build: {build['articles']} articles, {build['passages']} passages and "
        f"{build.get('sentences', 0)} sentence vectors, {build['cold_seconds']} s, "
        f"{build['cold_passages_per_s']} passages/s "
        f"({build.get('cold_texts_per_s', '?')} texts/s), peak RSS {build['peak_rss_mb']} MB",
        f"naive encode (torch, batch 32, {build.get('naive_passages', '?')} of the passages and "
        f"their sentences, {build.get('naive_texts_per_s', '?')} texts/s): the cold build's "
        f"texts in {build.get('naive_cold_seconds', '?')} s; "
        f"ours/naive {build['ratio_ours_naive']}x; least cosine ours vs naive "
        f"{build['min_cosine_to_naive']}",
        f"rebuild, no change: {build['rebuild_unchanged_seconds']} s ({unchanged}); "
        f"forced: {build['rebuild_forced_seconds']} s, "
        f"{build['rebuild_forced_embedded']} embedded",
        f"rebuild, {build['rebuild_1pct_articles']} articles edited: "
        f"{build['rebuild_1pct_seconds']} s, {build['rebuild_1pct_embedded']} embedded",
        f"queries over HTTP ({queries['count']} distinct), "
        f"server RSS {queries['server_rss_mb']} MB",
        f"{'mode':<8}{'clients':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'q/s':>8}",
    ]
    for key, row in queries.items():
        if isinstance(row, dict):
            mode, clients = key.rsplit("_", 1)
            lines.append(
                f"{mode:<8}{clients:>8}{row['p50_ms']:>9}{row['p95_ms']:>9}"
                f"{row['p99_ms']:>9}{row['qps']:>8}"
            )
    if figures.get("stores"):
        lines.extend(format_stores(figures["stores"]))
    lines.append(
        f"vector search alone ({TIMED_QUERIES} timed single queries; recall@10 against exact "
        "search of 200 synthetic queries, and of the query texts embedded):"
    )
    lines.append(
        f"{'passages':>10} {'data':<10}{'index':<7}{'build s':>9}{'ms/query':>10}"
        f"{'recall':>8}{'real q':>8}{'MB':>8}"
    )
    for row in figures["vectors"]:
        real = row.get("recall@10_real_queries")
        lines.append(
            f"{row['passages']:>10} {row['data']:<10}{row['index']:<7}{row['build_seconds']:>9}"
            f"{row['ms_per_query']:>10}{row['recall@10']:>8}{'-' if real is None else real:>8}"
            f"{row['index_mb']:>8}"
        )
    return lines
