"""A FAISS generation's near-duplicate groups and article codes, read from its SQLite once.

Ranking needs two integers for every candidate: its near-duplicate group (`search` shows one
passage a group) and its article (the article boost). Here both are whole columns, indexed by
chunk id, loaded on first use; a passage's group mates are read when a hit asks for them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

import numpy as np

__all__ = ["PassageGroups"]


class PassageGroups:
    """The group and article code of every passage of one generation; safe to share between
    threads.

    Args:
        db: this thread's read-only connection to the generation's SQLite.
        lock: held while the columns load (`db` may take it too: a re-entrant lock).
    """

    def __init__(self, db: Callable[[], sqlite3.Connection], lock: threading.RLock):
        self._db = db
        self._lock = lock
        self._groups: np.ndarray | None = None
        self._article_codes = np.zeros(0, dtype=np.int64)
        self._grouped: set[int] = set()  # the passages that have group mates

    def _load(self) -> np.ndarray:
        with self._lock:
            if self._groups is not None:
                return self._groups
            rows = self._db().execute(
                "SELECT c.dup_group, a.rowid FROM chunks c JOIN articles a ON a.id = c.article_id "
                "ORDER BY c.id"
            )
            pairs = np.array(list(rows), dtype=np.int64).reshape(-1, 2)
            groups, self._article_codes = pairs[:, 0].copy(), pairs[:, 1].copy()
            grouped = {int(i) for i in np.flatnonzero(groups != np.arange(len(groups)))}
            self._grouped = grouped | {int(groups[i]) for i in grouped}
            self._groups = groups
            return groups

    @property
    def groups(self) -> np.ndarray:
        """The near-duplicate group of every chunk, indexed by chunk id (loaded once)."""
        return self._groups if self._groups is not None else self._load()

    @property
    def article_codes(self) -> np.ndarray:
        """An integer standing for each chunk's article, indexed by chunk id (loaded once)."""
        if self._groups is None:
            self._load()
        return self._article_codes

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
