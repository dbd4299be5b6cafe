"""A synthetic archive for `semsearch bench --scale`: articles recombined from real sentences.

The sentences of a real corpus (the BBC articles) are drawn into as many new articles as a
passage count asks for, so the archive has the real vocabulary and term frequencies at any
size: each synthetic article takes a real article's title and draws its paragraphs' sentences
from that article (mostly) and another of its section; paragraphs have as many sentences as the
real corpus's paragraphs have (the same distribution), ten paragraphs an article on average.
Articles are `.txt` files (title line, blank line, paragraphs separated by blank lines) in one
folder per section (and a sub-folder per thousand articles).

Each source article has a topic (a few hundred topics, split between the sections); `topics`
maps every source sentence and title to its article's topic, for `SyntheticEmbedder`.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semsearch.index.articles import read_corpus
from semsearch.index.chunking import MIN_WORDS, sentences

__all__ = ["ScaleCorpus", "SourceArticle", "make_queries", "read_sources", "write_corpus"]

# Paragraphs of a synthetic article: uniform between these (10 on average).
PARAGRAPHS_PER_ARTICLE = (6, 14)
# A paragraph's sentences come from the article's own source this often, else from the other.
OWN_SOURCE_SHARE = 0.7
# Sentences in one paragraph, at most (the real distribution is cut here: a longer paragraph
# would be split by the chunker into pieces anyway).
MAX_SENTENCES = 6
ARTICLES_PER_FOLDER = 1000


@dataclass(frozen=True)
class SourceArticle:
    """A real article, as the generator draws from it: its title, section, topic, sentences."""

    title: str
    section: str
    topic: int
    sentences: tuple[str, ...]


@dataclass
class ScaleCorpus:
    """What `write_corpus` wrote: counts, and the topic of every piece it drew from."""

    folder: Path
    articles: int
    paragraphs: int
    sentences: int
    topics: dict[str, int] = field(default_factory=dict)


def read_sources(corpus: Path, topics: int = 256) -> tuple[list[SourceArticle], list[int]]:
    """The articles of a real corpus with their sentences (as the builder splits them) and the
    number of sentences of each of its paragraphs; files the readers skip are skipped.

    Topics are split evenly between the sections (folders); an article's topic within its
    section comes from a hash of its title.
    """
    read = [article for article in read_corpus(corpus, lambda _: None) if article.blocks]
    sections = sorted({article.section for article in read})
    share = max(1, topics // max(1, len(sections)))
    sources: list[SourceArticle] = []
    sizes: list[int] = []
    for article in read:
        found: list[str] = []
        for block in article.blocks:
            split = sentences(block.text)
            if split:
                sizes.append(len(split))
                found.extend(split)
        if not found:
            continue
        digest = int(hashlib.sha256(article.title.encode()).hexdigest()[:8], 16)
        topic = (sections.index(article.section) * share + digest % share) % topics
        sources.append(SourceArticle(article.title, article.section, topic, tuple(found)))
    if not sources:
        raise ValueError(f"no readable article with sentences under {corpus}")
    return sources, sizes


def write_corpus(
    sources: Sequence[SourceArticle],
    paragraph_sizes: Sequence[int],
    folder: Path,
    passages: int,
    seed: int = 0,
) -> ScaleCorpus:
    """Write synthetic articles holding `passages` paragraphs in all under `folder`.

    Deterministic for a seed. Each paragraph has at least `MIN_WORDS` words, so the chunker
    keeps it as a passage of its own (one that is too long for the model is split, a few).
    """
    rng = np.random.default_rng(seed)
    by_section: dict[str, list[int]] = {}
    for number, source in enumerate(sources):
        by_section.setdefault(source.section, []).append(number)
    sizes = np.clip(np.asarray(paragraph_sizes or [3]), 1, MAX_SENTENCES)
    corpus = ScaleCorpus(folder, 0, 0, 0)
    for source in sources:
        corpus.topics.setdefault(source.title, source.topic)
        for sentence in source.sentences:
            corpus.topics.setdefault(sentence, source.topic)
    low, high = PARAGRAPHS_PER_ARTICLE
    while corpus.paragraphs < passages:
        own = sources[int(rng.integers(len(sources)))]
        section = by_section[own.section]
        other = sources[section[int(rng.integers(len(section)))]]
        count = min(int(rng.integers(low, high + 1)), passages - corpus.paragraphs)
        paragraphs = []
        for _ in range(count):
            wanted = int(sizes[rng.integers(len(sizes))])
            drawn: list[str] = []
            while len(drawn) < wanted or sum(len(s.split()) for s in drawn) < MIN_WORDS:
                source = own if rng.random() < OWN_SOURCE_SHARE else other
                drawn.append(source.sentences[int(rng.integers(len(source.sentences)))])
            corpus.sentences += len(drawn)
            paragraphs.append(" ".join(drawn))
        number = corpus.articles
        section_folder = re.sub(r"[^\w-]+", "-", own.section).strip("-") or "main"
        place = folder / section_folder / f"{number // ARTICLES_PER_FOLDER:04d}"
        if number % ARTICLES_PER_FOLDER == 0 or not place.is_dir():
            place.mkdir(parents=True, exist_ok=True)
        text = own.title + "\n\n" + "\n\n".join(paragraphs) + "\n"
        (place / f"{number:07d}.txt").write_text(text, encoding="utf-8")
        corpus.articles += 1
        corpus.paragraphs += count
    return corpus


def make_queries(
    sources: Sequence[SourceArticle], count: int, sets: int, seed: int = 1
) -> list[list[str]]:
    """`sets` sets of `count` queries of the same kinds, no query in two sets: half real
    headlines, a quarter the openings of real sentences (4 to 8 words), a quarter two to four of
    the corpus's 50 most common words (long posting lists: the lexical leg's worst case).

    Fewer when the corpus has too few headlines and sentences for that many distinct queries.
    """
    rng = np.random.default_rng(seed)
    words = Counter(
        word.lower().strip(".,;:!?\"'()")
        for source in sources
        for sentence in source.sentences
        for word in sentence.split()
    )
    common = [word for word, _ in words.most_common(60) if word.isalpha()][:50]
    made: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(made) < sets * count and attempts < 100 * sets * count:
        attempts += 1
        kind = (len(made) // sets) % 4  # each set gets every kind in turn
        source = sources[int(rng.integers(len(sources)))]
        sentence = source.sentences[int(rng.integers(len(source.sentences)))]
        opening = " ".join(sentence.split()[: int(rng.integers(4, 9))])
        if kind in (0, 1):
            # (a small corpus runs out of headlines: openings then)
            query = source.title if source.title not in seen else opening
        elif kind == 2:
            query = opening
        else:
            picked = rng.choice(len(common), size=int(rng.integers(2, 5)), replace=False)
            query = " ".join(common[i] for i in picked)
        if query and query not in seen:
            seen.add(query)
            made.append(query)
    return [made[start::sets] for start in range(sets)]
