"""Chunking: paragraphs, headings, boilerplate, long-paragraph splits, tiny-fragment merges."""

from __future__ import annotations

from pathlib import Path

import pytest

from semsearch.index.articles import Article, parse_article, read_article
from semsearch.index.chunking import (
    chunk_article,
    chunk_articles,
    classify_blocks,
    count_words,
    sentences,
    split_long_text,
)
from semsearch.index.readers.model import assemble
from tests.conftest import SEED_FILE, SEEDS

SEED_FIRST_WORDS = [
    "On eve of day two",
    "Ukraine and Russia ended",
    "Ukrainian President Volodymyr Zelenskyy",
    "The talks were attended",
    "A UAE government statement",
    "The initial US draft",
    "Before the discussions, Kremlin",
    "While Russia controls all",
    "Reporting from Kyiv, Al",
    "On the eve of the second",
    "Kyiv City Military Administration",
    "Kharkiv regional head",
    "Ukrainian Foreign Minister Andrii",
    "“This barbaric attack",
    "It emerged on Monday",
    "Kira Rudik, a Ukrainian",
    "“This has been Putin’s",
    "Reporting on the talks,",
]


@pytest.fixture(scope="module")
def seed_chunks():
    article = read_article(SEED_FILE, SEEDS, lambda _: None)
    return article, chunk_article(article)


def test_seed_passages_exactly(seed_chunks) -> None:
    _, chunks = seed_chunks
    assert len(chunks) == len(SEED_FIRST_WORDS)
    for chunk, words in zip(chunks, SEED_FIRST_WORDS, strict=True):
        assert " ".join(chunk.text.split()).startswith(words)  # the seed has no-break spaces
    assert [c.paragraph for c in chunks] == list(range(1, 19))
    assert all(c.part == 0 for c in chunks)


def test_seed_spans_point_into_the_file(seed_chunks) -> None:
    _, chunks = seed_chunks
    source = SEED_FILE.read_text(encoding="utf-8")
    assert all(source[c.start : c.end] == c.text for c in chunks)


def test_seed_subheading_is_context_of_following_paragraphs(seed_chunks) -> None:
    _, chunks = seed_chunks
    assert {c.heading for c in chunks[:9]} == {""}
    assert {c.heading for c in chunks[9:]} == {"‘Cynical’ attack during talks"}
    assert chunks[9].embed_text.split("\n")[1] == "‘Cynical’ attack during talks"


def test_seed_has_no_boilerplate_or_title_passage(seed_chunks) -> None:
    article, chunks = seed_chunks
    texts = " ".join(c.text for c in chunks)
    for junk in ["Recommended Stories", "itemsend of list", "Post Comment", article.title]:
        assert junk not in texts
    assert all(c.embed_text.startswith(article.title + "\n") for c in chunks)


def test_short_line_is_heading_only_before_a_paragraph() -> None:
    article = parse_article(
        "a.txt", "T\n\nIntro sentence here.\n\nA heading\n\nBody under it.\n\nTrailing line"
    )
    labels = [label for label, _ in classify_blocks(article)]
    assert labels == ["paragraph", "heading", "paragraph", "fragment"]


def test_list_items_are_kept_as_one_passage() -> None:
    text = "T\n\nThe nominees are listed below.\n\nLittle Britain (BBC Three)\n\nDoc Martin (ITV1)"
    chunks = chunk_article(parse_article("a.txt", text))
    assert chunks[-1].text == "Little Britain (BBC Three)\n\nDoc Martin (ITV1)"


def test_tiny_paragraph_merges_into_previous() -> None:
    text = (
        "T\n\nA full first paragraph with several words.\n\nHe agreed.\n\n"
        "Another real paragraph of text here."
    )
    chunks = chunk_article(parse_article("a.txt", text))
    assert [c.text for c in chunks] == [
        "A full first paragraph with several words.\n\nHe agreed.",
        "Another real paragraph of text here.",
    ]
    assert [c.paragraph for c in chunks] == [1, 3]
    assert text[chunks[0].start : chunks[0].end].endswith("He agreed.")


def test_leading_tiny_paragraph_merges_into_next() -> None:
    chunks = chunk_article(
        parse_article("a.txt", "T\n\nYes.\n\nA full paragraph of several words.")
    )
    assert [c.text for c in chunks] == ["Yes.\n\nA full paragraph of several words."]


def test_long_paragraph_splits_at_sentences_without_loss() -> None:
    sentences = [f"Sentence number {i} has exactly seven words." for i in range(40)]
    paragraph = " ".join(sentences)
    chunks = chunk_article(parse_article("a.txt", f"T\n\n{paragraph}"), token_limit=60)
    # With the title's one word, 8 sentences make 57 words and 9 would make 64: 5 pieces of 8.
    assert [c.text for c in chunks] == [" ".join(sentences[i : i + 8]) for i in range(0, 40, 8)]
    assert [count_words(c.embed_text) for c in chunks] == [57] * 5
    assert [c.part for c in chunks] == list(range(len(chunks)))
    assert {c.paragraph for c in chunks} == {1}


def test_sentence_longer_than_budget_splits_between_words() -> None:
    text = "word " * 50
    spans = split_long_text(text, budget=20)
    pieces = [text[s:e] for s, e in spans]
    assert " ".join(pieces).split() == text.split()
    # 50 words at 20 a piece need 3 pieces, balanced: 17, 17 and 16 words.
    assert [count_words(p) for p in pieces] == [17, 17, 16]
    assert spans == [(0, 84), (85, 169), (170, 249)]  # between words, the trailing space left out


def test_token_counter_is_used_for_the_limit() -> None:
    paragraph = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota."
    doubled = chunk_article(
        parse_article("a.txt", f"T\n\n{paragraph}"),
        count_tokens=lambda t: 2 * len(t.split()),
        token_limit=12,
    )
    assert [c.text for c in doubled] == [
        "Alpha beta gamma.",
        "Delta epsilon zeta.",
        "Eta theta iota.",
    ]


def test_chunking_many_articles_counts_tokens_together_and_gives_the_same_chunks() -> None:
    long = " ".join(f"Sentence number {i} adds a little more than before." for i in range(40))
    seed = read_article(SEED_FILE, SEEDS, lambda _: None)
    assert seed is not None
    articles = [
        parse_article("a.txt", f"Title A\n\nFirst paragraph of A here.\n\n{long}"),
        parse_article("b.txt", "Title B\n\nA heading\n\nIts paragraph has words.\n\nTiny.\n\nOk."),
        seed,
    ]

    def count(text: str) -> int:
        return 2 * len(text.split())

    alone: list[str] = []
    batched: list[list[str]] = []

    def count_one(text: str) -> int:
        alone.append(text)
        return count(text)

    def count_many(texts: list[str]) -> list[int]:
        batched.append(list(texts))
        return [count(text) for text in texts]

    expected = [chunk_article(a, count_tokens=count, token_limit=60) for a in articles]
    got = chunk_articles(articles, count_tokens=count_one, count_many=count_many, token_limit=60)
    assert got == expected
    assert any(len(chunks) > 2 for chunks in got)  # the long paragraph was split
    # Every paragraph and context was counted in the first batch call, the sentences of a
    # paragraph split at sentences in one more (none when all were counted already); only
    # words of an over-long sentence, and a title shortened to fit, are counted one by one.
    split = sum(1 for chunks in got for c in chunks if c.part == 1)
    assert 2 <= len(batched) <= 1 + split
    assert "Title A" in batched[0] and "Title B\nA heading" in batched[0]
    assert "Its paragraph has words.\n\nTiny.\n\nOk." in batched[0]  # (tiny ones merged)
    assert long in batched[0] and any(s.startswith("Sentence number 7 ") for s in batched[1])
    assert len(batched[0]) == len(set(batched[0]))  # each text counted once
    assert all(len(text.split()) == 1 or seed.title.startswith(text) for text in alone)
    # Without a batch counter, the same chunks, counted one by one.
    assert chunk_articles(articles, count_tokens=count, token_limit=60) == expected


def test_sentences_of_a_passage() -> None:
    text = (
        "Mr. Smith flew to Washington on Monday. Yes. "
        "He said prices rose 3.5% in May! Then the café closed early"
    )
    assert sentences(text) == [
        "Mr. Smith flew to Washington on Monday.",
        "He said prices rose 3.5% in May!",
        "Then the café closed early",
    ]  # "Yes." is too short to stand alone
    assert sentences("") == [] and sentences("   ") == [] and sentences("Two words.") == []


def with_roles(*blocks: tuple[str, str]) -> Article:
    """An article of blocks whose reader gave them roles (as HTML and Markdown readers do)."""
    parts = [(text, role, "p") for text, role in blocks]
    return Article("a.html", Path("a.html"), "The title", assemble(parts, "The title"))


def test_a_heading_role_is_a_heading_whatever_its_punctuation() -> None:
    article = with_roles(
        ("Why did the council vote for it?", "heading"),  # a question: text rules say paragraph
        ("The council approved the plan by eleven votes to four.", "paragraph"),
        ("What comes next", "heading"),
        ("Construction begins next spring if the survey finds no harm.", "paragraph"),
    )
    assert [label for label, _ in classify_blocks(article)] == [
        "heading", "paragraph", "heading", "paragraph"]  # fmt: skip
    chunks = chunk_article(article)
    assert [(c.heading, c.text[:16]) for c in chunks] == [
        ("Why did the council vote for it?", "The council appr"),
        ("What comes next", "Construction beg"),
    ]
    assert chunks[0].embed_text.startswith("The title\nWhy did the council vote for it?\n")


def test_a_paragraph_role_is_never_relabelled_a_heading_or_fragment() -> None:
    article = with_roles(
        ("A short line", "paragraph"),  # a heading by the plain-text rules
        ("A full paragraph that follows the short line above.", "paragraph"),
        ("one more short line", "paragraph"),  # a fragment by the plain-text rules
        ("another", "paragraph"),
    )
    assert [label for label, _ in classify_blocks(article)] == ["paragraph"] * 4
    chunks = chunk_article(article)
    assert {c.heading for c in chunks} == {""}
    # Tiny paragraphs still merge with a neighbour, whatever their role.
    assert [c.text for c in chunks] == [
        "A short line\n\nA full paragraph that follows the short line above.\n\n"
        "one more short line\n\nanother"
    ]


def test_boilerplate_and_the_title_are_dropped_whatever_the_role() -> None:
    article = with_roles(
        ("The title", "heading"),
        ("Advertisement", "paragraph"),
        ("A real paragraph of the article, long enough to stand.", "paragraph"),
    )
    assert [label for label, _ in classify_blocks(article)] == [
        "boilerplate", "boilerplate", "paragraph"]  # fmt: skip


def test_blocks_without_a_role_keep_the_plain_text_rules() -> None:
    plain = parse_article("a.txt", "T\n\nIntro sentence here.\n\nA heading\n\nBody under it.")
    assert all(block.role == "" for block in plain.blocks)
    assert [label for label, _ in classify_blocks(plain)] == ["paragraph", "heading", "paragraph"]
