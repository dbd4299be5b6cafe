"""Build an index: read, chunk, embed (reusing cached vectors), write a generation, publish it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.index.articles import FORMATS, Article, CorpusTally, read_corpus
from semsearch.index.chunking import Chunk, chunk_articles, sentences
from semsearch.index.dedup import near_duplicate_groups
from semsearch.index.embedding import Embedder, count_tokens_many
from semsearch.index.embedding_cache import EmbeddingCache, text_hash
from semsearch.index.errors import CorpusError, SemsearchError
from semsearch.index.manifest import FORMAT_VERSION
from semsearch.index.records import SentenceVectors
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

# Texts handed to the embedder per call: large enough for sentence-transformers to sort by length
# and batch well, small enough for the progress bar to move.
EMBED_CALL_SIZE = 2048
# Articles chunked together, their paragraphs' token counts taken in one call.
CHUNK_GROUP = 256

Progress = Callable[[int, int], None]
# A cached chunking row: the Chunk's fields, then the chunk's sentences.
_CACHED_FIELDS = len(dataclasses.fields(Chunk)) + 1


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
    metadata = [json.dumps([a.section, a.published, a.author, a.url]) for a in articles]
    fingerprint = inputs_fingerprint(
        [*digests, *metadata], embedder, vector_index or VectorIndexSpec(), with_sentences
    )
    if skip_unchanged:
        report = _up_to_date(store, index_dir, fingerprint, len(articles))
        if report is not None:
            report.seconds = time.perf_counter() - started
            return report
    chunks, chunk_sentences = _chunk_with_cache(articles, digests, embedder, index_dir)
    vectors, sentence_rows, embedded, texts_embedded = _embed_with_cache(
        chunks, embedder, index_dir, progress, chunk_sentences if with_sentences else None
    )
    groups = near_duplicate_groups(vectors, [chunk.text for chunk in chunks])

    manifest = {
        **(extra_manifest or {}),
        "inputs_sha256": fingerprint,
        "model": {"id": embedder.model_id, "dimension": embedder.dimension, "normalized": True,
                  "max_tokens": embedder.max_tokens,
                  "backend": embedder.runtime},
        "source": source,
        "created_at": now_iso(),
        "semsearch_version": _semsearch_version(),
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


def article_digest(article: Article) -> str:
    """A digest of what chunking reads from an article: id, title, blocks, their spans and
    roles (a role only when a reader gave one: a plain-text article keeps its digest)."""
    blocks = [
        [block.start, block.end, block.text, *([block.role] if block.role else [])]
        for block in article.blocks
    ]
    text = json.dumps([article.id, article.title, blocks], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def inputs_fingerprint(
    article_digests: Sequence[str],
    embedder: Embedder,
    vector_index: VectorIndexSpec,
    sentence_vectors: bool = True,
) -> str:
    """A digest of everything a generation is made from: articles, model, settings, code version."""
    digest = hashlib.sha256()
    digest.update(json.dumps(_chunking_settings(embedder), sort_keys=True).encode())
    digest.update(json.dumps(dataclasses.asdict(vector_index), sort_keys=True).encode())
    digest.update(b"sentences" if sentence_vectors else b"passages")
    for article in article_digests:
        digest.update(article.encode())
    return digest.hexdigest()


def _chunking_settings(embedder: Embedder) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "semsearch_version": _semsearch_version(),
        "model": embedder.model_id,
        "max_tokens": embedder.max_tokens,
        "sentences": "sentencex, at least 3 words",  # how the cached sentence lists were made
    }


def _chunk_with_cache(
    articles: Sequence[Article], digests: Sequence[str], embedder: Embedder, index_dir: Path
) -> tuple[list[Chunk], list[list[str]]]:
    """Every article's chunks and each chunk's sentences, re-chunking only articles whose content
    or settings changed.

    Splitting long paragraphs at sentences (pysbd) and counting tokens cost about a millisecond
    a passage; a rebuild after a small edit should not pay that for the whole corpus.
    """
    settings = json.dumps(_chunking_settings(embedder), sort_keys=True)
    keys = [hashlib.sha256(f"{settings}\0{digest}".encode()).hexdigest() for digest in digests]
    cache = EmbeddingCache.beside(index_dir)
    try:
        known = cache.get_chunkings(keys)
        found: list[list[list[Any]] | None] = []
        for key in keys:
            stored = known.get(key)
            rows = json.loads(stored) if stored is not None else None
            if rows is not None and any(len(fields) != _CACHED_FIELDS for fields in rows):
                rows = None  # written by a version that kept other fields
            found.append(rows)
        missing = [i for i, rows in enumerate(found) if rows is None]
        fresh: list[tuple[str, str]] = []
        # In groups, so that the token counts (taken together for speed) stay few in memory.
        for offset in range(0, len(missing), CHUNK_GROUP):
            group = missing[offset : offset + CHUNK_GROUP]
            made = chunk_articles(
                [articles[i] for i in group],
                count_tokens=embedder.count_tokens,
                count_many=lambda texts: count_tokens_many(embedder, texts),
                token_limit=embedder.max_tokens,
            )
            for i, article_chunks in zip(group, made, strict=True):
                rows = [
                    [*dataclasses.astuple(chunk), sentences(chunk.text)] for chunk in article_chunks
                ]
                found[i] = rows
                fresh.append((keys[i], json.dumps(rows)))
        chunks: list[Chunk] = []
        chunk_sentences: list[list[str]] = []
        for rows in found:
            for fields in rows or ():  # (every article's rows are found or made by now)
                chunks.append(Chunk(*fields[:-1]))
                chunk_sentences.append(fields[-1])
        if fresh:
            cache.put_chunkings(fresh)
    finally:
        cache.close()
    return chunks, chunk_sentences


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


def _embed_with_cache(
    chunks: list[Chunk],
    embedder: Embedder,
    index_dir: Path,
    progress: Progress | None,
    chunk_sentences: Sequence[Sequence[str]] | None = None,
) -> tuple[np.ndarray, SentenceVectors | None, int, int]:
    """Vectors for every chunk and, when given each chunk's sentences, for those, embedding only
    texts the cache lacks: (passage vectors, sentence vectors, passages embedded, texts
    embedded).

    Passages and sentences go to the embedder in the same large calls: it sorts them by length.
    """
    passage_hashes = [text_hash(chunk.embed_text) for chunk in chunks]
    texts = {h: chunk.embed_text for h, chunk in zip(passage_hashes, chunks, strict=True)}
    counts: list[int] = []
    sentence_hashes: list[str] = []
    if chunk_sentences is not None:
        for found in chunk_sentences:
            counts.append(len(found))
            for sentence in found:
                digest = text_hash(sentence)
                sentence_hashes.append(digest)
                texts.setdefault(digest, sentence)
    dimension = embedder.dimension
    cache = EmbeddingCache.beside(index_dir)
    try:
        known = cache.get_many(embedder.model_id, list(texts), dimension)
        todo = [(h, text) for h, text in texts.items() if h not in known]
        # Longest first across all the calls, not only within each: every call then holds texts
        # of about one length (a cold BBC build: 186 s against 191, two paired runs).
        todo.sort(key=lambda item: len(item[1]), reverse=True)
        embedded = sum(1 for h in dict.fromkeys(passage_hashes) if h not in known)
        if progress is not None:
            progress(0, len(todo))
        # An embedder may ask for larger calls (Ray: each call starts a distributed job).
        call_size = int(getattr(embedder, "call_size", EMBED_CALL_SIZE))
        for offset in range(0, len(todo), call_size):
            batch = todo[offset : offset + call_size]
            batch_vectors = embedder.embed_batch([text for _, text in batch])
            fresh = list(zip([h for h, _ in batch], batch_vectors, strict=True))
            cache.put_many(embedder.model_id, fresh)
            known.update(fresh)
            if progress is not None:
                progress(offset + len(batch), len(todo))
    finally:
        cache.close()
    vectors = np.zeros((len(chunks), dimension), dtype=np.float32)
    for row, digest in enumerate(passage_hashes):
        vectors[row] = known[digest]
    if chunk_sentences is None:
        return vectors, None, embedded, len(todo)
    rows = np.zeros((len(sentence_hashes), dimension), dtype=np.float32)
    for row, digest in enumerate(sentence_hashes):
        rows[row] = known[digest]
    return vectors, SentenceVectors.of(counts, rows), embedded, len(todo)
