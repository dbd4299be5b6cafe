"""A deterministic synthetic `Embedder` for `semsearch bench --scale`: clustered vectors, no model.

Building a large index with the real model would take hours on a few cores; the scale bench
measures everything else (chunking, FTS5, FAISS, sentence vectors, serving), so it embeds with
`SyntheticEmbedder`. Its vectors are clustered like real ones:

- `centroids` random unit vectors are the topics;
- a *piece* of text (a sentence, or a line such as the title) gets its topic from `topics`
  (the scale corpus maps each source sentence and title to its source article's topic; see
  `search.synthetic_corpus`), else from a hash of its text; its vector is its topic's centroid
  plus Gaussian noise seeded by the text's hash (`spread` times a unit-length noise), normalised;
- a text's vector is the normalised sum of its pieces' vectors: a passage lies near its own
  sentences (they are its pieces), near passages of its topic, far from the rest.

Two pieces of one topic have a cosine of about 1 / (1 + spread**2) (0.31 at the default 1.5); two
four-sentence passages of one topic about 0.64; texts of different topics about 0.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import numpy as np

from semsearch.index.chunking import sentences

__all__ = ["SYNTHETIC_MODEL_ID", "SyntheticEmbedder", "pieces"]

SYNTHETIC_MODEL_ID = "synthetic-clustered-384"
DIMENSION = 384
CENTROIDS = 256
SPREAD = 1.5
# MiniLM's limit, as the real model reads (special tokens excluded).
MAX_TOKENS = 254
# Word pieces per word of English news text in MiniLM's vocabulary, about.
TOKENS_PER_WORD = 1.3
# Piece vectors kept (a source sentence recurs in many synthetic passages): 1.5 KB each.
PIECE_CACHE = 200_000


def _digest(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).digest(), "big"
    )


class SyntheticEmbedder:
    """Clustered, deterministic vectors from a text's pieces (see the module's docstring).

    Args:
        topics: the topic (0 .. centroids - 1) of known pieces (sentences, titles); other pieces
            get one from their hash.
        dimension: the vectors' dimension.
        centroids: how many topics.
        spread: the noise around a piece's centroid, relative to the centroid's length.
        seed: picks the centroids.
    """

    runtime = "synthetic"
    spreads_queries = False

    def __init__(
        self,
        topics: Mapping[str, int] | None = None,
        dimension: int = DIMENSION,
        centroids: int = CENTROIDS,
        spread: float = SPREAD,
        seed: int = 0,
    ):
        self.model_id = SYNTHETIC_MODEL_ID if dimension == DIMENSION else f"synthetic-{dimension}"
        self._topics = topics or {}
        self._dimension = dimension
        self._spread = spread
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((centroids, dimension)).astype(np.float32)
        self._centroids = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self._pieces: dict[str, np.ndarray] = {}

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return MAX_TOKENS

    def count_tokens(self, text: str) -> int:
        """About the model's token count: words times the word pieces of an average word."""
        return math.ceil(len(text.split()) * TOKENS_PER_WORD)

    def count_tokens_many(self, texts: list[str]) -> list[int]:
        return [self.count_tokens(text) for text in texts]

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return np.stack([self._vector(text) for text in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def topic(self, piece: str) -> int:
        """A piece's topic: the one it was given, else one from its hash."""
        found = self._topics.get(piece)
        return found if found is not None else _digest(piece) % len(self._centroids)

    def _vector(self, text: str) -> np.ndarray:
        total = np.zeros(self._dimension, dtype=np.float32)
        for piece in pieces(text):
            total += self._piece(piece)
        norm = float(np.linalg.norm(total))
        return total / norm if norm > 0 else self._piece(text)

    def _piece(self, piece: str) -> np.ndarray:
        kept = self._pieces.get(piece)
        if kept is not None:
            return kept
        rng = np.random.default_rng(_digest(piece))
        noise = rng.standard_normal(self._dimension).astype(np.float32)
        vector = self._centroids[self.topic(piece)] + noise * (
            self._spread / math.sqrt(self._dimension)
        )
        vector /= np.linalg.norm(vector)
        if len(self._pieces) >= PIECE_CACHE:
            self._pieces.clear()
        self._pieces[piece] = vector
        return vector


def pieces(text: str) -> list[str]:
    """A text's pieces: its lines' sentences as the builder splits them (a line with none is a
    piece itself: a title, a heading, a short query)."""
    found: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        found.extend(sentences(line) or [line])
    return found or [text]
