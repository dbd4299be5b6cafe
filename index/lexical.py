"""The lexical index of a FAISS generation: SQLite FTS5 tables, their BM25, and kept word scores.

Two FTS5 tables beside the records (`index.faiss_layout`): `chunks_fts` (each passage's title,
heading and text) and `articles_fts` (each article whole). Both use FTS5's porter tokenizer.
Their common words' rows are also stored whole, as arrays (`index.word_rows`).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from semsearch.index.bm25 import bm25_ceiling
from semsearch.index.bounded_cache import BoundedCache
from semsearch.index.chunking import Chunk
from semsearch.index.word_rows import FTS5_TOKENIZER, Tokens, WordRows, write_word_rows

__all__ = ["LEXICAL_SCHEMA", "LexicalIndex", "TermScores", "write_lexical"]

LEXICAL_SCHEMA = f"""
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    title, heading, text, content='', tokenize='{FTS5_TOKENIZER}'
);
-- Each article as a whole (title; headings and passages), rowid = articles.rowid.
CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, text, content='', tokenize='{FTS5_TOKENIZER}'
);
"""

# Per-term BM25 scores kept per open generation (see TermScores), least recently used dropped
# first, bounded in bytes and in entries: a word no passage holds still costs its key and
# bookkeeping (about 0.8 KB), so queries of random words fill the entries, not the bytes.
# The BBC corpus's passages need 7 MB for every word they hold (some 30,000 words), so
# the bytes keep the arrays of any query vocabulary of that size many times over, and
# 50,000 entries keep that vocabulary whole; at most 128 + 64 MB a generation either way.
PASSAGE_TERMS_BYTES = 128 * 1024 * 1024
PASSAGE_TERMS_ENTRIES = 50_000
ARTICLE_TERMS_BYTES = 64 * 1024 * 1024
ARTICLE_TERMS_ENTRIES = 50_000


def write_lexical(
    connection: sqlite3.Connection, chunks: Sequence[Chunk], titles: dict[str, str]
) -> None:
    """Fill the FTS5 tables (made by `LEXICAL_SCHEMA`): each passage (rowid = chunk id), each
    article (rowid = its row in `articles`); then store their common words' rows."""
    connection.executemany(
        "INSERT INTO chunks_fts (rowid, title, heading, text) VALUES (?, ?, ?, ?)",
        ((i, titles[c.article_id], c.heading, c.text) for i, c in enumerate(chunks)),
    )
    connection.executemany(
        "INSERT INTO articles_fts (rowid, title, text) VALUES (?, ?, ?)",
        _whole_articles(connection, chunks, titles),
    )
    for table in ("chunks_fts", "articles_fts"):
        write_word_rows(connection, table)


def _whole_articles(
    connection: sqlite3.Connection, chunks: Sequence[Chunk], titles: dict[str, str]
) -> Iterator[tuple[int, str, str]]:
    """(articles rowid, title, every heading once and every passage) of each article, one at a
    time (a million-passage archive's articles are gigabytes of text joined)."""
    parts: dict[str, list[str]] = {article_id: [] for article_id in titles}
    headings: dict[str, set[str]] = {article_id: set() for article_id in titles}
    for chunk in chunks:
        if chunk.heading and chunk.heading not in headings[chunk.article_id]:
            headings[chunk.article_id].add(chunk.heading)
            parts[chunk.article_id].append(chunk.heading)
        parts[chunk.article_id].append(chunk.text)
    for rowid, article_id in connection.execute("SELECT rowid, id FROM articles").fetchall():
        yield rowid, titles[article_id], "\n\n".join(parts[article_id])


class LexicalIndex:
    """BM25 over one generation's FTS5 tables; safe to share between threads.

    `db` gives the calling thread's read-only connection; `passages` and `articles` are the
    generation's counts (BM25's N).
    """

    def __init__(self, db: Callable[[], sqlite3.Connection], passages: int, articles: int):
        self._db = db
        self._passages = passages
        self._articles = articles
        self._has_articles_fts: bool | None = None  # format 2 generations lack the table
        tokens = Tokens()
        self._passage_terms = TermScores(
            db, "chunks_fts", PASSAGE_TERMS_BYTES, PASSAGE_TERMS_ENTRIES, tokens
        )
        self._article_terms = TermScores(
            db, "articles_fts", ARTICLE_TERMS_BYTES, ARTICLE_TERMS_ENTRIES, tokens
        )

    def search(
        self,
        terms: Sequence[str],
        k: int,
        keep: np.ndarray | None = None,
        weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> list[tuple[int, float]]:
        """BM25 over title, heading and text: (chunk id, score), higher is better.

        Each term is quoted as an FTS5 string and the terms are joined with OR, so no user text
        is ever read as FTS5 query syntax. `keep`, a mask over chunk ids, keeps only the
        passages where it is true, before the best `k` are taken; `weights` scale the title,
        heading and text columns.
        """
        wanted = list(dict.fromkeys(term for term in terms if term.strip()))
        if not wanted:
            return []
        if tuple(weights) == (1.0, 1.0, 1.0):
            # FTS5's own scores and order, summed from each word's kept array.
            found = [self._passage_terms.fetch(term) for term in wanted]
            rowids, scores = _summed(found, k, keep)
            return list(zip(rowids.tolist(), scores.tolist(), strict=True))
        quoted = ['"' + term.replace('"', '""') + '"' for term in wanted]
        rows = self._db().execute(
            "SELECT rowid, bm25(chunks_fts, ?, ?, ?) AS rank FROM chunks_fts "
            "WHERE chunks_fts MATCH ? ORDER BY rank, rowid LIMIT ?",
            # Filtered: every match, the mask applied below (LIMIT -1 is none).
            (*(float(w) for w in weights), " OR ".join(quoted), k if keep is None else -1),
        )
        # FTS5's bm25() is negated so that smaller sorts first; flip it back.
        hits = [(rowid, -rank) for rowid, rank in rows.fetchall()]
        if keep is not None:
            hits = [hit for hit in hits if hit[0] < len(keep) and keep[hit[0]]][:k]
        return hits

    def ceiling(self, terms: Sequence[str]) -> float:
        """The largest BM25 score `search(terms)` could give a passage here.

        FTS5's BM25 sums, over the query's terms, idf(t) times a term-frequency factor that
        approaches k1 + 1 (k1 = 1.2); idf(t) = ln((N - df + 0.5) / (df + 0.5)), at least 1e-6,
        from the number of passages N and those holding the term, df (terms found nowhere add
        nothing). A word's document frequency is the number of passages FTS5 itself matches for
        it (its tokenizer's stem, which is not always ours: "us" stays "us").
        """
        wanted = list(dict.fromkeys(term for term in terms if term.strip()))
        return bm25_ceiling([self.document_frequency(term) for term in wanted], self._passages)

    def document_frequency(self, term: str) -> int:
        """How many passages FTS5 matches for `term` (its own tokenizer decides, not ours): the
        rows of its kept scores, which a search for it has usually looked up already."""
        return len(self._passage_terms.fetch(term)[0])

    def article_search(
        self, terms: Sequence[str], k: int, keep: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """BM25 of whole articles (title, headings and text) for the query's terms.

        Returns the `k` best articles' codes (as `passage_keys` gives them) and scores, and
        the query's largest possible article BM25 (see `ceiling`); nothing (and 0.0)
        from a generation written before articles had their own full-text index. `keep`, a
        mask over article codes, keeps only the articles where it is true.
        """
        wanted = list(dict.fromkeys(term for term in terms if term.strip()))
        nothing = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), 0.0)
        if not wanted or not self.articles_indexed():
            return nothing
        # FTS5's BM25 of an OR query is the sum of each term's own BM25, so each term's
        # scores are looked up once and kept (a query's words are mostly words seen before).
        found = [self._article_terms.fetch(term) for term in wanted]
        codes, scores = _summed(found, k, keep)
        if not len(codes):
            return nothing
        # A word's document frequency is the number of articles holding it: its kept rows.
        return codes, scores, bm25_ceiling([len(rows) for rows, _ in found], self._articles)

    def articles_indexed(self) -> bool:
        if self._has_articles_fts is None:
            row = (
                self._db()
                .execute("SELECT 1 FROM sqlite_master WHERE name = 'articles_fts'")
                .fetchone()
            )
            self._has_articles_fts = row is not None
        return self._has_articles_fts


class TermScores:
    """Each word's BM25 in every row of one FTS5 table, looked up once and kept.

    FTS5's BM25 of an OR query is the sum of its terms' own BM25s (the same idf, the same length
    normalisation), so a query is a sum of its words' arrays, with FTS5's scores and order.
    Looking a word up reads its rows once (1.2-1.8 us a row against FTS5's ~1 us for a top-k
    OR query, which reads every row of every word each time); then it costs nothing. Kept up to
    `budget` bytes and `entries` words, least recently used dropped first; a word's cost is its
    key, its arrays and their objects, and the cache's own bookkeeping (`BoundedCache`), so a
    word found nowhere costs something too. A common word whose rows the build stored
    (`index.word_rows`) is read from them each time instead (~10 ns a row) and not kept.
    """

    def __init__(
        self,
        db: Callable[[], sqlite3.Connection],
        table: str,
        budget: int,
        entries: int,
        tokens: Tokens | None = None,
    ):
        self._db = db
        self._table = table
        self._stored = WordRows(db, table, tokens or Tokens())
        # Any one word may fill the budget: a word in most passages of a large corpus is the
        # one whose rows take longest to read again.
        self._kept: BoundedCache[str, tuple[np.ndarray, np.ndarray]] = BoundedCache(
            entries, budget, _term_cost, largest=budget
        )

    def get(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The kept rows and scores of `term`, or None when it was not looked up (or dropped)."""
        return self._kept.get(term)

    def fetch(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows holding `term` and its BM25 in each, looked up now if not kept."""
        kept = self._kept.get(term)
        if kept is not None:
            return kept
        stored = self._stored.get(term)
        if stored is not None:
            return stored
        rows = (
            self._db()
            .execute(
                f"SELECT rowid, bm25({self._table}) FROM {self._table} WHERE {self._table} MATCH ?",
                ('"' + term.replace('"', '""') + '"',),
            )
            .fetchall()
        )
        pairs = np.array(rows, dtype=np.float64).reshape(-1, 2)
        kept = (pairs[:, 0].astype(np.int64), -pairs[:, 1])  # bm25() is negated in FTS5
        self._kept.put(term, kept)
        return kept


# What a numpy array object holds besides its data (sys.getsizeof of an empty one: 112 bytes).
_ARRAY_OBJECT = 128


def _term_cost(term: str, kept: tuple[np.ndarray, np.ndarray]) -> int:
    """The bytes a kept word holds: its key, the pair, and both arrays with their data."""
    rowids, scores = kept
    return (
        sys.getsizeof(term)
        + sys.getsizeof(kept)
        + 2 * _ARRAY_OBJECT
        + rowids.nbytes
        + scores.nbytes
    )


def _summed(
    found: Sequence[tuple[np.ndarray, np.ndarray]], k: int, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The `k` rows with the largest summed score (ties to the smaller rowid) and their sums;
    only rows where the mask `keep` is true, when given."""
    if len(found) == 1:  # one word: its rows are distinct, its scores the sums
        rows, sums = found[0]
        if keep is not None:
            inside = rows < len(keep)
            rows, sums = rows[inside], sums[inside]
            kept = keep[rows]
            rows, sums = rows[kept], sums[kept]
        at = _best_candidates(sums, k)
        rows, sums = rows[at], sums[at]
    else:
        totals = np.bincount(
            np.concatenate([r for r, _ in found]), weights=np.concatenate([s for _, s in found])
        )
        if keep is not None:
            totals = totals[: len(keep)]
            totals = np.where(keep[: len(totals)], totals, 0.0)
        # FTS5's BM25 is positive wherever a word occurs (its idf is at least 1e-6): the rows
        # with a sum are the rows present.
        rows = _best_candidates(totals, k)
        sums = totals[rows]
    best = np.lexsort((rows, -sums))[:k]
    return rows[best].astype(np.int64, copy=False), sums[best]


# Past this many values, the best are found above a bound taken from a sample of them.
_SAMPLE = 16_384


def _best_candidates(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the positive values among the `k` largest, and of those tied with the k-th.

    Over many values (a common word's hundreds of thousands of rows), the k-th largest of every
    n-th value is a bound below the k-th largest of all: one pass keeps the few above it, and
    only they are partitioned.
    """
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    at: np.ndarray | None = None
    if len(values) >= 4 * _SAMPLE and k <= _SAMPLE // 4:
        sample = values[:: len(values) // _SAMPLE]
        bound = np.partition(sample, len(sample) - k)[len(sample) - k]
        if bound > 0:
            at = np.flatnonzero(values >= bound)
    if at is None:
        at = np.flatnonzero(values > 0)
    if len(at) > k:  # only the best k and those tied with the k-th
        found = values[at]
        kth = np.partition(found, len(found) - k)[len(found) - k]
        at = at[found >= kth]
    return at
