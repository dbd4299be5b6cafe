"""Query terms and highlighting."""

from __future__ import annotations

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
    from semsearch.search.text import _query_stems

    wanted = _query_stems(query)
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
