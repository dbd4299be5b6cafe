"""The store seam: what the builder and the search service need from wherever passages live.

Two backends implement it:

- `FaissBackend` (the embedded default): generations of SQLite (FTS5) + FAISS files in the index
  folder, switched by the CURRENT file (`index.store`).
- `MilvusBackend`: one Milvus collection per generation, switched by a collection alias, for
  corpora that outgrow one machine (`index.milvus_store`; needs `pip install 'semsearch[milvus]'`).

A build writes a whole new generation through a `GenerationWriter` and publishes it atomically;
the previous generation keeps serving until then. A `PassageStore` is one opened generation.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from index.articles import Article
from index.chunking import Chunk
from index.store import (
    ArticleRecord,
    ChunkRecord,
    IndexStore,
    SentenceVectors,
    VectorIndexSpec,
    generation_names,
    live_generation,
    new_generation_dir,
    publish_generation,
    remove_old_generations,
    write_generation,
)

__all__ = [
    "BACKENDS",
    "FaissBackend",
    "FaissWriter",
    "GenerationWriter",
    "PassageStore",
    "StoreBackend",
    "check_rows",
    "compact",
]

BACKENDS = ("faiss", "milvus")


@runtime_checkable
class PassageStore(Protocol):
    """One published generation of passages, opened for searching; safe to share between threads.

    Chunk ids are the integers the builder gave the passages. Scores are higher-is-better.
    """

    manifest: dict[str, Any]

    @property
    def generation(self) -> str: ...

    @property
    def location(self) -> str: ...

    def check_dimension(self, dimension: int) -> None: ...

    def count(self) -> int: ...

    def describe(self) -> dict[str, Any]: ...

    def dense_search(
        self, vector: np.ndarray, k: int, article: str | None = None
    ) -> list[tuple[int, float]]: ...

    def similarities(self, ids: np.ndarray, vector: np.ndarray) -> np.ndarray: ...

    def sentence_similarities(self, ids: np.ndarray, vector: np.ndarray) -> np.ndarray: ...

    def lexical_search(
        self, terms: Sequence[str], k: int, article: str | None = None
    ) -> list[tuple[int, float]]: ...

    def lexical_ceiling(self, terms: Sequence[str]) -> float: ...

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]: ...

    def passage_keys(self, ids: np.ndarray) -> tuple[Any, Any]: ...

    def duplicates_of(self, chunk_id: int) -> list[tuple[int, str, int]]: ...

    def passage_locations(self) -> list[tuple[str, int, str]]: ...

    def article(self, article_id: str) -> ArticleRecord | None: ...

    def close(self) -> None: ...


class GenerationWriter(Protocol):
    """Builds one new generation; nothing is visible to searchers until `commit`."""

    def add(
        self,
        articles: Sequence[Article],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        groups: np.ndarray,
        sentences: SentenceVectors | None = None,
    ) -> None:
        """Add articles and their passages; chunk ids continue from the passages added before.

        `groups[i]` is the near-duplicate group of `chunks[i]`, named by the position (in this
        call) of its first member, as `index.dedup.near_duplicate_groups` gives it. `sentences`
        are the vectors of each chunk's sentences (a store may not keep them).
        """
        ...

    def delete_article(self, article_id: str) -> int:
        """Remove an article and its passages from the generation being built; returns how many
        passages went."""
        ...

    def commit(self, manifest: dict[str, Any]) -> str:
        """Write everything, make it the live generation atomically, and return its name."""
        ...

    def abort(self) -> None:
        """Throw the unfinished generation away."""
        ...


class StoreBackend(Protocol):
    """Where generations live: lists them, opens one, writes new ones, removes old ones."""

    name: str

    def live_generation(self) -> str | None: ...

    def generation_names(self) -> list[str]: ...

    def open(
        self,
        model_id: str | None = None,
        dimension: int | None = None,
        generation: str | None = None,
    ) -> PassageStore: ...

    def writer(self, vector_index: VectorIndexSpec | None = None) -> GenerationWriter: ...

    def remove_old(self, keep: int = 2) -> list[str]: ...

    def describe(self) -> str: ...


def check_rows(chunks: Sequence[Chunk], vectors: np.ndarray, groups: np.ndarray) -> None:
    """Raise ValueError unless there is one vector and one group per chunk."""
    if len(chunks) != len(vectors) or len(chunks) != len(groups):
        raise ValueError(f"{len(chunks)} chunks, {len(vectors)} vectors, {len(groups)} groups")


def compact(
    chunks: Sequence[Chunk], vectors: np.ndarray, groups: np.ndarray, keep: np.ndarray
) -> tuple[list[Chunk], np.ndarray, np.ndarray]:
    """Keep the rows where `keep` is true and renumber them 0..n-1, groups included.

    A group whose smallest member went is named after its smallest remaining member.
    """
    kept = np.flatnonzero(keep)
    old_groups = np.asarray(groups, dtype=np.int64)[kept]
    new_groups = np.arange(len(kept), dtype=np.int64)
    first: dict[int, int] = {}
    for new_id, group in enumerate(old_groups.tolist()):
        new_groups[new_id] = first.setdefault(group, new_id)
    return [chunks[i] for i in kept.tolist()], vectors[kept], new_groups


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
        vectors = (
            np.concatenate(self._vectors) if self._vectors else np.zeros((0, dimension), "float32")
        )
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


class FaissBackend:
    """Generations as folders of the index folder (the embedded default)."""

    name = "faiss"
    keeps_sentences = True  # each passage's sentence vectors beside its vector

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir

    def live_generation(self) -> str | None:
        return live_generation(self.index_dir)

    def generation_names(self) -> list[str]:
        return generation_names(self.index_dir)

    def open(
        self,
        model_id: str | None = None,
        dimension: int | None = None,
        generation: str | None = None,
    ) -> IndexStore:
        return IndexStore.open(
            self.index_dir, model_id=model_id, dimension=dimension, generation=generation
        )

    def writer(self, vector_index: VectorIndexSpec | None = None) -> FaissWriter:
        return FaissWriter(self.index_dir, vector_index)

    def remove_old(self, keep: int = 2) -> list[str]:
        return remove_old_generations(self.index_dir, keep=keep)

    def describe(self) -> str:
        return f"FAISS + SQLite in {self.index_dir}"
