"""What a generation holds, as plain values: passages, articles and their sentence vectors.

Every store (FAISS + SQLite, Milvus) returns these records; the builder and writers pass
`SentenceVectors` around. Nothing here knows how a store keeps them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semsearch.index.chunking import Chunk

__all__ = [
    "SENTENCE_DTYPE",
    "TAG_SEPARATOR",
    "ArticleRecord",
    "ChunkRecord",
    "SentenceVectors",
    "check_rows",
    "compact",
    "join_tags",
    "split_tags",
]

# How an article's tags are kept in one text column or field: one a line ("" for none).
TAG_SEPARATOR = "\n"


def join_tags(tags: tuple[str, ...]) -> str:
    """Tags as stored: one a line."""
    return TAG_SEPARATOR.join(tags)


def split_tags(stored: str | None) -> tuple[str, ...]:
    """Tags as `join_tags` stored them."""
    return tuple(stored.split(TAG_SEPARATOR)) if stored else ()


# How a build keeps sentence vectors (see SentenceVectors).
SENTENCE_DTYPE = np.float16


@dataclass(frozen=True)
class SentenceVectors:
    """The vectors of each passage's sentences: passage i owns rows offsets[i] to offsets[i + 1].

    float16 (`SENTENCE_DTYPE`), half the passages' float32: at about 3.4 sentences a passage they
    are most of a build's memory (a million-passage archive: 2.6 GB instead of 5.2). They only
    lift a passage toward its best sentence and pick its answer sentence; float16's rounding
    moves an inner product by about 1e-4. The FAISS store saves them as 8-bit codes
    (`index.sentence_codes`: half again); float32 arrays (older generations) are kept as they
    are.
    """

    offsets: np.ndarray  # int64, one more than there are passages
    vectors: np.ndarray  # (rows, dimension)

    @classmethod
    def of(cls, counts: Sequence[int] | np.ndarray, vectors: np.ndarray) -> SentenceVectors:
        """From the number of sentences of each passage, in order, and their vectors."""
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(np.asarray(counts, dtype=np.int64), out=offsets[1:])
        if offsets[-1] != len(vectors):
            raise ValueError(f"{offsets[-1]} sentences counted but {len(vectors)} vectors")
        vectors = np.asarray(vectors)
        if vectors.dtype not in (np.float16, np.float32):
            vectors = vectors.astype(SENTENCE_DTYPE)
        return cls(offsets, vectors)

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def joined(cls, parts: Sequence[SentenceVectors]) -> SentenceVectors:
        """The passages of `parts`, one after another (one part: itself, not a copy)."""
        if len(parts) == 1:
            return parts[0]
        counts = np.concatenate([part.counts for part in parts])
        return cls.of(counts, np.concatenate([part.vectors for part in parts]))

    def select(self, keep: np.ndarray) -> SentenceVectors:
        """Only the passages where `keep` is true, renumbered in order."""
        counts = self.counts
        rows = np.repeat(np.asarray(keep, dtype=bool), counts)
        return SentenceVectors.of(counts[keep], self.vectors[rows])


@dataclass(frozen=True)
class ChunkRecord:
    """A stored passage with its article's title and metadata (`index.articles.Article`'s:
    section, ISO date or None, author, url, empty in a generation older than format 5; tags,
    none before format 6)."""

    id: int
    article_id: str
    title: str
    paragraph: int
    part: int
    heading: str
    text: str
    start: int
    end: int
    section: str = ""
    published: str | None = None
    author: str = ""
    url: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArticleRecord:
    """A stored article: its title, passages in reading order, and metadata (as `ChunkRecord`)."""

    id: str
    title: str
    passages: tuple[ChunkRecord, ...]
    section: str = ""
    published: str | None = None
    author: str = ""
    url: str = ""
    tags: tuple[str, ...] = ()


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
