"""What a build is made from, and what it reuses from the builds before it.

The fingerprint of a build's inputs (articles, model, settings, code version) says whether the
live generation is up to date; cached chunkings and vectors (`index.embedding_cache`, beside the
index) spare a rebuild the chunking and embedding of what did not change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.index.articles import Article
from semsearch.index.chunking import Chunk, chunk_articles, sentences
from semsearch.index.embedding import Embedder, count_tokens_many
from semsearch.index.embedding_cache import EmbeddingCache, text_hash
from semsearch.index.manifest import FORMAT_VERSION
from semsearch.index.records import SENTENCE_DTYPE, SentenceVectors
from semsearch.index.stores import VectorIndexSpec

__all__ = [
    "EMBED_CALL_SIZE",
    "Progress",
    "article_digest",
    "chunk_with_cache",
    "embed_with_cache",
    "inputs_fingerprint",
    "semsearch_version",
]

# Texts handed to the embedder per call: large enough for sentence-transformers to sort by length
# and batch well, small enough for the progress bar to move.
EMBED_CALL_SIZE = 2048
# Cached vectors read per look-up while a build gathers them.
CACHE_READ = 50_000
# Articles chunked together, their paragraphs' token counts taken in one call.
CHUNK_GROUP = 256

Progress = Callable[[int, int], None]
# A cached chunking row: the Chunk's fields, then the chunk's sentences.
_CACHED_FIELDS = len(dataclasses.fields(Chunk)) + 1


def semsearch_version() -> str:
    try:
        return version("semsearch")
    except PackageNotFoundError:
        return "unknown"


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
        "semsearch_version": semsearch_version(),
        "model": embedder.model_id,
        "max_tokens": embedder.max_tokens,
        "sentences": "sentencex, at least 3 words",  # how the cached sentence lists were made
    }


def chunk_with_cache(
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


def embed_with_cache(
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
    Every vector is written straight into its array (`_Rows`: the passages', float32; the
    sentences', float16), each distinct text's once, then copied to the rows of its repeats: a
    million-passage build holds its vectors once, not also as an object a text.
    """
    flat = [sentence for found in chunk_sentences or () for sentence in found]
    passages = len(chunks)

    def text(row: int) -> str:
        return chunks[row].embed_text if row < passages else flat[row - passages]

    hashes = [text_hash(chunk.embed_text) for chunk in chunks] + [text_hash(s) for s in flat]
    first: dict[str, int] = {}  # each distinct text's first row
    for row, digest in enumerate(hashes):
        first.setdefault(digest, row)
    out = _Rows(passages, len(flat), embedder.dimension)
    missing = np.ones(len(hashes), dtype=bool)  # (rows of repeats are filled at the end)
    cache = EmbeddingCache.beside(index_dir)
    try:
        distinct = list(first)
        for offset in range(0, len(distinct), CACHE_READ):
            found = cache.get_many(
                embedder.model_id, distinct[offset : offset + CACHE_READ], embedder.dimension
            )
            if found:
                rows = np.array([first[digest] for digest in found], dtype=np.int64)
                out.put(rows, np.stack(list(found.values())))
                missing[rows] = False
        todo = [row for row in first.values() if missing[row]]
        # Longest first across all the calls, not only within each: every call then holds texts
        # of about one length (a cold BBC build: 186 s against 191, two paired runs).
        todo.sort(key=lambda row: len(text(row)), reverse=True)
        embedded = sum(1 for row in todo if row < passages)
        if progress is not None:
            progress(0, len(todo))
        # An embedder may ask for larger calls (Ray: each call starts a distributed job).
        call_size = int(getattr(embedder, "call_size", EMBED_CALL_SIZE))
        for offset in range(0, len(todo), call_size):
            batch = todo[offset : offset + call_size]
            fresh = np.asarray(embedder.embed_batch([text(row) for row in batch]), np.float32)
            out.put(np.array(batch, dtype=np.int64), fresh)
            cache.put_many(
                embedder.model_id, zip([hashes[row] for row in batch], fresh, strict=True)
            )
            if progress is not None:
                progress(offset + len(batch), len(todo))
    finally:
        cache.close()
    sources = np.fromiter((first[digest] for digest in hashes), dtype=np.int64, count=len(hashes))
    repeats = np.flatnonzero(sources != np.arange(len(hashes)))
    for offset in range(0, len(repeats), CACHE_READ):  # a block at a time: no copy of them all
        block = repeats[offset : offset + CACHE_READ]
        out.put(block, out.get(sources[block]))
    if chunk_sentences is None:
        return out.passages, None, embedded, len(todo)
    counts = [len(found) for found in chunk_sentences]
    return out.passages, SentenceVectors.of(counts, out.sentences), embedded, len(todo)


class _Rows:
    """A build's vectors by row: the passages' rows first (float32), then the sentences'
    (float16: `records.SentenceVectors`)."""

    def __init__(self, passages: int, sentences: int, dimension: int):
        self.passages = np.zeros((passages, dimension), dtype=np.float32)
        self.sentences = np.zeros((sentences, dimension), dtype=SENTENCE_DTYPE)

    def put(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Write vectors[i] into row rows[i]."""
        ours = rows < len(self.passages)
        self.passages[rows[ours]] = vectors[ours]
        self.sentences[rows[~ours] - len(self.passages)] = vectors[~ours]

    def get(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of these rows, as float32."""
        found = np.empty((len(rows), self.passages.shape[1]), dtype=np.float32)
        ours = rows < len(self.passages)
        found[ours] = self.passages[rows[ours]]
        found[~ours] = self.sentences[rows[~ours] - len(self.passages)]
        return found
