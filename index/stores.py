"""The store seam: all that the builder and the search service know of where passages live.

Two stores implement it, each in modules of its own that nothing above `index` imports:

- FAISS + SQLite files in an index folder (`index.faiss_store`, the embedded default), one
  folder per generation, switched by the CURRENT file (`index.generations`).
- Milvus (`index.milvus_store`), one collection per generation, switched by a collection alias,
  for corpora that outgrow one machine (`pip install 'semsearch[milvus]'`).

`index.store_choice.make_store` makes the one a configuration names.

A `Store` lists, opens, writes and removes generations. A build writes a whole new generation
through a `StoreWriter` and publishes it atomically; the previous one keeps serving until then.
A `PassageStore` is one opened generation. What a store or generation can do beyond the common
ground is declared in its `capabilities`, never probed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from semsearch.index.articles import Article
from semsearch.index.chunking import Chunk
from semsearch.index.generations import KEEP_GENERATIONS  # the one place keep-N is decided
from semsearch.index.records import ArticleRecord, ChunkRecord, SentenceVectors
from semsearch.index.sentence_scores import SentenceScores

__all__ = [
    "KEEP_GENERATIONS",
    "VECTOR_INDEX_KINDS",
    "Capabilities",
    "PassageFilter",
    "PassageStore",
    "SentenceScores",
    "Store",
    "StoreWriter",
    "VectorIndexSpec",
    "ivf_list_count",
]


@dataclass(frozen=True)
class Capabilities:
    """What an opened generation can do beyond the common ground of `PassageStore`.

    lexical: `lexical_search` answers (a Milvus without full-text search: it cannot).
    stored_vectors: `similarities` scores any passage exactly, so passages only the lexical leg
        found can get a dense score.
    sentence_vectors: each passage's sentences have vectors (`sentence_scores`).
    sentence_search: a search looks up the query's nearest sentences (`nearest_sentences`) at
        the same time as its dense search, instead of its candidates' sentences after it: for
        a store whose every call is a round trip to a server.
    article_lexical: whole articles have their own BM25 (`article_lexical_search`).
    in_process: searches run on this process's CPU (FAISS), not in a server (Milvus): a
        service then runs no more of them at once than there are cores.
    metadata: articles carry their section, date, author and url (format 5 on): a search may
        filter by them (without, every article reads as having none).
    """

    lexical: bool = True
    stored_vectors: bool = True
    sentence_vectors: bool = False
    sentence_search: bool = False
    article_lexical: bool = False
    in_process: bool = True
    metadata: bool = True


@dataclass(frozen=True)
class PassageFilter:
    """Which passages a search may return, applied inside each leg's ranking (never a cut of
    its top k afterwards): a filter never loses a passage that matches it.

    article: only this article's passages. sections: only articles of any of these sections.
    after, before: only articles published on or after / on or before these ISO dates
    (YYYY-MM-DD, checked by the caller); an article with no date matches neither. Every field
    given must hold; none given keeps every passage.
    """

    article: str | None = None
    sections: tuple[str, ...] = ()
    after: str | None = None
    before: str | None = None

    @property
    def is_empty(self) -> bool:
        return self.article is None and not self.uses_metadata

    @property
    def uses_metadata(self) -> bool:
        """Whether it filters by section or date (which articles of format 4 and older lack)."""
        return bool(self.sections) or self.after is not None or self.before is not None


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


def ivf_list_count(count: int) -> int:
    """Inverted lists for `count` vectors: about 4 sqrt(n), and at least 39 vectors per list."""
    return max(1, min(int(4 * math.sqrt(max(count, 1))), count // 39))


@runtime_checkable
class PassageStore(Protocol):
    """One published generation of passages, opened for searching; safe to share between threads.

    Chunk ids are the integers the builder gave the passages. Scores are higher-is-better.
    """

    manifest: dict[str, Any]
    capabilities: Capabilities

    @property
    def generation(self) -> str: ...

    @property
    def location(self) -> str: ...

    def check_dimension(self, dimension: int) -> None: ...

    def count(self) -> int: ...

    def describe(self) -> dict[str, Any]: ...

    def dense_search(
        self, vector: np.ndarray, k: int, where: PassageFilter | None = None
    ) -> list[tuple[int, float]]:
        """The `k` passages nearest to a query vector that `where` keeps: (chunk id, score)."""
        ...

    def similarities(self, ids: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The inner product of a query vector with these passages' vectors, exactly."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """These passages' stored vectors (float32), a row each."""
        ...

    def sentence_scores(self, ids: np.ndarray, vector: np.ndarray) -> SentenceScores:
        """The inner product of a query vector with each sentence of these passages: each
        passage's best (`maxima`), and which sentence that is (`best`)."""
        ...

    def nearest_sentences(self, vector: np.ndarray, limit: int) -> SentenceScores:
        """The `limit` sentences of the whole index nearest to a query vector, as their
        passages' scores, with a ceiling on every sentence they leave out (`SentenceScores`)."""
        ...

    def lexical_search(
        self, terms: Sequence[str], k: int, where: PassageFilter | None = None
    ) -> list[tuple[int, float]]:
        """The `k` best passages by BM25 that `where` keeps: (chunk id, score)."""
        ...

    def lexical_ceiling(self, terms: Sequence[str]) -> float: ...

    def article_lexical_search(
        self, terms: Sequence[str], k: int, where: PassageFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """The `k` best articles' codes (as `passage_keys` gives them) among those `where`
        keeps, their BM25, and the query's largest possible article BM25; nothing (and 0.0)
        without that capability."""
        ...

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]: ...

    def passage_keys(self, ids: np.ndarray) -> tuple[Any, Any]: ...

    def duplicates_of(self, chunk_id: int) -> list[tuple[int, str, int]]: ...

    def duplicates_of_many(self, ids: Sequence[int]) -> dict[int, list[tuple[int, str, int]]]:
        """`duplicates_of` each of `ids`, looked up together (one round trip to a server)."""
        ...

    def passage_locations(self) -> list[tuple[str, int, str]]: ...

    def article(self, article_id: str) -> ArticleRecord | None: ...

    def close(self) -> None: ...


class StoreWriter(Protocol):
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


class Store(Protocol):
    """Where generations live: lists them, opens one, writes new ones, removes old ones.

    kind: "faiss" or "milvus". keeps_sentences: the writer keeps sentence vectors.
    """

    kind: str
    keeps_sentences: bool

    def live_generation(self) -> str | None: ...

    def generation_names(self) -> list[str]: ...

    def open(
        self,
        model_id: str | None = None,
        dimension: int | None = None,
        generation: str | None = None,
    ) -> PassageStore: ...

    def writer(self, vector_index: VectorIndexSpec | None = None) -> StoreWriter: ...

    def remove_old(self, keep: int = KEEP_GENERATIONS) -> list[str]: ...

    def build_lock(self) -> AbstractContextManager[Any]:
        """One build at a time: entered by every build; raises BuildRunning when one runs."""
        ...

    def reindex_vectors(self, spec: VectorIndexSpec, created_at: str) -> dict[str, Any]:
        """Publish the live generation again with a new vector index and no re-embedding;
        returns the new manifest (raises SemsearchError where the store cannot)."""
        ...

    def place(self, generation: str) -> str:
        """Where a generation lives, for people: a folder, or a Milvus collection."""
        ...

    def drop(self) -> list[str]:
        """Remove every generation (a scratch index); returns their names."""
        ...

    def describe(self) -> str: ...

    def close(self) -> None:
        """Let go of connections (the generations opened from it close on their own)."""
        ...
