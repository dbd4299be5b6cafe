"""Common words' BM25 rows, read whole by FTS5 once at build time and stored as arrays.

The lexical leg sums each query word's BM25 in every row holding it (`index.lexical`). FTS5
reads a word's rows at about 1.5 us a row, so a word in half the passages of a million-passage
archive costs most of a second on its first lookup, and again whenever the kept scores drop it.
A build therefore stores, for each word in at least `COMMON_ROWS` rows of a full-text table,
every row holding it and its BM25 there (`word_rows`: chunk or article rowids as int32, scores
as float64, FTS5's own values), and a search reads them as two arrays (~10 ns a row). Nothing
is left out: the sums, and so the rankings, are FTS5's exactly; rarer words are read from FTS5
as before.

A query word is found by the token FTS5 makes of it (its porter tokenizer, `FTS5_TOKENIZER`),
which `Tokens` asks an in-memory FTS5 table for: "running" is stored as "run".
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable

import numpy as np

from semsearch.index.bounded_cache import BoundedCache

__all__ = ["COMMON_ROWS", "FTS5_TOKENIZER", "Tokens", "WordRows", "write_word_rows"]

FTS5_TOKENIZER = "porter unicode61 remove_diacritics 2"
# Words in at least this many rows are stored (their FTS5 read would take >= ~3 ms).
COMMON_ROWS = 2_000

WORD_ROWS_SCHEMA = """
CREATE TABLE IF NOT EXISTS word_rows (
    source TEXT NOT NULL,       -- the FTS5 table: chunks_fts or articles_fts
    token TEXT NOT NULL,        -- the word as FTS5 indexes it (porter stem)
    rowids BLOB NOT NULL,       -- every row holding it, int32, ascending
    scores BLOB NOT NULL,       -- its BM25 in each (FTS5's bm25(), sign flipped), float64
    PRIMARY KEY (source, token)
);
"""
_ROWIDS = np.dtype("<i4")
_SCORES = np.dtype("<f8")
# Query words whose token was asked, kept (with the cache's ~400 bytes an entry, 16 MB at most).
TOKENS_KEPT = 40_000
TOKENS_BYTES = 16 * 1024 * 1024


def write_word_rows(connection: sqlite3.Connection, table: str, minimum: int | None = None) -> int:
    """Store the rows and BM25 of each word of the FTS5 `table` held by `minimum` rows or
    more (`COMMON_ROWS`); returns how many words were stored. Run once the table is complete
    (BM25 depends on every row)."""
    minimum = COMMON_ROWS if minimum is None else minimum
    connection.executescript(WORD_ROWS_SCHEMA)
    connection.execute(
        f"CREATE VIRTUAL TABLE temp.{table}_vocab USING fts5vocab(main, {table}, 'row')"
    )
    try:
        common = connection.execute(
            f"SELECT term, doc FROM temp.{table}_vocab WHERE doc >= ? ORDER BY term", (minimum,)
        ).fetchall()
        tokens = Tokens()
        stored = 0
        for token, documents in common:
            # A token FTS5 would turn into another when searched for is left to FTS5.
            if tokens.token(token) != token:
                continue
            rows = connection.execute(
                f"SELECT rowid, bm25({table}) FROM {table} WHERE {table} MATCH ? ORDER BY rowid",
                ('"' + token.replace('"', '""') + '"',),
            ).fetchall()
            if len(rows) != documents:  # (not the rows the vocabulary counts: left to FTS5)
                continue
            pairs = np.array(rows, dtype=np.float64).reshape(-1, 2)
            connection.execute(
                "INSERT INTO word_rows (source, token, rowids, scores) VALUES (?, ?, ?, ?)",
                (
                    table,
                    token,
                    pairs[:, 0].astype(_ROWIDS).tobytes(),
                    (-pairs[:, 1]).astype(_SCORES).tobytes(),  # bm25() is negated in FTS5
                ),
            )
            stored += 1
        return stored
    finally:
        connection.execute(f"DROP TABLE temp.{table}_vocab")


class Tokens:
    """The token FTS5 indexes a word as, asked of an in-memory FTS5 table with the same
    tokenizer; kept per word. Safe to share between threads."""

    def __init__(self) -> None:
        self._connection = sqlite3.connect(":memory:", check_same_thread=False)
        self._connection.execute(
            f"CREATE VIRTUAL TABLE words USING fts5(word, tokenize='{FTS5_TOKENIZER}')"
        )
        self._connection.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(words, 'row')")
        self._lock = threading.Lock()
        # A word FTS5 makes no single token of is kept as "".
        self._kept: BoundedCache[str, str] = BoundedCache(
            TOKENS_KEPT,
            TOKENS_BYTES,
            lambda word, token: sys.getsizeof(word) + sys.getsizeof(token),
        )

    def token(self, word: str) -> str | None:
        """The one token FTS5 makes of `word`, or None when it makes none or several."""
        kept = self._kept.get(word)
        if kept is not None:
            return kept or None
        with self._lock:
            self._connection.execute("INSERT INTO words (rowid, word) VALUES (1, ?)", (word,))
            made = [row[0] for row in self._connection.execute("SELECT term FROM tokens")]
            self._connection.execute("DELETE FROM words")
        token = made[0] if len(made) == 1 else ""
        self._kept.put(word, token)
        return token or None


class WordRows:
    """The stored rows of one FTS5 table's common words (see `write_word_rows`).

    `db` gives the calling thread's connection; a generation written before this table has
    no stored words, and every word is read from FTS5.
    """

    def __init__(self, db: Callable[[], sqlite3.Connection], table: str, tokens: Tokens):
        self._db = db
        self._table = table
        self._tokens = tokens
        self._stored: frozenset[str] | None = None

    def get(self, word: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(rowids, BM25 scores) of `word` when it is stored, else None."""
        if not self.stored():
            return None  # (no word asked to tokenize)
        token = self._tokens.token(word)
        if token is None or token not in self.stored():
            return None
        row = (
            self._db()
            .execute(
                "SELECT rowids, scores FROM word_rows WHERE source = ? AND token = ?",
                (self._table, token),
            )
            .fetchone()
        )
        if row is None:
            return None
        # Read-only views of the fetched bytes: nothing copies them.
        return np.frombuffer(row[0], dtype=_ROWIDS), np.frombuffer(row[1], dtype=_SCORES)

    def stored(self) -> frozenset[str]:
        """The tokens stored for this table (a few thousand at most), read when first asked;
        none in a generation written before they were."""
        if self._stored is None:
            db = self._db()
            present = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'word_rows'"
            ).fetchone()
            rows = (
                db.execute("SELECT token FROM word_rows WHERE source = ?", (self._table,))
                if present
                else ()
            )
            self._stored = frozenset(token for (token,) in rows)
        return self._stored
