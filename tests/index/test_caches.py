"""Caches a client can grow stay bounded in entries and in bytes, whatever it sends.

The lexical leg's per-word scores (`index.lexical.TermScores`), the stems of `index.analysis`,
and the cache they are built on (`index.bounded_cache`). Memory is measured with tracemalloc
(numpy reports its arrays to it too), so that a bound is checked against what is really kept,
not only against the cache's own count of it.
"""

from __future__ import annotations

import gc
import random
import string
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from semsearch.index import analysis, lexical
from semsearch.index.bounded_cache import ENTRY_OVERHEAD, BoundedCache
from semsearch.index.faiss_generation import FaissGeneration


@contextmanager
def traced() -> Iterator[Callable[[], int]]:
    """Trace allocations in the block; gives a function returning the bytes still held."""
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    try:
        yield lambda: (gc.collect(), tracemalloc.get_traced_memory()[0] - start)[1]
    finally:
        tracemalloc.stop()


def random_words(count: int, seed: int = 0) -> list[str]:
    """`count` distinct random lower-case words (that no passage of the seed article holds)."""
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choices(string.ascii_lowercase, k=rng.randint(6, 12))))
    return sorted(words)


# --- the lexical leg's word scores -------------------------------------------------------------


def test_random_words_keep_the_word_caches_within_their_bounds(fake_index: Path) -> None:
    """100,000 distinct words found nowhere (each an empty array, 0 bytes of numpy) fill the
    entries and bytes of each word cache only up to their bounds."""
    store = FaissGeneration.open(fake_index)
    words = random_words(100_000)
    try:
        index = store._lexical
        for word in words:
            assert index.search([word], 5) == []
            assert len(index.article_search([word], 5)[0]) == 0
        for terms, entries, budget in [
            (index._passage_terms, lexical.PASSAGE_TERMS_ENTRIES, lexical.PASSAGE_TERMS_BYTES),
            (index._article_terms, lexical.ARTICLE_TERMS_ENTRIES, lexical.ARTICLE_TERMS_BYTES),
        ]:
            assert len(terms._kept) == entries < 100_000  # the oldest words were dropped
            assert terms._kept.bytes <= budget
            # Every entry, empty or not, is charged its key and bookkeeping.
            assert terms._kept.bytes >= entries * (ENTRY_OVERHEAD + 49 + 56 + 2 * 112)
        # The words looked up last are kept, and real words are still found and kept.
        assert index._passage_terms.get(words[-1]) is not None
        assert index.search(["energy"], 3) and index._passage_terms.get("energy") is not None
    finally:
        store.close()


def test_word_caches_hold_no_more_memory_than_their_budgets(
    fake_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the word caches really hold (traced) stays within their byte budgets, and the bytes
    they count are no less than it: words found nowhere are not free."""
    monkeypatch.setattr(lexical, "PASSAGE_TERMS_BYTES", 2 * 1024 * 1024)
    monkeypatch.setattr(lexical, "ARTICLE_TERMS_BYTES", 1024 * 1024)
    store = FaissGeneration.open(fake_index)
    words = random_words(20_000, seed=1)
    try:
        index = store._lexical
        index.search(["energy"], 3)  # SQLite's own caches warmed up first
        index.article_search(["energy"], 3)
        with traced() as held:
            for word in words:
                index.search([word], 5)
                index.article_search([word], 5)
            grown = held()
        assert grown <= 3 * 1024 * 1024
        counted = index._passage_terms._kept.bytes + index._article_terms._kept.bytes
        assert grown <= counted
    finally:
        store.close()


def test_a_word_may_take_the_whole_budget(
    fake_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word's arrays may take the whole budget (re-reading a common word's rows is the costly
    miss), not only a part of it as a client's query may in other caches."""
    monkeypatch.setattr(lexical, "PASSAGE_TERMS_BYTES", 4096)
    store = FaissGeneration.open(fake_index)
    try:
        terms = store._lexical._passage_terms
        rows, _ = terms.fetch("talks")  # in every passage's title: ~1 KB with its bookkeeping
        assert len(rows) == 18 and terms._kept.bytes > 4096 // 16
        assert terms.get("talks") is not None
        terms.fetch("energy")  # and is dropped for others when they need the room
        assert terms.get("energy") is not None and terms._kept.bytes <= 4096
    finally:
        store.close()


# --- stems -------------------------------------------------------------------------------------


def test_stems_of_tokens_that_fold_long_are_not_kept() -> None:
    """U+FDFA folds to 18 characters: 20,000 distinct tokens of 32 characters made of it would
    keep ~1 KB of stem each; none is kept, and each is still stemmed right."""
    stemmer = analysis._stemmer()
    tokens = [f"{chr(0xFDFA) * 28}{i:04d}" for i in range(10_000)]
    tokens += [f"{string.ascii_lowercase * 40}{i:05d}" for i in range(10_000)]  # 1,045 chars
    with traced() as held:
        for token in tokens:
            analysis.stem(token)
        grown = held()
    assert grown < 512 * 1024
    first, last = analysis.stem(tokens[0]), analysis.stem(tokens[-1])
    assert first == stemmer.stemWord(analysis.fold(tokens[0])) and len(first) > 500
    assert last == stemmer.stemWord(analysis.fold(tokens[-1]))


def test_a_kept_stem_costs_what_its_bound_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """The costliest tokens that are kept (32 four-byte characters) hold under 500 bytes each,
    so a full cache stays under 50 MB."""
    monkeypatch.setattr(analysis, "_STEMS", analysis._Stems())
    rng = random.Random(2)
    count = 20_000
    with traced() as held:  # the tokens are made inside: their keys count
        tokens = [
            "".join(chr(0x20000 + rng.randrange(40_000)) for _ in range(analysis.STEM_CACHE_CHARS))
            for _ in range(count)
        ]
        for token in tokens:
            analysis.stem(token)
        del tokens, token
        grown = held()
    assert len(analysis._STEMS) == count
    assert grown / count < 500
    assert analysis.STEM_CACHE_ENTRIES * 500 <= 50 * 1024 * 1024


def test_the_stem_cache_is_bounded_in_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analysis, "_STEMS", analysis._Stems())
    words = random_words(analysis.STEM_CACHE_ENTRIES + 5_000, seed=3)
    for word in words:
        analysis.stem(word)
        assert len(analysis._STEMS) <= analysis.STEM_CACHE_ENTRIES
    assert words[-1] in analysis._STEMS  # filled again after it was emptied
    assert analysis.stem("Running") == analysis.stem("running") == "run"
    assert analysis.stem("Café") == "cafe"


# --- the bounded cache itself ------------------------------------------------------------------


def test_bounded_cache_drops_the_least_recently_used_to_fit_entries_and_bytes() -> None:
    budget = 3 * ENTRY_OVERHEAD + 300
    cache: BoundedCache[str, bytes] = BoundedCache(3, budget, _cost, largest=budget)
    for key in "abc":
        cache.put(key, b"x" * 10)
    assert cache.get("a") == b"x" * 10  # now the most recently used
    cache.put("d", b"")  # a fourth entry, however small, drops the least recently used
    assert len(cache) == 3 and cache.get("b") is None and cache.get("a") is not None
    cache.put("e", b"y" * 250)  # too many bytes for c, d, a and e: c goes, the least used
    assert cache.bytes <= cache.max_bytes and cache.get("e") == b"y" * 250
    assert cache.get("c") is None and cache.get("d") == b"" and cache.get("a") is not None
    assert cache.bytes == 3 * ENTRY_OVERHEAD + 0 + 10 + 250


def test_bounded_cache_keeps_no_entry_larger_than_largest() -> None:
    cache: BoundedCache[str, bytes] = BoundedCache(10, 16 * 2 * ENTRY_OVERHEAD, _cost)
    cache.put("small", b"")
    cache.put("big", b"x" * 2 * ENTRY_OVERHEAD)  # over a sixteenth of the budget
    assert cache.get("big") is None and cache.get("small") == b""
    whole: BoundedCache[str, bytes] = BoundedCache(10, 4096, _cost, largest=4096)
    whole.put("big", b"x" * (4096 - ENTRY_OVERHEAD))
    assert whole.get("big") is not None and whole.bytes == 4096
    with pytest.raises(ValueError):
        BoundedCache(0, 4096, _cost)


def test_bounded_cache_is_safe_across_threads() -> None:
    cache: BoundedCache[int, bytes] = BoundedCache(50, 50 * (ENTRY_OVERHEAD + 64), _cost_int)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(5_000):
                key = rng.randrange(200)
                value = cache.get(key)
                assert value is None or value == bytes([key % 256]) * 8
                cache.put(key, bytes([key % 256]) * 8)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(cache) <= 50 and cache.bytes == len(cache) * (ENTRY_OVERHEAD + 8)


def _cost(key: str, value: bytes) -> int:
    return len(value)


def _cost_int(key: int, value: bytes) -> int:
    return len(value)
