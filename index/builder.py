"""Build an index: read, chunk, embed (reusing cached vectors), write a generation, publish it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from index.articles import Article, read_corpus
from index.chunking import Chunk, chunk_article
from index.dedup import near_duplicate_groups
from index.embedding import Embedder
from index.errors import CorpusError
from index.store import (
    EmbeddingCache,
    VectorIndexSpec,
    new_generation_dir,
    publish_generation,
    remove_old_generations,
    text_hash,
    write_generation,
)

__all__ = ["BuildReport", "build_from_articles", "build_index", "now_iso"]

# Texts handed to the embedder per call: large enough for sentence-transformers to sort by length
# and batch well, small enough for the progress bar to move.
EMBED_CALL_SIZE = 512

Progress = Callable[[int, int], None]


@dataclass
class BuildReport:
    """What a build did, for the summary line and tests."""

    index_dir: Path
    generation: str
    articles: int
    passages: int
    embedded: int
    reused: int
    seconds: float
    duplicates: int = 0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    removed_generations: list[str] = field(default_factory=list)


def now_iso() -> str:
    """The current UTC time as recorded in manifests."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _semsearch_version() -> str:
    try:
        return version("semsearch")
    except PackageNotFoundError:
        return "unknown"


def build_index(
    seeds_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    *,
    warn: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    vector_index: VectorIndexSpec | None = None,
) -> BuildReport:
    """Index every article under `seeds_dir` into a new generation of `index_dir`.

    The live generation is untouched until the new one is complete and fsynced; then CURRENT is
    switched atomically and generations older than the previous one are removed.

    Args:
        seeds_dir: the folder of `.txt` articles.
        index_dir: the index folder.
        embedder: turns embed texts into normalised vectors.
        warn: called with one line per skipped or oddly encoded file.
        progress: called with (passages embedded so far, passages to embed).
        vector_index: which FAISS index to build (exact up to a size, HNSW beyond by default).

    Raises:
        CorpusError: the folder is missing or holds no readable article.
    """
    started = time.perf_counter()
    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        if warn is not None:
            warn(message)

    articles: list[Article] = list(read_corpus(seeds_dir, note))
    if not articles:
        raise CorpusError(
            f"no readable .txt article under {seeds_dir}: add articles (title on the first line, "
            "paragraphs separated by blank lines) or pass --seeds DIR"
        )
    report = build_from_articles(
        articles,
        index_dir,
        embedder,
        source=str(seeds_dir.resolve()),
        progress=progress,
        vector_index=vector_index,
    )
    report.warnings = warnings
    report.skipped = [w for w in warnings if ": skipped," in w]
    report.seconds = time.perf_counter() - started
    return report


def build_from_articles(
    articles: Sequence[Article],
    index_dir: Path,
    embedder: Embedder,
    *,
    source: str,
    progress: Progress | None = None,
    extra_manifest: dict[str, Any] | None = None,
    vector_index: VectorIndexSpec | None = None,
) -> BuildReport:
    """Chunk, embed and publish already-read articles as a new generation of `index_dir`.

    Args:
        articles: the articles, with unique ids.
        index_dir: the index folder.
        embedder: turns embed texts into normalised vectors.
        source: where the articles came from, recorded in the manifest.
        progress: called with (passages embedded so far, passages to embed).
        extra_manifest: more facts to record in the manifest (such as a corpus fingerprint).
        vector_index: which FAISS index to build.
    """
    started = time.perf_counter()
    chunks: list[Chunk] = []
    for article in articles:
        chunks.extend(
            chunk_article(
                article, count_tokens=embedder.count_tokens, token_limit=embedder.max_tokens
            )
        )
    vectors, embedded = _embed_with_cache(chunks, embedder, index_dir, progress)
    groups = near_duplicate_groups(vectors, [chunk.text for chunk in chunks])

    name, folder = new_generation_dir(index_dir)
    try:
        manifest = {
            **(extra_manifest or {}),
            "generation": name,
            "model": {"id": embedder.model_id, "dimension": embedder.dimension, "normalized": True,
                      "max_tokens": embedder.max_tokens},
            "source": source,
            "created_at": now_iso(),
            "semsearch_version": _semsearch_version(),
        }  # fmt: skip
        write_generation(folder, articles, chunks, vectors, manifest, groups, vector_index)
        publish_generation(index_dir, name, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    removed = remove_old_generations(index_dir, keep=2)
    return BuildReport(
        index_dir=index_dir,
        generation=name,
        articles=len(articles),
        passages=len(chunks),
        embedded=embedded,
        reused=len(chunks) - embedded,
        duplicates=int(np.count_nonzero(groups != np.arange(len(groups)))),
        seconds=time.perf_counter() - started,
        removed_generations=removed,
    )


def _embed_with_cache(
    chunks: list[Chunk], embedder: Embedder, index_dir: Path, progress: Progress | None
) -> tuple[np.ndarray, int]:
    """Vectors for every chunk, embedding only texts the cache lacks: (vectors, count embedded)."""
    hashes = [text_hash(chunk.embed_text) for chunk in chunks]
    dimension = embedder.dimension
    cache = EmbeddingCache.beside(index_dir)
    try:
        known = cache.get_many(embedder.model_id, hashes, dimension)
        missing = {h: c.embed_text for h, c in zip(hashes, chunks, strict=True) if h not in known}
        todo = list(missing.items())
        if progress is not None:
            progress(0, len(todo))
        for offset in range(0, len(todo), EMBED_CALL_SIZE):
            batch = todo[offset : offset + EMBED_CALL_SIZE]
            batch_vectors = embedder.embed_batch([text for _, text in batch])
            fresh = list(zip([h for h, _ in batch], batch_vectors, strict=True))
            cache.put_many(embedder.model_id, fresh)
            known.update(fresh)
            if progress is not None:
                progress(offset + len(batch), len(todo))
    finally:
        cache.close()
    vectors = np.zeros((len(chunks), dimension), dtype=np.float32)
    for row, digest in enumerate(hashes):
        vectors[row] = known[digest]
    return vectors, len(todo)
