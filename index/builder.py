"""Build an index: read, chunk, embed (reusing cached vectors), write a generation, publish it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.index.articles import FORMATS, Article, CorpusTally, read_corpus
from semsearch.index.build_inputs import (
    Progress,
    article_digest,
    chunk_with_cache,
    embed_with_cache,
    inputs_fingerprint,
    semsearch_version,
)
from semsearch.index.dedup import near_duplicate_groups
from semsearch.index.embedding import Embedder
from semsearch.index.errors import CorpusError, SemsearchError
from semsearch.index.store_choice import make_store
from semsearch.index.stores import Store, VectorIndexSpec

__all__ = [
    "BuildReport",
    "Progress",
    "build_from_articles",
    "build_index",
    "inputs_fingerprint",
    "now_iso",
]


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
    sentences: int = 0  # sentence vectors written beside the passages
    texts_embedded: int = 0  # passages and sentences the model embedded (cache misses)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Articles and files read, by format (txt, md, html, jsonl); files not read, by extension
    # (".pdf"), and each with why ("report.pdf (not an article format)").
    formats: dict[str, int] = field(default_factory=dict)
    format_files: dict[str, int] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    ignored_files: list[str] = field(default_factory=list)
    removed_generations: list[str] = field(default_factory=list)
    up_to_date: bool = False


def now_iso() -> str:
    """The current UTC time as recorded in manifests."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_index(
    seeds_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    *,
    warn: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    vector_index: VectorIndexSpec | None = None,
    skip_unchanged: bool = False,
    store: Store | None = None,
    sentence_vectors: bool = True,
    follow_symlinks: bool = False,
    formats: Sequence[str] = FORMATS,
) -> BuildReport:
    """Index every article under `seeds_dir` into a new generation of `index_dir`.

    The live generation is untouched until the new one is complete and fsynced; then CURRENT is
    switched atomically and generations older than the previous one are removed.

    Args:
        seeds_dir: the folder of articles (.txt, .md, .html, .jsonl).
        index_dir: the index folder.
        embedder: turns embed texts into normalised vectors.
        warn: called with one line per skipped or oddly encoded file.
        progress: called with (texts embedded so far, texts to embed): passages and sentences.
        vector_index: which FAISS index to build (exact up to a size, IVF beyond by default).
        skip_unchanged: publish nothing when the live generation was built from the same
            articles with the same model, settings and semsearch version, and is intact
            (`BuildReport.up_to_date` then says so).
        store: where the generation is written (default: FAISS + SQLite in `index_dir`);
            `index_dir` keeps the embedding cache either way.
        sentence_vectors: also embed each passage's sentences, for stores that keep them.
        follow_symlinks: also index what symlinks point to outside `seeds_dir` (skipped, with
            a warning, otherwise).
        formats: the article formats read (see `index.readers`); other files are counted in
            `BuildReport.ignored`.

    Raises:
        CorpusError: the folder is missing or holds no readable article.
    """
    started = time.perf_counter()
    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        if warn is not None:
            warn(message)

    tally = CorpusTally()
    articles = list(
        read_corpus(seeds_dir, note, follow_symlinks=follow_symlinks, formats=formats, tally=tally)
    )
    if not articles:
        raise CorpusError(_no_articles(seeds_dir, formats, tally))
    report = build_from_articles(
        articles,
        index_dir,
        embedder,
        source=str(seeds_dir.resolve()),
        progress=progress,
        vector_index=vector_index,
        skip_unchanged=skip_unchanged,
        store=store,
        sentence_vectors=sentence_vectors,
    )
    report.warnings = warnings
    report.skipped = [w for w in warnings if ": skipped," in w]
    report.formats = {name: tally.articles[name] for name in FORMATS if tally.articles[name]}
    report.format_files = {name: tally.files[name] for name in FORMATS if tally.files[name]}
    report.ignored = dict(sorted(tally.ignored.items(), key=lambda item: (-item[1], item[0])))
    report.ignored_files = tally.ignored_files
    report.seconds = time.perf_counter() - started
    return report


def _no_articles(seeds_dir: Path, formats: Sequence[str], tally: CorpusTally) -> str:
    """Why a build found nothing to index, and what to do: one line, such as
    `no readable .txt article under seeds (nor .md, .html, .jsonl; ignored: 2 .pdf): ...`."""
    first, *others = formats
    notes = [f"nor {', '.join('.' + name for name in others)}"] if others else []
    if tally.ignored:
        counts = sorted(tally.ignored.items(), key=lambda item: (-item[1], item[0]))
        notes.append("ignored: " + ", ".join(f"{count} {ext}" for ext, count in counts))
    detail = f" ({'; '.join(notes)})" if notes else ""
    if tuple(formats) == FORMATS:
        todo = "add articles or pass --seeds DIR"
    else:
        todo = "add articles, pass --seeds DIR or change --formats"
    return f"no readable .{first} article under {seeds_dir}{detail}: {todo}"


def build_from_articles(
    articles: Sequence[Article],
    index_dir: Path,
    embedder: Embedder,
    *,
    source: str,
    progress: Progress | None = None,
    extra_manifest: dict[str, Any] | None = None,
    vector_index: VectorIndexSpec | None = None,
    skip_unchanged: bool = False,
    store: Store | None = None,
    sentence_vectors: bool = True,
) -> BuildReport:
    """Chunk, embed and publish already-read articles as a new generation of `index_dir`.

    Args:
        articles: the articles, with unique ids.
        index_dir: the index folder.
        embedder: turns embed texts into normalised vectors.
        source: where the articles came from, recorded in the manifest.
        progress: called with (texts embedded so far, texts to embed): passages and sentences.
        extra_manifest: more facts to record in the manifest (such as a corpus fingerprint).
        vector_index: which FAISS index to build.
        skip_unchanged: return the live generation when it was built from the same inputs.
        store: where the generation is written (default: FAISS + SQLite in `index_dir`).
        sentence_vectors: also embed each passage's sentences, when the store keeps them
            (search raises a passage's cosine toward its best sentence's).
    """
    started = time.perf_counter()
    store = store or make_store("faiss", index_dir)
    with_sentences = sentence_vectors and store.keeps_sentences
    digests = [article_digest(article) for article in articles]
    # The articles' metadata is stored too: a change of date or section alone is a new input.
    metadata = [json.dumps([a.section, a.published, a.author, a.url, a.tags]) for a in articles]
    fingerprint = inputs_fingerprint(
        [*digests, *metadata], embedder, vector_index or VectorIndexSpec(), with_sentences
    )
    if skip_unchanged:
        report = _up_to_date(store, index_dir, fingerprint, len(articles))
        if report is not None:
            report.seconds = time.perf_counter() - started
            return report
    chunks, chunk_sentences = chunk_with_cache(articles, digests, embedder, index_dir)
    vectors, sentence_rows, embedded, texts_embedded = embed_with_cache(
        chunks, embedder, index_dir, progress, chunk_sentences if with_sentences else None
    )
    del chunk_sentences  # their vectors are all the rest needs (a million passages' take 0.8 GB)
    groups = near_duplicate_groups(vectors, [chunk.text for chunk in chunks])

    manifest = {
        **(extra_manifest or {}),
        "inputs_sha256": fingerprint,
        "model": {"id": embedder.model_id, "dimension": embedder.dimension, "normalized": True,
                  "max_tokens": embedder.max_tokens,
                  "backend": embedder.runtime},
        "source": source,
        "created_at": now_iso(),
        "semsearch_version": semsearch_version(),
    }  # fmt: skip
    writer = store.writer(vector_index)
    try:
        writer.add(articles, chunks, vectors, groups, sentence_rows)
        name = writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise
    removed = store.remove_old()
    return BuildReport(
        index_dir=index_dir,
        generation=name,
        articles=len(articles),
        passages=len(chunks),
        embedded=embedded,
        reused=len(chunks) - embedded,
        duplicates=int(np.count_nonzero(groups != np.arange(len(groups)))),
        sentences=0 if sentence_rows is None else len(sentence_rows.vectors),
        texts_embedded=texts_embedded,
        seconds=time.perf_counter() - started,
        removed_generations=removed,
    )


def _up_to_date(
    where: Store, index_dir: Path, fingerprint: str, articles: int
) -> BuildReport | None:
    """A report on the live generation if it was built from `fingerprint` and opens cleanly."""
    try:
        store = where.open()
    except (SemsearchError, OSError):
        return None  # nothing usable is live: build
    try:
        if store.manifest.get("inputs_sha256") != fingerprint:
            return None
        passages = int(store.manifest["counts"]["passages"])
        return BuildReport(
            index_dir=index_dir,
            generation=store.generation,
            articles=articles,
            passages=passages,
            embedded=0,
            reused=passages,
            seconds=0.0,
            duplicates=int(store.manifest["counts"].get("duplicate_passages", 0)),
            sentences=int(store.manifest["counts"].get("sentences", 0)),
            up_to_date=True,
        )
    finally:
        store.close()
