"""The child processes of `semsearch bench --scale`: the build, and the server, with synthetic
vectors.

Run as `python -m semsearch.search.bench_scale_child build|serve ...` by `search.bench_scale`,
each in a process of its own so that its memory is its own: the build's peak RSS, the server's
RSS after the queries.

- `build CORPUS INDEX TOPICS RESULT [--profile FILE]`: the normal builder path
  (`index.builder.build_index`: FTS5, article BM25, sentence vectors, near-duplicates, the FAISS
  index `auto` picks at that size) with a `SyntheticEmbedder` given TOPICS (a JSON object of
  piece -> topic); writes the report, the seconds and the peak RSS to RESULT (JSON).
- `serve INDEX TOPICS PORT`: `semsearch serve` on 127.0.0.1:PORT over INDEX, its queries embedded
  by a `SyntheticEmbedder`; no request log, no query cache.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import time
from pathlib import Path

from semsearch.search.synthetic_embedder import SyntheticEmbedder

__all__ = ["main"]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _embedder(topics: Path) -> SyntheticEmbedder:
    return SyntheticEmbedder(json.loads(topics.read_text(encoding="utf-8")))


def build(corpus: Path, index_dir: Path, topics: Path, result: Path, profile: Path | None) -> None:
    """Build INDEX from CORPUS as `semsearch index` would, with synthetic vectors."""
    from semsearch.index.builder import build_index
    from semsearch.search.settings import Settings, vector_index_spec

    embedder = _embedder(topics)
    before_mb = _rss_mb()  # the interpreter, numpy, faiss and the embedder's topic table
    spec = vector_index_spec(Settings())
    profiler = cProfile.Profile() if profile is not None else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    report = build_index(corpus, index_dir, embedder, vector_index=spec)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    seconds = time.perf_counter() - started
    figures = {
        "articles": report.articles,
        "passages": report.passages,
        "sentences": report.sentences,
        "duplicates": report.duplicates,
        "generation": report.generation,
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before_mb, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    result.write_text(json.dumps(figures), encoding="utf-8")


def serve(index_dir: Path, topics: Path, port: int) -> None:
    """Serve INDEX on 127.0.0.1:PORT with synthetic query vectors, until terminated."""
    from semsearch.search import serving
    from semsearch.search.http_server import serve as serve_http
    from semsearch.search.settings import Settings

    embedder = _embedder(topics)
    # The app factory is named by its import string (this layer imports nothing of the API) and
    # makes its `ServiceHolder` without an embedder: the holder then asks `embedder_for` for the
    # configured model. This process serves synthetic vectors, so it answers that instead.

    def synthetic(settings: Settings) -> SyntheticEmbedder:
        return embedder

    serving.embedder_for = synthetic
    os.environ["SEMSEARCH_QUERY_CACHE_SIZE"] = "0"  # each mode sees the same queries
    settings = Settings(index_dir=index_dir, host="127.0.0.1", port=port)
    serve_http(settings, request_log=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m semsearch.search.bench_scale_child")
    commands = parser.add_subparsers(dest="command", required=True)
    build_args = commands.add_parser("build")
    for name in ("corpus", "index", "topics", "result"):
        build_args.add_argument(name, type=Path)
    build_args.add_argument("--profile", type=Path, default=None)
    serve_args = commands.add_parser("serve")
    serve_args.add_argument("index", type=Path)
    serve_args.add_argument("topics", type=Path)
    serve_args.add_argument("port", type=int)
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.corpus, args.index, args.topics, args.result, args.profile)
    else:
        serve(args.index, args.topics, args.port)


if __name__ == "__main__":
    main()
