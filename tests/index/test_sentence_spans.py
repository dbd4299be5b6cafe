"""`sentence_spans`: the offsets of exactly the sentences `sentences` gives (the embedding cache
and the sentence vectors are keyed on those texts, so `sentences` must not change)."""

from __future__ import annotations

import itertools

import pytest

from semsearch.index.chunking import SENTENCE_MIN_WORDS, sentence_spans, sentences
from tests.conftest import SEED_FILE

TRICKY = [
    "",
    "   ",
    "Yes. No. Maybe so.",
    "  Leading spaces here.   Trailing spaces there.  ",
    "Dr. Smith met Mr. Jones at 5 p.m. on Jan. 3. They talked for hours.",
    "Café résumé naïve — “quoted” text here. Second 😀 sentence is here! Third one… yes it is.",
    "He said: “Stop right there.” Then he left the room.\n\nA new paragraph starts here now.",
    "Line one without a stop\nline two continues the thought. And a\u00a0non-breaking space here.",
    "Numbers like 1.2 million and 3.5% stay whole. U.S. officials agreed on it.",
    "(A sentence in brackets stays whole.) [Another in square ones here.] Done now.",
]


def _sentences_before(text: str) -> list[str]:
    """`sentences` as it was written before `sentence_spans`: the cache's sentence texts."""
    import sentencex

    found = (part["text"].strip() for part in sentencex.get_sentence_boundaries("en", text))
    return [sentence for sentence in found if len(sentence.split()) >= SENTENCE_MIN_WORDS]


def _texts() -> list[str]:
    seed = SEED_FILE.read_text(encoding="utf-8")
    return [seed, *seed.split("\n\n"), *TRICKY]


@pytest.mark.parametrize("text", _texts())
def test_sentences_are_unchanged_and_the_spans_hold_them(text: str) -> None:
    spans = sentence_spans(text)
    assert sentences(text) == _sentences_before(text)
    assert [text[start:end] for start, end in spans] == _sentences_before(text)
    assert all(a < b <= c for (a, b), (c, _) in itertools.pairwise(spans))


def test_spans_are_offsets_in_the_text() -> None:
    text = "  Tiny. The first real sentence is here. Ok. And the second one follows it."
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "The first real sentence is here.",
        "And the second one follows it.",
    ]
    assert spans[0][0] == text.index("The first")
