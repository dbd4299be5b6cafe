"""The on-disk index: generations of SQLite + FAISS + manifest, and the embedding cache.

This is the only module that imports faiss and sqlite3. Layout:

    <index dir>/CURRENT            name of the live generation (replaced atomically)
    <index dir>/gen-<n>/           manifest.json, store.sqlite, vectors.faiss, vectors.npy,
                                   sentences.npy + sentence_offsets.npy (format 4)
    <index dir>/embeddings.sqlite  cache: (model id, sha256 of embed text) -> float32 vector
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.articles import Article
from index.chunking import Chunk
from index.errors import IndexCorrupt, IndexIncompatible, IndexNotFound
from index.lock import GenerationLease, claim_for_removal

log = logging.getLogger(__name__)

__all__ = [
    "BM25_B",
    "BM25_K1",
    "FORMAT_VERSION",
    "ArticleRecord",
    "ChunkRecord",
    "EmbeddingCache",
    "IndexStore",
    "SentenceVectors",
    "VectorIndexSpec",
    "bm25_ceiling",
    "build_vector_index",
    "check_compatible",
    "close_neighbours",
    "generation_names",
    "live_generation",
    "new_generation_dir",
    "publish_generation",
    "reindex_vectors",
    "remove_old_generations",
    "text_hash",
    "vector_index_bytes",
    "write_generation",
]

# 3 added articles_fts, 4 the sentence vectors; 2 and 3 are still read (without those signals)
FORMAT_VERSION = 4
READABLE_VERSIONS = (2, 3, 4)
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
STORE = "store.sqlite"
VECTORS = "vectors.faiss"
VECTORS_NPY = "vectors.npy"  # the raw float32 vectors: a new FAISS index never needs re-embedding
SENTENCES_NPY = "sentences.npy"  # float32 vectors of each passage's sentences, passage by passage
SENTENCE_OFFSETS_NPY = "sentence_offsets.npy"  # passage i's rows: offsets[i] to offsets[i + 1]
CACHE = "embeddings.sqlite"
_GENERATION = re.compile(r"gen-(\d+)")
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class SentenceVectors:
    """The vectors of each passage's sentences: passage i owns rows offsets[i] to offsets[i + 1].

    float32, like the passages' vectors: float16 would halve the file, but numpy converts it back
    without SIMD (0.4 ms for the 1,100 rows of one query's candidates).
    """

    offsets: np.ndarray  # int64, one more than there are passages
    vectors: np.ndarray  # (rows, dimension)

    @classmethod
    def of(cls, counts: Sequence[int], vectors: np.ndarray) -> SentenceVectors:
        """From the number of sentences of each passage, in order, and their vectors."""
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(np.asarray(counts, dtype=np.int64), out=offsets[1:])
        if offsets[-1] != len(vectors):
            raise ValueError(f"{offsets[-1]} sentences counted but {len(vectors)} vectors")
        return cls(offsets, np.asarray(vectors, dtype=np.float32))

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def joined(cls, parts: Sequence[SentenceVectors]) -> SentenceVectors:
        """The passages of `parts`, one after another."""
        counts = np.concatenate([part.counts for part in parts])
        return cls.of(counts, np.concatenate([part.vectors for part in parts]))

    def select(self, keep: np.ndarray) -> SentenceVectors:
        """Only the passages where `keep` is true, renumbered in order."""
        counts = self.counts
        rows = np.repeat(np.asarray(keep, dtype=bool), counts)
        return SentenceVectors.of(counts[keep], self.vectors[rows])


_SCHEMA = """
CREATE TABLE articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    encoding TEXT NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    article_id TEXT NOT NULL REFERENCES articles(id),
    paragraph INTEGER NOT NULL,
    part INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    embed_hash TEXT NOT NULL,
    dup_group INTEGER NOT NULL  -- smallest chunk id among its near-duplicates (its own id if none)
);
CREATE INDEX chunks_by_article ON chunks(article_id, paragraph, part);
CREATE INDEX chunks_by_group ON chunks(dup_group);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    title, heading, text, content='', tokenize='porter unicode61 remove_diacritics 2'
);
-- Each article as a whole (title; headings and passages), rowid = articles.rowid.
CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, text, content='', tokenize='porter unicode61 remove_diacritics 2'
);
"""


@dataclass(frozen=True)
class VectorIndexSpec:
    """Which FAISS index to build: exact search up to `flat_max` passages, IVF beyond.

    `kind` forces one: "flat" (exact inner product), "hnsw" (a graph over full vectors: the
    fastest queries, the most memory) or "ivf" (inverted lists of 8-bit scalar-quantised
    vectors: a quarter of the memory of exact search, about as fast as HNSW); "auto" chooses by
    size. Exact search reads every vector for every query: about 3.5 ms at 50,000 384-d vectors
    on one core of this project's machine and 12 ms at 100,000, so `auto` stops at 50,000. IVF
    with 64 lists probed answers in 0.5 ms at 100,000 and 1.6 ms at 1,000,000 (recall@10 of
    embedded query texts 0.97 and 0.98; with 32 probes 0.93 and 0.95).
    """

    kind: str = "auto"
    flat_max: int = 50_000
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 128
    ivf_nprobe: int = 64

    def resolve(self, count: int) -> dict[str, Any]:
        """The index layout for `count` passages, as recorded in the manifest."""
        if self.kind not in VECTOR_INDEX_KINDS:
            raise ValueError(
                f"unknown FAISS index kind {self.kind!r}: use {', '.join(VECTOR_INDEX_KINDS)}"
            )
        if self.kind == "flat" or (self.kind == "auto" and count <= self.flat_max):
            return {"type": "flat"}
        if self.kind == "hnsw":
            return {
                "type": "hnsw",
                "m": self.hnsw_m,
                "ef_construction": self.ef_construction,
                "ef_search": self.ef_search,
            }
        return {
            "type": "ivf",
            "nlist": ivf_list_count(count),
            "nprobe": self.ivf_nprobe,
            "encoding": "sq8",
        }


VECTOR_INDEX_KINDS = ("auto", "flat", "hnsw", "ivf")
# k-means wants at least this many training vectors per list; more only costs time.
_IVF_TRAIN_PER_LIST = 64


def ivf_list_count(count: int) -> int:
    """Inverted lists for `count` vectors: about 4 sqrt(n), and at least 39 vectors per list."""
    return max(1, min(int(4 * math.sqrt(max(count, 1))), count // 39))


@dataclass(frozen=True)
class ChunkRecord:
    """A stored passage with its article title."""

    id: int
    article_id: str
    title: str
    paragraph: int
    part: int
    heading: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class ArticleRecord:
    """A stored article: its title and passages in reading order."""

    id: str
    title: str
    passages: tuple[ChunkRecord, ...]


# BM25's term-frequency saturation in SQLite FTS5 (fixed there), and in the Milvus store's index.
BM25_K1 = 1.2
BM25_B = 0.75


# Per-term BM25 scores kept per open generation (see _TermScores), least recently used dropped
# first. The BBC corpus's passages need 7 MB for every word they hold.
PASSAGE_TERMS_BYTES = 128 * 1024 * 1024
ARTICLE_TERMS_BYTES = 64 * 1024 * 1024


def bm25_ceiling(document_frequencies: Sequence[int], passages: int, idf: str = "fts5") -> float:
    """The most BM25 can give one passage for query terms with these document frequencies.

    Each term found in the corpus contributes idf * (k1 + 1). `idf` names the engine's formula:
    "fts5", ln((N - df + 0.5) / (df + 0.5)) clipped at 1e-6 (SQLite), or "lucene",
    ln(1 + (N - df + 0.5) / (df + 0.5)) (Milvus, Lucene), never below zero.
    """
    total = 0.0
    for df in document_frequencies:
        if df <= 0:
            continue
        ratio = (passages - df + 0.5) / (df + 0.5)
        total += math.log1p(ratio) if idf == "lucene" else max(math.log(ratio), 1e-6)
    return total * (BM25_K1 + 1)


def text_hash(text: str) -> str:
    """The cache key of an embed text: sha256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can fsync a folder
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _fsync_file(tmp)
    os.replace(tmp, path)


def _generations(index_dir: Path) -> list[tuple[int, Path]]:
    if not index_dir.is_dir():
        return []
    found = []
    for child in index_dir.iterdir():
        match = _GENERATION.fullmatch(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def generation_names(index_dir: Path) -> list[str]:
    """The published generation folders of `index_dir`, oldest first."""
    return [folder.name for _, folder in _generations(index_dir)]


def new_generation_dir(index_dir: Path) -> tuple[str, Path]:
    """Reserve the next generation name and a temporary folder to build it in.

    Half-written folders left by an interrupted build are removed first.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    for child in index_dir.iterdir():
        if child.name.startswith(_TMP_PREFIX) and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
    generations = _generations(index_dir)
    name = f"gen-{generations[-1][0] + 1 if generations else 1}"
    tmp = index_dir / f"{_TMP_PREFIX}{name}"
    tmp.mkdir()
    return name, tmp


def write_generation(
    folder: Path,
    articles: Sequence[Article],
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    manifest: dict[str, Any],
    groups: Sequence[int] | None = None,
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
        connection.executescript(_SCHEMA)
        connection.executemany(
            "INSERT INTO articles (id, title, encoding) VALUES (?, ?, ?)",
            [(a.id, a.title, a.encoding) for a in articles],
        )
        rows = [
            (i, c.article_id, c.paragraph, c.part, c.heading, c.text, c.start, c.end,
             text_hash(c.embed_text), int(g))
            for i, (c, g) in enumerate(zip(chunks, groups, strict=True))
        ]  # fmt: skip
        connection.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        connection.executemany(
            "INSERT INTO chunks_fts (rowid, title, heading, text) VALUES (?, ?, ?, ?)",
            [(i, titles[c.article_id], c.heading, c.text) for i, c in enumerate(chunks)],
        )
        connection.executemany(
            "INSERT INTO articles_fts (rowid, title, text) VALUES (?, ?, ?)",
            _whole_articles(connection, chunks, titles),
        )
        connection.commit()
    finally:
        connection.close()
    np.save(folder / VECTORS_NPY, np.ascontiguousarray(vectors, dtype=np.float32))
    if sentences is not None:
        np.save(folder / SENTENCES_NPY, np.ascontiguousarray(sentences.vectors, dtype=np.float32))
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


def _whole_articles(
    connection: sqlite3.Connection, chunks: Sequence[Chunk], titles: dict[str, str]
) -> list[tuple[int, str, str]]:
    """(articles rowid, title, every heading once and every passage) of each article."""
    parts: dict[str, list[str]] = {article_id: [] for article_id in titles}
    headings: dict[str, set[str]] = {article_id: set() for article_id in titles}
    for chunk in chunks:
        if chunk.heading and chunk.heading not in headings[chunk.article_id]:
            headings[chunk.article_id].add(chunk.heading)
            parts[chunk.article_id].append(chunk.heading)
        parts[chunk.article_id].append(chunk.text)
    return [
        (rowid, titles[article_id], "\n\n".join(parts[article_id]))
        for rowid, article_id in connection.execute("SELECT rowid, id FROM articles")
    ]


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
    for name in (STORE, VECTORS, VECTORS_NPY, SENTENCES_NPY, SENTENCE_OFFSETS_NPY):
        if name in (SENTENCES_NPY, SENTENCE_OFFSETS_NPY) and not (folder / name).is_file():
            continue  # written without sentence vectors
        _fsync_file(folder / name)
        files[name] = {"sha256": _sha256(folder / name), "bytes": (folder / name).stat().st_size}
    written = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "faiss": {**layout, "metric": "inner_product"},
        "counts": counts,
        "files": files,
    }
    _write_json(folder / MANIFEST, written)
    _fsync_dir(folder)
    return written


def build_vector_index(vectors: np.ndarray, layout: dict[str, Any]) -> Any:
    """A FAISS index (ids = row numbers) of the layout `VectorIndexSpec.resolve` returned."""
    dimension = vectors.shape[1]
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
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


def _set_search_breadth(index: Any, layout: dict[str, Any]) -> None:
    """Set HNSW's efSearch or IVF's nprobe, which FAISS does not keep in the file."""
    inner = faiss.downcast_index(index.index)
    if layout.get("type") == "hnsw":
        inner.hnsw.efSearch = int(layout["ef_search"])
    elif layout.get("type") == "ivf":
        inner.nprobe = int(layout["nprobe"])


def vector_index_bytes(index: Any) -> int:
    """How many bytes a FAISS index takes serialised: about what it holds in memory."""
    return int(faiss.serialize_index(index).nbytes)


def reindex_vectors(index_dir: Path, spec: VectorIndexSpec, created_at: str) -> dict[str, Any]:
    """Publish a new generation with the live one's passages and vectors in a new FAISS index.

    Nothing is re-embedded: the vectors come from the live generation's vectors.npy.

    Returns:
        The new generation's manifest.
    """
    live = IndexStore.open(index_dir)
    try:
        vectors = np.load(live.folder / VECTORS_NPY, allow_pickle=False)
        name, folder = new_generation_dir(index_dir)
        try:
            shutil.copy2(live.folder / STORE, folder / STORE)
            if live.has_sentence_vectors:
                for file_name in (SENTENCES_NPY, SENTENCE_OFFSETS_NPY):
                    shutil.copy2(live.folder / file_name, folder / file_name)
            np.save(folder / VECTORS_NPY, vectors)
            manifest = {
                **live.manifest,
                "generation": name,
                "created_at": created_at,
                "vectors_from": live.generation,
            }
            written = _finish_generation(
                folder, manifest, vectors, spec.resolve(len(vectors)), live.manifest["counts"]
            )
            publish_generation(index_dir, name, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    finally:
        live.close()
    remove_old_generations(index_dir, keep=2)
    return written


def publish_generation(index_dir: Path, name: str, tmp_folder: Path) -> Path:
    """Move a finished generation into place, then point CURRENT at it atomically."""
    final = index_dir / name
    os.replace(tmp_folder, final)
    _fsync_dir(index_dir)
    pointer = index_dir / (CURRENT + ".tmp")
    pointer.write_text(name + "\n", encoding="utf-8")
    _fsync_file(pointer)
    os.replace(pointer, index_dir / CURRENT)
    _fsync_dir(index_dir)
    return final


def remove_old_generations(index_dir: Path, keep: int = 2) -> list[str]:
    """Delete all but the newest `keep` generations, never the live one. Returns removed names.

    A generation that an open `IndexStore` still holds (in any process) is left for a later call.
    """
    live = _read_current(index_dir)
    removed = []
    for _, folder in _generations(index_dir)[:-keep]:
        if folder.name == live:
            continue
        with claim_for_removal(folder) as unused:
            if unused:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
    return removed


def live_generation(index_dir: Path) -> str | None:
    """The generation CURRENT names, or None when nothing is published."""
    return _read_current(index_dir)


def _read_current(index_dir: Path) -> str | None:
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return name or None


class _TermScores:
    """Each word's BM25 in every row of one FTS5 table, looked up once and kept.

    FTS5's BM25 of an OR query is the sum of its terms' own BM25s (the same idf, the same length
    normalisation), so a query is a sum of its words' arrays, with FTS5's scores and order.
    Looking a word up reads its rows once (1.2-1.8 us a row against FTS5's ~1 us for a top-k
    OR query, which reads every row of every word each time); then it costs nothing. Kept up to
    `budget` bytes, least recently used dropped first.
    """

    def __init__(self, store: IndexStore, table: str, budget: int):
        self._store = store
        self._table = table
        self._budget = budget
        self._kept: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The kept rows and scores of `term`, or None when it was not looked up (or dropped)."""
        with self._lock:
            kept = self._kept.get(term)
            if kept is not None:
                self._kept.move_to_end(term)
            return kept

    def fetch(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows holding `term` and its BM25 in each, looked up now if not kept."""
        kept = self.get(term)
        if kept is not None:
            return kept
        rows = (
            self._store._db()
            .execute(
                f"SELECT rowid, bm25({self._table}) FROM {self._table} WHERE {self._table} MATCH ?",
                ('"' + term.replace('"', '""') + '"',),
            )
            .fetchall()
        )
        pairs = np.array(rows, dtype=np.float64).reshape(-1, 2)
        kept = (pairs[:, 0].astype(np.int64), -pairs[:, 1])  # bm25() is negated in FTS5
        with self._lock:
            if term not in self._kept:
                self._kept[term] = kept
                self._bytes += kept[0].nbytes + kept[1].nbytes
                while self._bytes > self._budget and self._kept:
                    _, (rowids, scores) = self._kept.popitem(last=False)
                    self._bytes -= rowids.nbytes + scores.nbytes
        return kept


def _summed(
    found: Sequence[tuple[np.ndarray, np.ndarray]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The `k` rows with the largest summed score (ties to the smaller rowid) and their sums."""
    rowids = np.concatenate([r for r, _ in found])
    if not len(rowids):
        return rowids, np.zeros(0, dtype=np.float64)
    totals = np.bincount(rowids, weights=np.concatenate([s for _, s in found]))
    present = np.flatnonzero(np.bincount(rowids))
    scores = totals[present]
    if len(scores) > k:  # sort only the best k and those tied with the k-th
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= kth
        present, scores = present[keep], scores[keep]
    best = np.lexsort((present, -scores))[:k]
    return present[best], scores[best]


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """FAISS on one OpenMP thread in this block: the setting is the calling thread's own, and is
    restored for whatever the thread does next."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


class IndexStore:
    """One published generation, opened read-only; safe to share between threads.

    Use `IndexStore.open(index_dir)`; SQLite connections are made per thread on first use.
    """

    def __init__(
        self,
        folder: Path,
        manifest: dict[str, Any],
        vectors: Any,
        lease: GenerationLease | None = None,
    ):
        self.folder = folder
        self._lease = lease  # keeps the folder from being removed while this store is open
        self.manifest = manifest
        self._vectors = vectors
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.RLock()  # _load_columns holds it while _db may take it again
        self._groups: np.ndarray | None = None
        self._article_codes = np.zeros(0, dtype=np.int64)
        self._grouped: set[int] = set()
        self._stored: np.ndarray | None = None  # vectors.npy, mapped when first needed
        # Generations of the first days of format 2 were written before vectors.npy.
        self.has_stored_vectors = (folder / VECTORS_NPY).is_file()
        # Format 4 keeps the vectors of each passage's sentences (built without: absent).
        files = manifest.get("files", {})
        self.has_sentence_vectors = SENTENCES_NPY in files and SENTENCE_OFFSETS_NPY in files
        self._sentences: tuple[np.ndarray, Any] | None = None  # read when first needed
        self._has_articles_fts: bool | None = None  # format 2 generations lack the table
        self._passage_terms = _TermScores(self, "chunks_fts", PASSAGE_TERMS_BYTES)
        self._article_terms = _TermScores(self, "articles_fts", ARTICLE_TERMS_BYTES)

    @classmethod
    def open(
        cls,
        index_dir: Path,
        model_id: str | None = None,
        dimension: int | None = None,
        generation: str | None = None,
    ) -> IndexStore:
        """Open the live generation of `index_dir`, checking it before use.

        Args:
            index_dir: the index folder (holding CURRENT).
            model_id: when given, the model the index must have been built with.
            dimension: when given, the vector dimension it must have.
            generation: open this generation (such as "gen-3") instead of the one CURRENT names.

        Raises:
            IndexNotFound: nothing has been published yet.
            IndexIncompatible: another format version, model or dimension.
            IndexCorrupt: a file is missing or fails its checksum.
        """
        name = generation or _read_current(index_dir)
        if name is None:
            raise IndexNotFound(f"no index at {index_dir}: run `semsearch index` first")
        if not _GENERATION.fullmatch(name):
            raise IndexCorrupt(f"{index_dir / CURRENT} names {name!r}, not a generation folder")
        folder = index_dir / name
        lease = GenerationLease(folder)
        try:
            return cls._open_checked(index_dir, folder, lease, model_id, dimension)
        except BaseException:
            lease.release()
            raise

    @classmethod
    def _open_checked(
        cls,
        index_dir: Path,
        folder: Path,
        lease: GenerationLease,
        model_id: str | None,
        dimension: int | None,
    ) -> IndexStore:
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise IndexCorrupt(
                f"index generation {folder} has no readable manifest ({error}): "
                "rebuild it with `semsearch index`"
            ) from error
        check_compatible(manifest, index_dir, model_id, dimension)
        for file_name, expected in manifest.get("files", {}).items():
            path = folder / file_name
            if not path.is_file() or _sha256(path) != expected.get("sha256"):
                raise IndexCorrupt(
                    f"{path} is missing or damaged (checksum mismatch): "
                    "rebuild the index with `semsearch index`"
                )
        try:
            vectors = faiss.read_index(str(folder / VECTORS))
        except RuntimeError as error:
            raise IndexCorrupt(f"cannot read {folder / VECTORS}: rebuild the index") from error
        layout = manifest.get("faiss", {})
        _set_search_breadth(vectors, layout)
        if vectors.ntotal != manifest["counts"]["passages"]:
            raise IndexCorrupt(f"{folder / VECTORS} does not match the manifest: rebuild it")
        return cls(folder, manifest, vectors, lease)

    def check_dimension(self, dimension: int) -> None:
        """Raise IndexIncompatible unless the stored vectors have this dimension."""
        check_compatible(self.manifest, self.folder.parent, None, dimension)

    @property
    def generation(self) -> str:
        return self.folder.name

    def _db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            uri = (self.folder / STORE).resolve().as_uri() + "?mode=ro"
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @property
    def location(self) -> str:
        """Where this generation lives, for people: its folder."""
        return str(self.folder)

    def count(self) -> int:
        """How many passages this generation holds."""
        return int(self._vectors.ntotal)

    def describe(self) -> dict[str, Any]:
        """The store's kind and layout, as `semsearch info` and /stats show them."""
        return {
            "store": "faiss",
            "location": str(self.folder.parent),
            "generation": self.generation,
            "passages": self.count(),
            "vector_index": self.manifest.get("faiss", {}),
            "lexical": "sqlite fts5 bm25 (porter)",
        }

    def dense_search(
        self, vector: np.ndarray, k: int, article: str | None = None
    ) -> list[tuple[int, float]]:
        """The `k` passages nearest to a normalised query vector: (chunk id, inner product).

        With `article`, only that article's passages, scored exactly from the stored vectors.
        """
        if article is not None:
            return self._dense_in_article(vector, k, article)
        if self._vectors.ntotal == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        # One query is faster on one thread (measured: 1.5 ms against 2.2 ms for 10k vectors on
        # 2 cores), and leaves the other cores to concurrent requests. The OpenMP setting is the
        # calling thread's own, so it is restored for whatever this thread does next.
        with _one_thread():
            scores, ids = self._vectors.search(query, min(k, self._vectors.ntotal))
        found = ids[0] >= 0
        ids, scores = ids[0][found], scores[0][found]
        order = np.lexsort((ids, -scores))  # ties to the smaller id
        return list(zip(ids[order].tolist(), scores[order].tolist(), strict=True))

    def _dense_in_article(
        self, vector: np.ndarray, k: int, article: str
    ) -> list[tuple[int, float]]:
        ids = [
            int(row[0])
            for row in self._db().execute("SELECT id FROM chunks WHERE article_id = ?", (article,))
        ]
        if not ids:
            return []
        scores = self.similarities(np.array(ids), vector)
        hits = sorted(zip(ids, scores.tolist(), strict=True), key=lambda hit: (-hit[1], hit[0]))
        return hits[:k]

    def similarities(self, ids: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The inner product of a query vector with the stored vectors of these passages.

        Exact, whatever the FAISS index type: for passages the dense search did not return.

        Raises:
            IndexIncompatible: the generation predates stored vectors and its FAISS index cannot
                give them back (an IVF index); rebuild it.
        """
        wanted = np.asarray(ids, dtype=np.int64)
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if not self.has_stored_vectors:
            # The first format 2 generations: an exact or HNSW index keeps the full vectors.
            try:
                return self._vectors.reconstruct_batch(wanted) @ query
            except RuntimeError:
                raise IndexIncompatible(
                    f"index generation {self.generation} has no {VECTORS_NPY} and its vectors "
                    "cannot be read back from its FAISS index: rebuild it with "
                    "`semsearch index --force`"
                ) from None
        if self._stored is None:
            # Checked against the manifest's checksum when the generation was opened.
            self._stored = np.load(self.folder / VECTORS_NPY, mmap_mode="r", allow_pickle=False)
        return self._stored[wanted] @ query

    def sentence_similarities(self, ids: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """For each passage, the largest inner product of the query vector with its sentences.

        -inf for a passage with no sentence vector (none long enough, or a generation built
        without them: see `has_sentence_vectors`).
        """
        wanted = np.asarray(ids, dtype=np.int64)
        best = np.full(len(wanted), -np.inf)
        if not self.has_sentence_vectors or not len(wanted):
            return best
        offsets, vectors = self._sentence_index()
        starts, counts = offsets[wanted], offsets[wanted + 1] - offsets[wanted]
        has = counts > 0
        if not has.any():
            return best
        # Row numbers of every wanted passage's sentences, passage after passage.
        firsts = np.cumsum(counts) - counts
        rows = np.arange(counts.sum(), dtype=np.int64) + np.repeat(starts - firsts, counts)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        scores = np.empty((1, len(rows)), dtype=np.float32)
        # The products with just these rows, read in place (numpy would copy them first:
        # 0.2 against 0.1 ms for the ~2,000 rows of a hybrid query's candidates).
        with _one_thread():  # as in dense_search
            vectors.compute_distance_subset(
                1, faiss.swig_ptr(query), len(rows), faiss.swig_ptr(scores),
                faiss.swig_ptr(rows.reshape(1, -1)),
            )  # fmt: skip
        best[has] = np.maximum.reduceat(scores[0], firsts[has])
        return best

    def _sentence_index(self) -> tuple[np.ndarray, Any]:
        """The sentence offsets and an exact FAISS index of the sentence vectors (ids = rows),
        read when first needed."""
        with self._lock:
            if self._sentences is None:
                # Checked against the manifest's checksums when the generation was opened.
                offsets = np.load(self.folder / SENTENCE_OFFSETS_NPY, allow_pickle=False)
                rows = np.load(self.folder / SENTENCES_NPY, mmap_mode="r", allow_pickle=False)
                index = faiss.IndexFlatIP(rows.shape[1])
                index.add(np.ascontiguousarray(rows, dtype=np.float32))
                self._sentences = (offsets, index)
            return self._sentences

    def lexical_search(
        self,
        terms: Sequence[str],
        k: int,
        article: str | None = None,
        weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> list[tuple[int, float]]:
        """BM25 over title, heading and text: (chunk id, score), higher is better.

        Each term is quoted as an FTS5 string and the terms are joined with OR, so no user text
        is ever read as FTS5 query syntax. `article` keeps only that article's passages;
        `weights` scale the title, heading and text columns.
        """
        wanted = list(dict.fromkeys(term for term in terms if term.strip()))
        if not wanted:
            return []
        if article is None and tuple(weights) == (1.0, 1.0, 1.0):
            # FTS5's own scores and order, summed from each word's kept array.
            rowids, scores = _summed([self._passage_terms.fetch(term) for term in wanted], k)
            return list(zip(rowids.tolist(), scores.tolist(), strict=True))
        quoted = ['"' + term.replace('"', '""') + '"' for term in wanted]
        within = ""
        if article is not None:
            within = "AND rowid IN (SELECT id FROM chunks WHERE article_id = ?) "
        rows = self._db().execute(
            "SELECT rowid, bm25(chunks_fts, ?, ?, ?) AS rank FROM chunks_fts "
            f"WHERE chunks_fts MATCH ? {within}ORDER BY rank, rowid LIMIT ?",
            (
                *(float(w) for w in weights),
                " OR ".join(quoted),
                *(() if article is None else (article,)),
                k,
            ),
        )
        # FTS5's bm25() is negated so that smaller sorts first; flip it back.
        return [(rowid, -rank) for rowid, rank in rows.fetchall()]

    def lexical_ceiling(self, terms: Sequence[str]) -> float:
        """The largest BM25 score `lexical_search(terms)` could give a passage here.

        FTS5's BM25 sums, over the query's terms, idf(t) times a term-frequency factor that
        approaches k1 + 1 (k1 = 1.2); idf(t) = ln((N - df + 0.5) / (df + 0.5)), at least 1e-6,
        from the number of passages N and those holding the term, df (terms found nowhere add
        nothing). A word's document frequency is the number of passages FTS5 itself matches for
        it (its tokenizer's stem, which is not always ours: "us" stays "us").
        """
        wanted = list(dict.fromkeys(term for term in terms if term.strip()))
        return bm25_ceiling([self._document_frequency(term) for term in wanted], self.count())

    def _document_frequency(self, term: str) -> int:
        """How many passages FTS5 matches for `term` (its own tokenizer decides, not ours): the
        rows of its kept scores, which a search for it has usually looked up already."""
        return len(self._passage_terms.fetch(term)[0])

    def article_lexical_search(
        self, terms: Sequence[str], k: int
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """BM25 of whole articles (title, headings and text) for the query's terms.

        Returns the `k` best articles' codes (as `passage_keys` gives them) and scores, and
        the query's largest possible article BM25 (see `lexical_ceiling`); nothing (and 0.0)
        from a generation written before articles had their own full-text index.
        """
        wanted = list(dict.fromkeys(term for term in terms if term.strip()))
        nothing = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), 0.0)
        if not wanted or not self._articles_indexed():
            return nothing
        # FTS5's BM25 of an OR query is the sum of each term's own BM25, so each term's
        # scores are looked up once and kept (a query's words are mostly words seen before).
        found = [self._article_terms.fetch(term) for term in wanted]
        codes, scores = _summed(found, k)
        if not len(codes):
            return nothing
        # A word's document frequency is the number of articles holding it: its kept rows.
        articles = int(self.manifest["counts"]["articles"])
        return codes, scores, bm25_ceiling([len(rows) for rows, _ in found], articles)

    def _articles_indexed(self) -> bool:
        if self._has_articles_fts is None:
            row = (
                self._db()
                .execute("SELECT 1 FROM sqlite_master WHERE name = 'articles_fts'")
                .fetchone()
            )
            self._has_articles_fts = row is not None
        return self._has_articles_fts

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]:
        """The stored passages with these ids (unknown ids are left out)."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        found: dict[int, ChunkRecord] = {}
        for offset in range(0, len(wanted), 500):
            batch = wanted[offset : offset + 500]
            rows = self._db().execute(
                "SELECT c.id, c.article_id, a.title, c.paragraph, c.part, c.heading, c.text, "
                "c.start, c.end FROM chunks c JOIN articles a ON a.id = c.article_id "
                f"WHERE c.id IN ({','.join('?' * len(batch))})",
                batch,
            )
            found.update((row[0], ChunkRecord(*row)) for row in rows)
        return found

    def _load_columns(self) -> None:
        with self._lock:
            if self._groups is not None:
                return
            rows = self._db().execute(
                "SELECT c.dup_group, a.rowid FROM chunks c JOIN articles a ON a.id = c.article_id "
                "ORDER BY c.id"
            )
            pairs = np.array(list(rows), dtype=np.int64).reshape(-1, 2)
            groups, self._article_codes = pairs[:, 0].copy(), pairs[:, 1].copy()
            grouped = {int(i) for i in np.flatnonzero(groups != np.arange(len(groups)))}
            self._grouped = grouped | {int(groups[i]) for i in grouped}
            self._groups = groups

    @property
    def groups(self) -> np.ndarray:
        """The near-duplicate group of every chunk, indexed by chunk id (loaded once)."""
        if self._groups is None:
            self._load_columns()
        return self._groups

    @property
    def article_codes(self) -> np.ndarray:
        """An integer standing for each chunk's article, indexed by chunk id (loaded once)."""
        if self._groups is None:
            self._load_columns()
        return self._article_codes

    def passage_keys(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The near-duplicate group and article code of each chunk, indexable by chunk id.

        Here both are whole columns loaded once (`ids` need not be looked up one by one).
        """
        return self.groups, self.article_codes

    def duplicates_of(self, chunk_id: int) -> list[tuple[int, str, int]]:
        """(chunk id, article id, paragraph) of the other passages in this chunk's group."""
        groups = self.groups
        if chunk_id not in self._grouped:
            return []
        rows = self._db().execute(
            "SELECT id, article_id, paragraph FROM chunks WHERE dup_group = ? AND id != ? "
            "ORDER BY id",
            (int(groups[chunk_id]), chunk_id),
        )
        return [(int(i), a, int(p)) for i, a, p in rows]

    def passage_locations(self) -> list[tuple[str, int, str]]:
        """(article id, paragraph, text) of every passage, indexed by chunk id."""
        rows = self._db().execute("SELECT article_id, paragraph, text FROM chunks ORDER BY id")
        return [(article_id, paragraph, text) for article_id, paragraph, text in rows]

    def article(self, article_id: str) -> ArticleRecord | None:
        """An article and its passages, or None when no article has this id."""
        row = (
            self._db().execute("SELECT title FROM articles WHERE id = ?", (article_id,)).fetchone()
        )
        if row is None:
            return None
        rows = self._db().execute(
            "SELECT id, article_id, ?, paragraph, part, heading, text, start, end FROM chunks "
            "WHERE article_id = ? ORDER BY paragraph, part",
            (row[0], article_id),
        )
        return ArticleRecord(article_id, row[0], tuple(ChunkRecord(*r) for r in rows))

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()
        self._stored = None
        self._sentences = None
        if self._lease is not None:
            self._lease.release()
            self._lease = None


def check_compatible(
    manifest: dict[str, Any], index_dir: Path, model_id: str | None, dimension: int | None
) -> None:
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS:
        raise IndexIncompatible(
            f"index at {index_dir} has format version {version}, this semsearch reads "
            f"{' or '.join(map(str, READABLE_VERSIONS))}: rebuild it with `semsearch index`"
        )
    built = manifest.get("model", {})
    if model_id is not None and built.get("id") != model_id:
        raise IndexIncompatible(
            f"index at {index_dir} was built with model {built.get('id')!r} but the configured "
            f"model is {model_id!r}: rebuild with `semsearch index`, or set SEMSEARCH_MODEL to "
            "the model it was built with"
        )
    if dimension is not None and built.get("dimension") != dimension:
        raise IndexIncompatible(
            f"index at {index_dir} holds {built.get('dimension')}-d vectors but the model gives "
            f"{dimension}-d: rebuild it with `semsearch index`"
        )


class EmbeddingCache:
    """Work a rebuild need not redo: vectors keyed by (model id, sha256 of the embedded text),
    and each article's chunks keyed by a digest of its content and the chunking settings.
    """

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path)
        # Rows in rowid order, the key in an index of its own. Earlier caches kept the vectors
        # in a WITHOUT ROWID table keyed by (model, hash), which keeps whole rows in the key's
        # B-tree: rows of 1.5 KB under random keys split pages at every insert (the BBC
        # corpus's 47,000 vectors took 4.0 s to write, now 1.1 s; reading a third of them
        # 0.49 s, now 0.13 s; the file was twice the size). Such a cache is moved over when it
        # is first opened.
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, hash TEXT NOT NULL, "
            "vector BLOB NOT NULL, UNIQUE (model, hash))"
        )
        self._move_legacy_vectors()
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS chunkings (key TEXT PRIMARY KEY, chunks TEXT NOT NULL) "
            "WITHOUT ROWID"
        )

    def _move_legacy_vectors(self) -> None:
        """Move the vectors of a cache in the earlier layout (table `embeddings`) to `vectors`."""
        legacy = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'embeddings'"
        if self._connection.execute(legacy).fetchone() is None:
            return
        try:
            with self._connection:
                self._connection.execute(
                    "INSERT OR IGNORE INTO vectors (model, hash, vector) "
                    "SELECT model, hash, vector FROM embeddings"
                )
                self._connection.execute("DROP TABLE embeddings")
        except sqlite3.OperationalError as error:
            # Another process moved them first (the table is gone), or the cache is busy.
            log.warning(
                "could not move the embedding cache's earlier vectors (%s): any not moved are "
                "embedded again when needed",
                error,
            )

    def get_chunkings(self, keys: Sequence[str]) -> dict[str, str]:
        """The stored chunkings (JSON text) among `keys`."""
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(keys))
        for offset in range(0, len(unique), 500):
            batch = unique[offset : offset + 500]
            rows = self._connection.execute(
                f"SELECT key, chunks FROM chunkings WHERE key IN ({','.join('?' * len(batch))})",
                batch,
            )
            found.update(rows)
        return found

    def put_chunkings(self, items: Iterable[tuple[str, str]]) -> None:
        with self._connection:
            self._connection.executemany(
                "INSERT OR REPLACE INTO chunkings (key, chunks) VALUES (?, ?)", list(items)
            )

    @classmethod
    def beside(cls, index_dir: Path) -> EmbeddingCache:
        return cls(index_dir / CACHE)

    def get_many(
        self, model_id: str, hashes: Sequence[str], dimension: int
    ) -> dict[str, np.ndarray]:
        """The cached vectors among `hashes`; entries of another dimension are ignored."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for offset in range(0, len(unique), 500):
            batch = unique[offset : offset + 500]
            rows = self._connection.execute(
                "SELECT hash, vector FROM vectors WHERE model = ? AND hash IN "
                f"({','.join('?' * len(batch))})",
                [model_id, *batch],
            )
            for digest, blob in rows:
                if len(blob) == dimension * 4:
                    found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model_id: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        with self._connection:
            self._connection.executemany(
                "INSERT OR REPLACE INTO vectors (model, hash, vector) VALUES (?, ?, ?)",
                [(model_id, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items],
            )

    def close(self) -> None:
        self._connection.close()
