"""Writing FAISS generations: records and words into SQLite, vectors into FAISS, then publish.

`FaissWriter` collects a generation in memory and writes it on commit; `write_generation`
writes one folder's files and its manifest; `reindex_vectors` publishes the live generation
again with another vector index, re-embedding nothing.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from semsearch.index.articles import Article
from semsearch.index.chunking import Chunk
from semsearch.index.embedding_cache import text_hash
from semsearch.index.faiss_generation import FaissGeneration
from semsearch.index.faiss_layout import (
    FILES,
    MANIFEST,
    OPTIONAL_FILES,
    RECORDS_SCHEMA,
    SENTENCE_OFFSETS_NPY,
    SENTENCE_RANGES_NPY,
    SENTENCES_NPY,
    STORE,
    VECTORS,
    VECTORS_NPY,
    VECTORS_NPY_DTYPE,
)
from semsearch.index.generations import (
    fsync_dir,
    fsync_file,
    new_generation_dir,
    publish_generation,
    remove_old_generations,
    sha256_of,
    write_json,
)
from semsearch.index.lexical import LEXICAL_SCHEMA, write_lexical
from semsearch.index.manifest import FORMAT_VERSION
from semsearch.index.records import SentenceVectors, check_rows, compact, join_tags
from semsearch.index.sentence_codes import write_codes
from semsearch.index.stores import VectorIndexSpec
from semsearch.index.vectors import build_vector_index

__all__ = ["FaissWriter", "reindex_vectors", "write_generation"]


class FaissWriter:
    """Collects a generation in memory and writes it as SQLite + FAISS files on commit."""

    def __init__(self, index_dir: Path, vector_index: VectorIndexSpec | None = None):
        self.index_dir = index_dir
        self.vector_index = vector_index
        self._articles: dict[str, Article] = {}
        self._chunks: list[Chunk] = []
        self._vectors: list[np.ndarray] = []
        self._groups: list[np.ndarray] = []
        # Each add's sentence vectors; one add without them leaves the generation without.
        self._sentences: list[SentenceVectors | None] = []

    def add(
        self,
        articles: Sequence[Article],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        groups: np.ndarray,
        sentences: SentenceVectors | None = None,
    ) -> None:
        check_rows(chunks, vectors, groups)
        if sentences is not None and len(sentences.offsets) != len(chunks) + 1:
            raise ValueError(f"{len(chunks)} chunks, {len(sentences.offsets) - 1} sentence lists")
        first_id = len(self._chunks)
        self._articles.update((article.id, article) for article in articles)
        self._chunks.extend(chunks)
        self._vectors.append(np.asarray(vectors, dtype=np.float32))
        self._groups.append(np.asarray(groups, dtype=np.int64) + first_id)
        self._sentences.append(sentences)

    def delete_article(self, article_id: str) -> int:
        if self._articles.pop(article_id, None) is None:
            return 0
        chunks, vectors, groups = self._collected()
        sentences = self._collected_sentences()
        keep = np.array([chunk.article_id != article_id for chunk in chunks], dtype=bool)
        chunks, vectors, groups = compact(chunks, vectors, groups, keep)
        self._chunks, self._vectors, self._groups = chunks, [vectors], [groups]
        self._sentences = [None if sentences is None else sentences.select(keep)]
        return int(np.count_nonzero(~keep))

    def _collected_sentences(self) -> SentenceVectors | None:
        if not self._sentences or any(part is None for part in self._sentences):
            return None
        return SentenceVectors.joined([part for part in self._sentences if part is not None])

    def _collected(self) -> tuple[list[Chunk], np.ndarray, np.ndarray]:
        dimension = self._vectors[0].shape[1] if self._vectors else 0
        if len(self._vectors) == 1:  # (a build's one add: its array, not a copy)
            vectors = self._vectors[0]
        elif self._vectors:
            vectors = np.concatenate(self._vectors)
        else:
            vectors = np.zeros((0, dimension), "float32")
        groups = np.concatenate(self._groups) if self._groups else np.zeros(0, dtype=np.int64)
        return self._chunks, vectors, groups

    def commit(self, manifest: dict[str, Any]) -> str:
        chunks, vectors, groups = self._collected()
        name, folder = new_generation_dir(self.index_dir)
        try:
            write_generation(
                folder,
                list(self._articles.values()),
                chunks,
                vectors,
                {**manifest, "generation": name, "store": "faiss"},
                groups,
                self.vector_index,
                self._collected_sentences(),
            )
            publish_generation(self.index_dir, name, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return name

    def abort(self) -> None:
        self._articles.clear()
        self._chunks, self._vectors, self._groups, self._sentences = [], [], [], []


def write_generation(
    folder: Path,
    articles: Sequence[Article],
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    manifest: dict[str, Any],
    groups: Sequence[int] | np.ndarray | None = None,
    spec: VectorIndexSpec | None = None,
    sentences: SentenceVectors | None = None,
) -> dict[str, Any]:
    """Write one generation's files into `folder` and fsync them.

    Chunk ids are positions in `chunks`; row i of `vectors` belongs to chunk i, and `groups[i]`
    is the near-duplicate group of chunk i (see `index.dedup`; every chunk alone when omitted).
    `spec` picks the FAISS index type (exact up to a size, HNSW beyond). `sentences`, when
    given, are the vectors of each chunk's sentences.

    Returns:
        The manifest as written, with counts and file checksums added.
    """
    if len(chunks) != len(vectors):
        raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
    if sentences is not None and len(sentences.offsets) != len(chunks) + 1:
        raise ValueError(f"{len(chunks)} chunks but {len(sentences.offsets) - 1} sentence lists")
    titles = {article.id: article.title for article in articles}
    if groups is None:
        groups = range(len(chunks))
    store_path = folder / STORE
    connection = sqlite3.connect(store_path)
    try:
        connection.executescript(RECORDS_SCHEMA + LEXICAL_SCHEMA)
        connection.executemany(
            "INSERT INTO articles (id, title, encoding, section, published, author, url, tags) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(a.id, a.title, a.encoding, a.section, a.published or None, a.author, a.url,
              join_tags(a.tags)) for a in articles],
        )  # fmt: skip
        rows = (
            (i, c.article_id, c.paragraph, c.part, c.heading, c.text, c.start, c.end,
             text_hash(c.embed_text), int(g))
            for i, (c, g) in enumerate(zip(chunks, groups, strict=True))
        )  # fmt: skip
        connection.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        write_lexical(connection, chunks, titles)
        connection.commit()
    finally:
        connection.close()
    np.save(folder / VECTORS_NPY, np.ascontiguousarray(vectors, dtype=VECTORS_NPY_DTYPE))
    if sentences is not None:
        write_codes(sentences.vectors, folder / SENTENCES_NPY, folder / SENTENCE_RANGES_NPY)
        np.save(folder / SENTENCE_OFFSETS_NPY, sentences.offsets.astype(np.int64))
    layout = (spec or VectorIndexSpec()).resolve(len(chunks))
    return _finish_generation(
        folder,
        manifest,
        vectors,
        layout,
        counts={
            "articles": len(articles),
            "passages": len(chunks),
            "duplicate_passages": sum(1 for i, g in enumerate(groups) if int(g) != i),
            "sentences": 0 if sentences is None else len(sentences.vectors),
        },
    )


def _finish_generation(
    folder: Path,
    manifest: dict[str, Any],
    vectors: np.ndarray,
    layout: dict[str, Any],
    counts: dict[str, int],
) -> dict[str, Any]:
    """Write the FAISS index, fsync every file, and write the manifest with their checksums."""
    faiss.write_index(build_vector_index(vectors, layout), str(folder / VECTORS))
    files = {}
    for name in FILES:
        if name in OPTIONAL_FILES and not (folder / name).is_file():
            continue  # written without sentence vectors (or, older, without codes)
        fsync_file(folder / name)
        files[name] = {"sha256": sha256_of(folder / name), "bytes": (folder / name).stat().st_size}
    written = {
        **manifest,
        # A new build's is this one; a vector reindex keeps its source's (its files are those).
        "format_version": manifest.get("format_version", FORMAT_VERSION),
        "faiss": {**layout, "metric": "inner_product"},
        "counts": counts,
        "files": files,
    }
    write_json(folder / MANIFEST, written)
    fsync_dir(folder)
    return written


def reindex_vectors(index_dir: Path, spec: VectorIndexSpec, created_at: str) -> dict[str, Any]:
    """Publish a new generation with the live one's passages and vectors in a new FAISS index.

    Nothing is re-embedded: the vectors come from the live generation's vectors.npy. Old
    generations are pruned as after a build.

    Returns:
        The new generation's manifest.
    """
    live = FaissGeneration.open(index_dir)
    try:
        vectors = np.load(live.folder / VECTORS_NPY, allow_pickle=False)
        name, folder = new_generation_dir(index_dir)
        try:
            shutil.copy2(live.folder / STORE, folder / STORE)
            if live.capabilities.sentence_vectors:
                for file_name in OPTIONAL_FILES:
                    if (live.folder / file_name).is_file():
                        shutil.copy2(live.folder / file_name, folder / file_name)
            np.save(folder / VECTORS_NPY, vectors)
            manifest = {
                **live.manifest,
                "generation": name,
                "created_at": created_at,
                "vectors_from": live.generation,
            }
            written = _finish_generation(
                folder,
                manifest,
                vectors.astype(np.float32, copy=False),
                spec.resolve(len(vectors)),
                live.manifest["counts"],
            )
            publish_generation(index_dir, name, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    finally:
        live.close()
    remove_old_generations(index_dir)
    return written
