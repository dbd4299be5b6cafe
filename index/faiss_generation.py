"""One opened generation of the FAISS store: vectors in FAISS, records and words in SQLite.

Read-only and safe to share between threads: each thread gets its own SQLite connection; the
vector index, the stored vectors (memory-mapped) and the sentence vectors are shared. BM25
comes from the generation's FTS5 tables (`index.lexical`); filters and the dense search under
them from `index.faiss_filter`; the sentence vectors' scores from `index.faiss_sentences`. The
files: `index.faiss_layout`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from semsearch.index.errors import IndexCorrupt, IndexIncompatible, IndexNotFound
from semsearch.index.faiss_filter import (
    EXACT_FILTER_MAX,
    Allowed,
    Filters,
    exact_search,
    index_search,
)
from semsearch.index.faiss_groups import PassageGroups
from semsearch.index.faiss_layout import (
    MANIFEST,
    SENTENCE_OFFSETS_NPY,
    SENTENCES_NPY,
    STORE,
    VECTORS,
    VECTORS_NPY,
)
from semsearch.index.faiss_sentences import SentenceIndex
from semsearch.index.generations import CURRENT, is_generation_name, live_generation, sha256_of
from semsearch.index.lexical import LexicalIndex
from semsearch.index.lock import GenerationLease
from semsearch.index.manifest import check_compatible
from semsearch.index.records import ArticleRecord, ChunkRecord, split_tags
from semsearch.index.sentence_scores import SentenceScores
from semsearch.index.stores import Capabilities, PassageFilter
from semsearch.index.vectors import set_search_breadth

__all__ = ["FaissGeneration"]

# The articles' metadata columns, in `ChunkRecord`'s order (format 5 on; tags format 6 on,
# stored one a line: `records.join_tags`).
_METADATA = ("section", "published", "author", "url")
_TAGS = "tags"


class FaissGeneration:
    """One published generation, opened read-only; safe to share between threads.

    Use `FaissGeneration.open(index_dir)`; SQLite connections are made per thread on first use.
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
        self._lock = threading.RLock()  # loading the groups holds it while _db may take it again
        self._groups = PassageGroups(self._db, self._lock)
        self._stored: np.ndarray | None = None  # vectors.npy, mapped when first needed
        files = manifest.get("files", {})
        self.capabilities = Capabilities(
            # Generations of the first days of format 2 were written before vectors.npy.
            stored_vectors=(folder / VECTORS_NPY).is_file(),
            # Format 4 keeps the vectors of each passage's sentences (built without: absent).
            sentence_vectors=SENTENCES_NPY in files and SENTENCE_OFFSETS_NPY in files,
            # Format 3 added the articles' own full-text table.
            article_lexical=int(manifest.get("format_version", 0)) >= 3,
            # Format 5 added the articles' section, date, author and url.
            metadata=int(manifest.get("format_version", 0)) >= 5,
        )
        self._has_tags = int(manifest.get("format_version", 0)) >= 6  # (format 6 added tags)
        self._filters = Filters(self._db, lambda: self.article_codes, self.capabilities.metadata)
        self._sentences = SentenceIndex(folder, self.capabilities.sentence_vectors)
        self._lexical = LexicalIndex(
            self._db, int(vectors.ntotal), int(manifest.get("counts", {}).get("articles", 0))
        )

    @classmethod
    def open(
        cls,
        index_dir: Path,
        model_id: str | None = None,
        dimension: int | None = None,
        generation: str | None = None,
    ) -> FaissGeneration:
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
        name = generation or live_generation(index_dir)
        if name is None:
            raise IndexNotFound(f"no index at {index_dir}: run `semsearch index` first")
        if not is_generation_name(name):
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
    ) -> FaissGeneration:
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
            if not path.is_file() or sha256_of(path) != expected.get("sha256"):
                raise IndexCorrupt(
                    f"{path} is missing or damaged (checksum mismatch): "
                    "rebuild the index with `semsearch index`"
                )
        try:
            vectors = faiss.read_index(str(folder / VECTORS))
        except RuntimeError as error:
            raise IndexCorrupt(f"cannot read {folder / VECTORS}: rebuild the index") from error
        layout = manifest.get("faiss", {})
        set_search_breadth(vectors, layout)
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
        self, vector: np.ndarray, k: int, where: PassageFilter | None = None
    ) -> list[tuple[int, float]]:
        """The `k` passages nearest to a normalised query vector: (chunk id, inner product).

        With `where`, only the passages it keeps, searched among those alone (never a cut of
        the unfiltered top k): up to `EXACT_FILTER_MAX` of them exactly from their stored
        vectors, more by the FAISS index told which ids it may return.
        """
        allowed = None if where is None or where.is_empty else self._allowed(where)
        # EXACT_FILTER_MAX is read from this module (tests/index/test_filters.py patches it here).
        if allowed is not None and len(allowed.ids) <= EXACT_FILTER_MAX:
            return exact_search(self.similarities, vector, k, allowed.ids)
        return index_search(self._vectors, self.manifest.get("faiss", {}), vector, k, allowed)

    def _allowed(self, where: PassageFilter) -> Allowed:
        """The passages and articles `where` keeps (looked up once per filter and kept)."""
        return self._filters.allowed(where)

    def similarities(self, ids: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The inner product of a query vector with the stored vectors of these passages.

        From the stored vectors (float16: within about 1e-4 of exact), whatever the FAISS index
        type: for passages the dense search did not return.

        Raises:
            IndexIncompatible: see `vectors`.
        """
        return self.vectors(ids) @ np.asarray(vector, dtype=np.float32).reshape(-1)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these passages as float32, a row each.

        Raises:
            IndexIncompatible: the generation predates stored vectors and its FAISS index cannot
                give them back (an IVF index); rebuild it.
        """
        wanted = np.asarray(ids, dtype=np.int64)
        if not self.capabilities.stored_vectors:
            # The first format 2 generations: an exact or HNSW index keeps the full vectors.
            try:
                return np.asarray(self._vectors.reconstruct_batch(wanted))
            except RuntimeError:
                raise IndexIncompatible(
                    f"index generation {self.generation} has no {VECTORS_NPY} and its vectors "
                    "cannot be read back from its FAISS index: rebuild it with "
                    "`semsearch index --force`"
                ) from None
        if self._stored is None:
            # Checked against the manifest's checksum when the generation was opened.
            self._stored = np.load(self.folder / VECTORS_NPY, mmap_mode="r", allow_pickle=False)
        return np.asarray(self._stored[wanted], dtype=np.float32)

    def sentence_scores(self, ids: np.ndarray, vector: np.ndarray) -> SentenceScores:
        """The inner product of the query vector with every sentence of these passages (none
        for a generation built without sentence vectors)."""
        return self._sentences.scores(ids, vector)

    def nearest_sentences(self, vector: np.ndarray, limit: int) -> SentenceScores:
        """The `limit` sentences nearest to the query vector, of every passage: their scores
        (partial, with a ceiling: `SentenceScores`); none without sentence vectors."""
        return self._sentences.nearest(vector, limit)

    def lexical_search(
        self,
        terms: Sequence[str],
        k: int,
        where: PassageFilter | None = None,
        weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> list[tuple[int, float]]:
        """BM25 over title, heading and text (see `LexicalIndex.search`), of the passages
        `where` keeps."""
        keep = None if where is None or where.is_empty else self._allowed(where).passages
        return self._lexical.search(terms, k, keep, weights)

    def lexical_ceiling(self, terms: Sequence[str]) -> float:
        """The largest BM25 `lexical_search(terms)` could give a passage here."""
        return self._lexical.ceiling(terms)

    def article_lexical_search(
        self, terms: Sequence[str], k: int, where: PassageFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """BM25 of whole articles (see `LexicalIndex.article_search`), of those `where` keeps."""
        keep = None if where is None or where.is_empty else self._allowed(where).articles
        return self._lexical.article_search(terms, k, keep)

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]:
        """The stored passages with these ids (unknown ids are left out)."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        found: dict[int, ChunkRecord] = {}
        for offset in range(0, len(wanted), 500):
            batch = wanted[offset : offset + 500]
            rows = self._db().execute(
                "SELECT c.id, c.article_id, a.title, c.paragraph, c.part, c.heading, c.text, "
                f"c.start, c.end{self._metadata_columns('a.')} FROM chunks c "
                "JOIN articles a ON a.id = c.article_id "
                f"WHERE c.id IN ({','.join('?' * len(batch))})",
                batch,
            )
            found.update((row[0], ChunkRecord(*self._with_tags(row))) for row in rows)
        return found

    @property
    def groups(self) -> np.ndarray:
        """The near-duplicate group of every chunk, indexed by chunk id (loaded once)."""
        return self._groups.groups

    @property
    def article_codes(self) -> np.ndarray:
        """An integer standing for each chunk's article, indexed by chunk id (loaded once)."""
        return self._groups.article_codes

    def passage_keys(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The near-duplicate group and article code of each chunk, indexable by chunk id.

        Here both are whole columns loaded once (`ids` need not be looked up one by one).
        """
        return self.groups, self.article_codes

    def duplicates_of(self, chunk_id: int) -> list[tuple[int, str, int]]:
        """(chunk id, article id, paragraph) of the other passages in this chunk's group."""
        return self._groups.duplicates_of(chunk_id)

    def duplicates_of_many(self, ids: Sequence[int]) -> dict[int, list[tuple[int, str, int]]]:
        """`duplicates_of` each of `ids` (here in this process: one at a time costs nothing)."""
        return {int(chunk_id): self.duplicates_of(int(chunk_id)) for chunk_id in ids}

    def passage_locations(self) -> list[tuple[str, int, str]]:
        """(article id, paragraph, text) of every passage, indexed by chunk id."""
        rows = self._db().execute("SELECT article_id, paragraph, text FROM chunks ORDER BY id")
        return [(article_id, paragraph, text) for article_id, paragraph, text in rows]

    def _metadata_columns(self, prefix: str = "") -> str:
        """`, section, published, author, url[, tags]` (each after `prefix`): nothing before
        format 5, no tags before format 6."""
        if not self.capabilities.metadata:
            return ""
        columns = (*_METADATA, _TAGS) if self._has_tags else _METADATA
        return "".join(f", {prefix}{column}" for column in columns)

    def _with_tags(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """A row ending with the metadata columns, its stored tags (the last) made a tuple."""
        return (*row[:-1], split_tags(row[-1])) if self._has_tags else row

    def article(self, article_id: str) -> ArticleRecord | None:
        """An article, its passages and its metadata, or None when no article has this id."""
        row = (
            self._db()
            .execute(
                f"SELECT title{self._metadata_columns()} FROM articles WHERE id = ?", (article_id,)
            )
            .fetchone()
        )
        if row is None:
            return None
        rows = self._db().execute(
            "SELECT id, article_id, paragraph, part, heading, text, start, end FROM chunks "
            "WHERE article_id = ? ORDER BY paragraph, part",
            (article_id,),
        )
        title, metadata = row[0], self._with_tags(tuple(row[1:]))
        passages = tuple(ChunkRecord(r[0], r[1], title, *r[2:], *metadata) for r in rows)
        return ArticleRecord(article_id, title, passages, *metadata)

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()
        self._stored = None
        self._sentences.close()
        self._filters.clear()
        if self._lease is not None:
            self._lease.release()
            self._lease = None
