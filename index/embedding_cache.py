"""The embedding cache beside an index: vectors and chunkings a rebuild need not redo.

<index dir>/embeddings.sqlite   (model id, sha256 of embed text) -> float32 vector;
                                article content digest -> its chunks
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["CACHE", "EmbeddingCache", "text_hash"]

CACHE = "embeddings.sqlite"


def text_hash(text: str) -> str:
    """The cache key of an embed text: sha256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
