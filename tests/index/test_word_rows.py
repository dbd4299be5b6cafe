"""Common words' rows stored at build time (`index.word_rows`): the same BM25 as FTS5's own."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from semsearch.index import lexical, word_rows
from semsearch.index.builder import build_index
from semsearch.index.faiss_generation import FaissGeneration
from semsearch.index.faiss_layout import STORE
from semsearch.index.word_rows import Tokens

# Words of very different frequencies: the first few are in most passages.
VOCABULARY = [
    "market", "markets", "running", "runs", "government", "said", "year", "people",
    "phone", "mobile", "music", "digital", "film", "election", "minister", "court",
    "energy", "price", "bank", "football", "players", "coach", "software", "virus",
]  # fmt: skip


def write_corpus(folder: Path, articles: int = 40, seed: int = 3) -> None:
    """Articles of a few paragraphs of words drawn from VOCABULARY, the first words far more
    often than the last (as in real text)."""
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) ** 2 for rank in range(len(VOCABULARY))]
    folder.mkdir()
    for number in range(articles):
        paragraphs = [
            " ".join(rng.choices(VOCABULARY, weights, k=rng.randint(4, 16))).capitalize() + "."
            for _ in range(rng.randint(2, 6))
        ]
        title = " ".join(rng.choices(VOCABULARY, k=3)).title()
        (folder / f"{number:03}.txt").write_text(title + "\n\n" + "\n\n".join(paragraphs) + "\n")


def build(tmp_path: Path, name: str, embedder, monkeypatch: pytest.MonkeyPatch, rows: int) -> Path:
    """The corpus of `write_corpus` indexed with words in `rows` rows or more stored."""
    monkeypatch.setattr(word_rows, "COMMON_ROWS", rows)
    if not (tmp_path / "corpus").exists():
        write_corpus(tmp_path / "corpus")
    build_index(tmp_path / "corpus", tmp_path / name, embedder)
    return tmp_path / name


@pytest.fixture
def common_words_index(tmp_path: Path, fake_embedder, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An index whose words in 20 rows or more are stored."""
    return build(tmp_path, "index", fake_embedder, monkeypatch, 20)


def stored_tokens(index_dir: Path) -> dict[str, set[str]]:
    live = (index_dir / "CURRENT").read_text().strip()
    with sqlite3.connect(index_dir / live / STORE) as connection:
        if not connection.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'word_rows'"
        ).fetchone():
            return {}
        rows = connection.execute("SELECT source, token FROM word_rows").fetchall()
    found: dict[str, set[str]] = {}
    for source, token in rows:
        found.setdefault(source, set()).add(token)
    return found


def test_the_words_in_enough_rows_are_stored_for_both_tables(common_words_index: Path) -> None:
    tokens = stored_tokens(common_words_index)
    live = (common_words_index / "CURRENT").read_text().strip()
    with sqlite3.connect(common_words_index / live / STORE) as connection:
        for table in ("chunks_fts", "articles_fts"):
            connection.execute(f"CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, {table}, row)")
            counts = dict(connection.execute("SELECT term, doc FROM temp.v").fetchall())
            connection.execute("DROP TABLE temp.v")
            assert tokens[table] == {token for token, count in counts.items() if count >= 20}
            assert {"market", "run"} <= tokens[table] < set(counts)  # the rarest left to FTS5


@pytest.mark.parametrize("older", [False, True], ids=["none-stored", "older-generation"])
def test_stored_words_give_fts5s_own_scores_and_order(
    common_words_index: Path,
    tmp_path: Path,
    fake_embedder,
    monkeypatch: pytest.MonkeyPatch,
    older: bool,
) -> None:
    """Every query, ranked from the stored rows, is exactly what FTS5 gives without them (a
    build that stores none, or one written before they were): the same passages, articles,
    scores, ties and document frequencies."""
    if older:
        monkeypatch.setattr(lexical, "write_word_rows", lambda connection, table: 0)
    plain = build(tmp_path, "plain", fake_embedder, monkeypatch, 10**9)
    before = FaissGeneration.open(plain)
    after = FaissGeneration.open(common_words_index)
    rng = random.Random(7)
    queries = [["market"], ["running"], ["markets", "runs", "virus"], ["said", "year", "people"]]
    queries += [rng.sample(VOCABULARY, rng.randint(1, 4)) for _ in range(30)]
    try:
        assert (
            after._lexical._passage_terms._stored.stored()
            == stored_tokens(common_words_index)["chunks_fts"]
        )
        assert not before._lexical._passage_terms._stored.stored()
        assert not stored_tokens(plain)
        for terms in queries:
            assert after._lexical.search(terms, 15) == before._lexical.search(terms, 15)
            assert after._lexical.ceiling(terms) == before._lexical.ceiling(terms)
            codes, scores, ceiling = after._lexical.article_search(terms, 10)
            plain = before._lexical.article_search(terms, 10)
            assert codes.tolist() == plain[0].tolist()
            assert scores.tolist() == plain[1].tolist()
            assert ceiling == plain[2]
            keep = np.arange(2000) % 3 == 0
            assert after._lexical.search(terms, 5, keep) == before._lexical.search(terms, 5, keep)
    finally:
        before.close()
        after.close()


def test_a_stored_word_is_read_from_its_rows_not_from_fts5(common_words_index: Path) -> None:
    store = FaissGeneration.open(common_words_index)
    try:
        scores = store._lexical._passage_terms
        rowids, values = scores.fetch("markets")  # stored as "market"
        assert len(rowids) >= 20 and rowids.dtype.kind == "i" and values.dtype == np.float64
        assert not rowids.flags.writeable  # views of the stored bytes, not copies
        assert scores.get("markets") is None  # read from the stored rows each time, not kept
        stored = stored_tokens(common_words_index)["chunks_fts"]
        tokens = Tokens()
        rare = next(
            w for w in VOCABULARY if tokens.token(w) not in stored and scores.fetch(w)[0].size
        )
        assert scores.get(rare) is not None  # a rarer word: read from FTS5 and kept
    finally:
        store.close()


def test_tokens_are_fts5s_own() -> None:
    tokens = Tokens()
    assert tokens.token("running") == "run"
    assert tokens.token("Naïve") == "naiv"
    assert tokens.token("said") == "said"
    assert tokens.token("don't") is None  # two tokens: a phrase, left to FTS5
    assert tokens.token("...") is None
    assert tokens.token("running") == "run"  # (kept)
