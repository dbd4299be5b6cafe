"""Query terms and highlighting."""

from __future__ import annotations

import gc
import random
import string
import tracemalloc

from semsearch.index.analysis import stem
from semsearch.search import text as text_module
from semsearch.search.text import highlight_spans, mark, query_terms


def test_query_terms_are_folded_and_distinct() -> None:
    assert query_terms('Power "outages" in Kyiv; POWER cut?') == [
        "power",
        "outages",
        "in",
        "kyiv",
        "cut",
    ]


def test_query_terms_drop_fts_syntax() -> None:
    assert query_terms('NEAR(a b) OR title:x* ^"') == ["near", "a", "b", "or", "title", "x"]


def test_highlight_matches_stems_and_skips_stopwords() -> None:
    text = "Strikes cut power; the outage hit Kyiv."
    spans = highlight_spans(text, "power outages in the city")
    assert [text[s:e] for s, e in spans] == ["power", "outage"]


def test_highlight_folds_accents() -> None:
    text = "The café reopened."
    assert [text[s:e] for s, e in highlight_spans(text, "cafe")] == ["café"]


def test_only_stopwords_still_highlight() -> None:
    text = "To be or not to be."
    assert highlight_spans(text, "to be") == [(0, 2), (3, 5), (13, 15), (16, 18)]


def test_mark_escapes_html() -> None:
    assert mark("<b> & power", [(6, 11)]) == "&lt;b&gt; &amp; <mark>power</mark>"


def test_highlighting_is_safe_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    text = "Negotiators negotiated relentlessly while generalisations proliferated. " * 20
    expected = highlight_spans(text, "negotiations generalisation proliferating")
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(
                lambda _: highlight_spans(text, "negotiations generalisation proliferating"),
                range(200),
            )
        )
    assert all(result == expected for result in results)


def _every_word_stemmed(text: str, query: str) -> list[tuple[int, int]]:
    """The plain highlighter: stem every word of the text."""
    from semsearch.index.analysis import TOKEN, stem
    from semsearch.search.text import _query_words

    wanted = _query_words(query).stems
    return [(m.start(), m.end()) for m in TOKEN.finditer(text) if stem(m.group()) in wanted]


def test_the_prefix_scan_marks_what_stemming_every_word_would() -> None:
    # Words whose Porter stem is not a prefix of the word (happi, hope, relat, mobl, poni),
    # upper case, digits, underscores (a word boundary for FTS5 but not for \b), one letter.
    text = (
        "HAPPY happiness Hoping hopped RELATIONAL relations mobility Mobilities ponies pony "
        "foo_bar bar_foo 2004 2004s s A i X1 x1y Conditional conditioned generalisation."
    )
    queries = [
        "happy hoping relational",
        "mobility ponies",
        "bar foo",
        "2004",
        "s",
        "x1 x1y",
        "conditions generalise",
        "the of",
        "happiness relate hop",
    ]
    for query in queries:
        assert highlight_spans(text, query) == _every_word_stemmed(text, query), query
    assert [text[s:e] for s, e in highlight_spans(text, "bar")] == ["bar", "bar"]


def test_non_ascii_text_is_scanned_word_by_word() -> None:
    text = "Éric's café in Zürich, HAPPY ÉCOLE"
    for query in ("eric", "cafe happy", "zurich ecole"):
        assert highlight_spans(text, query) == _every_word_stemmed(text, query)
    assert [text[s:e] for s, e in highlight_spans(text, "eric ecole")] == ["Éric", "ÉCOLE"]


def _queries(count: int, chars: int, seed: int, words: int = 3000) -> tuple[list[str], list[str]]:
    """`count` distinct queries of about `chars` characters, and the `words` words they are
    made of (stemmed once here, so that the stems' own cache does not grow while measuring)."""
    rng = random.Random(seed)
    vocabulary = sorted(
        {"".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))) for _ in range(words)}
    )
    for word in vocabulary:
        stem(word)
    queries: set[str] = set()
    while len(queries) < count:
        words, length = [], 0
        while length < chars:
            words.append(rng.choice(vocabulary))
            length += len(words[-1]) + 1
        queries.add(" ".join(words))
    return sorted(queries), vocabulary


def _held_after(work: list[str], text: str) -> int:
    """The bytes still held (traced) after highlighting `text` for each query of `work`."""
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    try:
        for query in work:
            highlight_spans(text, query)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()


def test_long_queries_keep_the_highlight_cache_within_its_bytes() -> None:
    """2,000 distinct queries of 1,000 characters (each with its stems and a compiled pattern of
    ~150 words, ~27 KB) are kept only up to the cache's byte budget: not 4,096 of them."""
    text_module._kept.clear()
    queries, _ = _queries(2000, 990, seed=0)
    for query in queries:
        highlight_spans("Power outages hit the city.", query)
    kept = text_module._kept
    assert kept.bytes <= text_module.HIGHLIGHT_CACHE_BYTES
    assert 400 < len(kept) < 1000
    assert kept.get(queries[-1]) is not None and kept.get(queries[0]) is None


def test_the_highlight_cache_counts_what_it_holds() -> None:
    """What kept queries really hold (traced) is no more than the bytes the cache counts for
    them, besides `re`'s own cache of its last 512 patterns (~10 KB each here)."""
    text_module._kept.clear()
    queries, _ = _queries(100, 990, seed=2)
    held = _held_after(queries, "Power outages hit the city.")
    kept = text_module._kept
    assert len(kept) == 100 and kept.bytes >= 100 * 20 * 1024  # stems and pattern counted
    assert held <= kept.bytes + 100 * 12 * 1024


def test_short_queries_keep_the_highlight_cache_within_its_entries() -> None:
    text_module._kept.clear()
    for i in range(text_module.HIGHLIGHT_CACHE_ENTRIES + 500):
        highlight_spans("Power outages hit the city.", f"power outage number {i}")
    assert len(text_module._kept) == text_module.HIGHLIGHT_CACHE_ENTRIES
    assert text_module._kept.bytes <= text_module.HIGHLIGHT_CACHE_BYTES


def test_a_query_over_the_limit_is_highlighted_but_not_kept() -> None:
    """A query longer than any search takes (the article page's ?q= had no limit) is neither
    kept nor compiled into a pattern; its words are still marked, stemming every word."""
    text_module._kept.clear()
    queries, vocabulary = _queries(20, 100_000, seed=1, words=20_000)
    assert all(len(query) > text_module.HIGHLIGHT_CACHE_CHARS for query in queries)
    text = " ".join(vocabulary[:200]) + " Power outages hit the city."
    held = _held_after(queries, text)
    assert held < 4 * 1024 * 1024
    assert len(text_module._kept) == 0
    spans = highlight_spans(text, queries[0])
    assert spans and spans == _every_word_stemmed(text, queries[0])
