"""`semsearch bench --scale N`: build, disk, query and serving figures for an archive of N passages.

The archive is synthetic (`search.synthetic_corpus`: the real corpus's sentences recombined into
N / 10 articles) and so are its vectors (`search.synthetic_embedder`: no model runs, for the
build or the queries): what is measured is everything around the model at that size. The build
runs the normal builder path in a child process (its own peak RSS); queries are timed in this
process, then over HTTP against a `semsearch serve` child with 1 and 8 clients.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from semsearch.index.store_choice import make_store
from semsearch.search.bench import MODES
from semsearch.search.bench_tools import (
    free_port,
    http_load,
    machine,
    rss_mb,
    timed,
    wait_for_server,
)
from semsearch.search.settings import Settings
from semsearch.search.synthetic_corpus import make_queries, read_sources, write_corpus
from semsearch.search.synthetic_embedder import (
    CENTROIDS,
    DIMENSION,
    SPREAD,
    SyntheticEmbedder,
    pieces,
)

__all__ = ["format_scale_bench", "run_scale_bench"]

Say = Callable[[str], None]
CHILD = "semsearch.search.bench_scale_child"
SERVER_START_SECONDS = 300  # a large generation is checksummed when it is opened
PROFILE_LINES = 30


def _tree_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _build(corpus: Path, index_dir: Path, topics: Path, work: Path, profile: Path | None) -> dict:
    """The build in a child process: its report, seconds and peak RSS."""
    result = work / "build.json"
    command = [sys.executable, "-m", CHILD, "build", str(corpus), str(index_dir), str(topics)]
    command += [str(result)] + (["--profile", str(profile)] if profile is not None else [])
    started = time.perf_counter()
    subprocess.run(command, check=True)
    figures: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
    figures["wall_seconds"] = round(time.perf_counter() - started, 2)
    return figures


def _disk(index_dir: Path, generation: str) -> dict[str, Any]:
    """The generation's size, each of its files', and the embedding cache beside it."""
    store = make_store("faiss", index_dir)
    folder = Path(store.place(generation))
    files = {
        path.name: round(path.stat().st_size / 2**20, 1)
        for path in sorted(folder.iterdir())
        if path.is_file()
    }
    whole = _tree_bytes(index_dir)
    generation_bytes = _tree_bytes(folder)
    return {
        "generation_mb": round(generation_bytes / 2**20, 1),
        "files_mb": files,
        "outside_generation_mb": round((whole - generation_bytes) / 2**20, 1),
    }


def _in_process(
    index_dir: Path,
    embedder: SyntheticEmbedder,
    queries: dict[str, list[str]],
    say: Say,
    profile_dir: Path | None,
) -> dict[str, Any]:
    """Open the generation here, warm up, time each mode on its own queries, then hybrid again
    on its queries (their words now seen); profile when asked."""
    from semsearch.search.service import SearchService

    settings = Settings(index_dir=index_dir, query_cache_size=0)
    started = time.perf_counter()
    service = SearchService.open(settings, embedder)
    opened = time.perf_counter() - started
    service.search(queries["warm_up"][0], k=10)  # the first reads the sentence vectors
    first = time.perf_counter() - started - opened
    results: dict[str, Any] = {
        "open_seconds": round(opened, 2),
        "first_query_seconds": round(first, 2),
    }
    try:
        started = time.perf_counter()
        for query in queries["warm_up"]:
            service.search(query, k=10)
        results["warm_up_seconds"] = round(time.perf_counter() - started, 2)
        for mode, asked in [*((m, queries[m]) for m in MODES), ("hybrid_again", queries["hybrid"])]:

            def run(query: str, mode: str = mode.removesuffix("_again")) -> object:
                return service.search(query, k=10, mode=mode)

            results[mode] = timed(run, asked)
            say(f"in-process {mode}: {results[mode]}")
        # cProfile sees the calling thread only, and hybrid runs its lexical leg in another
        # (its time shows as a wait): lexical mode, which runs it here, is profiled first, on
        # new queries (their rare words looked up for the first time), then hybrid on them.
        for mode in ("lexical", "hybrid") if profile_dir is not None else ():
            assert profile_dir is not None
            profiler = cProfile.Profile()
            profiler.enable()
            for query in queries["profile"]:
                service.search(query, k=10, mode=mode)
            profiler.disable()
            _write_profile(profiler, profile_dir / mode)
    finally:
        service.close()
    return results


def _write_profile(profiler: cProfile.Profile, stem: Path) -> None:
    """The raw stats (`.prof`) and the top costs by own and by cumulative time (`.txt`)."""
    profiler.dump_stats(str(stem.with_suffix(".prof")))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
    stem.with_suffix(".txt").write_text(text.getvalue(), encoding="utf-8")


def _over_http(
    index_dir: Path, topics: Path, work: Path, queries: dict[str, list[str]], say: Say
) -> dict[str, Any]:
    """A `semsearch serve` child with synthetic query vectors: each mode with 1 and 8 clients."""
    import httpx

    port = free_port()
    log = work / "server.log"
    with log.open("wb") as errors:
        server = subprocess.Popen(
            [sys.executable, "-m", CHILD, "serve", str(index_dir), str(topics), str(port)],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        wait_for_server(base, server, SERVER_START_SECONDS, log)
        results: dict[str, Any] = {"start_seconds": round(time.monotonic() - started, 2)}
        with httpx.Client(base_url=base, timeout=60) as client:
            for query in queries["warm_up"]:  # as a server that has been answering a while
                client.get("/search", params={"q": query, "k": 10})
        for mode in MODES:
            for clients in (1, 8):
                asked = queries[f"http_{mode}_{clients}"]
                results[f"{mode}_{clients}"] = http_load(base, asked, mode, clients)
                say(f"HTTP {mode}, {clients} client(s): {results[f'{mode}_{clients}']}")
        results["server_rss_mb"] = round(rss_mb(server.pid), 1)
        results["server_anon_mb"] = round(rss_mb(server.pid, "RssAnon"), 1)
        return results
    finally:
        server.terminate()
        server.wait(timeout=60)


def run_scale_bench(
    corpus: Path,
    passages: int,
    query_count: int,
    say: Say,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """Build a synthetic archive of `passages` passages from `corpus`'s sentences, index it with
    synthetic vectors, time its queries in-process and over HTTP; return the figures.

    Everything is made in a temporary folder. `profile_dir`, when given, receives cProfile
    stats of the build (`build.prof`) and of the in-process hybrid and lexical queries
    (`hybrid.prof`, `hybrid.txt`: the top costs; `lexical.prof`, `lexical.txt`).
    """
    sources, sizes = read_sources(corpus, CENTROIDS)
    # Every measurement asks queries of its own, none asked before (their rare words are new
    # to the index's kept word scores, as a live server's new queries are; common words are
    # kept from the warm-up).
    names = ["warm_up", *MODES, *(f"http_{m}_{c}" for m in MODES for c in (1, 8)), "profile"]
    queries = dict(zip(names, make_queries(sources, query_count, len(names)), strict=True))
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="semsearch-scale-") as scratch:
        work = Path(scratch)
        started = time.perf_counter()
        made = write_corpus(sources, sizes, work / "corpus", passages)
        written = time.perf_counter() - started
        say(f"corpus: {made.articles} articles, {made.paragraphs} paragraphs in {written:.1f} s")
        topics = work / "topics.json"
        topics.write_text(json.dumps(made.topics), encoding="utf-8")
        # The server and the queries need the topics of the queries' pieces only.
        asked = {
            piece: made.topics[piece]
            for group in queries.values()
            for query in group
            for piece in pieces(query)
            if piece in made.topics
        }
        query_topics = work / "query-topics.json"
        query_topics.write_text(json.dumps(asked), encoding="utf-8")
        index_dir = work / "index"
        profile = profile_dir / "build.prof" if profile_dir is not None else None
        build = _build(made.folder, index_dir, topics, work, profile)
        store = make_store("faiss", index_dir).open()
        build["vector_index"] = store.manifest.get("faiss", {}).get("type", "?")
        store.close()
        say(f"build: {build}")
        disk = _disk(index_dir, str(build["generation"]))
        say(f"disk: {disk}")
        embedder = SyntheticEmbedder(asked)
        in_process = _in_process(index_dir, embedder, queries, say, profile_dir)
        http = _over_http(index_dir, query_topics, work, queries, say)
    return {
        "machine": machine(),
        "vectors": f"synthetic: {DIMENSION}-d, {CENTROIDS} topic centroids, spread {SPREAD}",
        "corpus": {
            "source": str(corpus),
            "source_articles": len(sources),
            "articles": made.articles,
            "paragraphs": made.paragraphs,
            "sentences_drawn": made.sentences,
            "seconds": round(written, 1),
        },
        "queries": len(queries["hybrid"]),
        "build": build,
        "disk": disk,
        "in_process": in_process,
        "http": http,
    }


def format_scale_bench(figures: dict[str, Any]) -> list[str]:
    """The figures as the lines of a readable report."""
    machine, corpus, build = figures["machine"], figures["corpus"], figures["build"]
    disk, local, http = figures["disk"], figures["in_process"], figures["http"]
    files = ", ".join(f"{name} {mb}" for name, mb in disk["files_mb"].items())
    lines = [
        f"machine: {machine['cores']} cores ({machine.get('cpu') or 'unknown CPU'}), "
        f"{machine.get('memory') or '? GiB'}, Python {machine['python']}",
        f"vectors: {figures['vectors']} (no model: build and queries embed synthetically)",
        f"corpus: {corpus['articles']} synthetic articles, {corpus['paragraphs']} paragraphs "
        f"from the sentences of {corpus['source_articles']} articles of {corpus['source']} "
        f"(written in {corpus['seconds']} s)",
        f"build: {build['passages']} passages, {build['sentences']} sentence vectors, "
        f"{build['duplicates']} near-duplicates, vector index {build['vector_index']}: "
        f"{build['seconds']} s ({build['wall_seconds']} s with the process), "
        f"peak RSS {build['peak_rss_mb']} MB (before building {build['rss_before_mb']} MB)",
        f"disk: generation {disk['generation_mb']} MB ({files}); embedding cache and the rest "
        f"{disk['outside_generation_mb']} MB",
        f"in-process: open {local['open_seconds']} s, first query {local['first_query_seconds']}"
        f" s, {figures['queries']} warm-up queries {local.get('warm_up_seconds', '?')} s",
        f"server: ready in {http['start_seconds']} s, RSS after the queries "
        f"{http['server_rss_mb']} MB, of which its own (not mapped files) "
        f"{http.get('server_anon_mb', '?')} MB",
        f"{figures['queries']} new queries each {'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'q/s':>8}",
    ]
    for mode in MODES:
        rows = [("in-process", local[mode])]
        if mode == "hybrid" and "hybrid_again" in local:
            rows.append(("again", local["hybrid_again"]))
        rows += [(f"HTTP x{clients}", http[f"{mode}_{clients}"]) for clients in (1, 8)]
        for where, row in rows:
            lines.append(
                f"{mode:<8}{where:<17}{row['p50_ms']:>9}{row['p95_ms']:>9}{row['p99_ms']:>9}"
                f"{row.get('qps', ''):>8}"
            )
    lines.append(
        "(each row on its own new queries; 'again': the hybrid in-process queries asked a second "
        "time, their words' scores kept)"
    )
    return lines
