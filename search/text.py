"""Query text: terms for the lexical leg, and the spans of a passage to highlight."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache

from semsearch.index.analysis import TOKEN as _TOKEN
from semsearch.index.analysis import fold as _fold
from semsearch.index.analysis import stem as _stem

__all__ = ["highlight_spans", "lexical_terms", "mark", "query_terms"]

# Words too common to be worth highlighting (they still count in BM25, weighted by IDF).
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves""".split()
)


def query_terms(query: str) -> list[str]:
    """The distinct tokens of a query, case-folded, in order: what the lexical leg searches for."""
    return list(dict.fromkeys(_fold(token) for token in _TOKEN.findall(query)))


def lexical_terms(query: str) -> list[str]:
    """The query terms the lexical leg searches for: stopwords left out unless nothing else is left.

    Measured on scifact-dev and bbc-dev, dropping them helps BM25 on question-style queries a
    little, and it keeps OR-queries from matching nearly every passage.
    """
    terms = query_terms(query)
    return [term for term in terms if term not in _STOPWORDS] or terms


def _stems(terms: Sequence[str]) -> set[str]:
    content = [term for term in terms if term not in _STOPWORDS] or list(terms)
    return {_stem(term) for term in content} - {""}  # "s" stems to nothing: no word to mark


@lru_cache(maxsize=4096)
def _query_stems(query: str) -> frozenset[str]:
    return frozenset(_stems(query_terms(query)))


@lru_cache(maxsize=4096)
def _ascii_candidates(query: str) -> re.Pattern[str] | None:
    """A pattern for the words of ASCII text that may stem to one of the query's stems.

    Porter stemming rewrites at most the last few letters of a word (the stem of "happy" is
    "happi", of "hoping" "hope"), so a word stems to `s` only if it starts with `s` less its
    last two letters; checked on the 66,000 distinct words of the BBC and SciFact corpora, no
    stem differs from its word before its last letter. Scanning for those prefixes in C and
    stemming only the words found is many times faster than stemming every word.
    """
    prefixes = {stem[: max(1, len(stem) - 2)] for stem in _query_stems(query) if stem.isascii()}
    if not prefixes:
        return None
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})[A-Za-z0-9]*", re.IGNORECASE)


def highlight_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Character spans of `text` whose words match a query term after Porter stemming."""
    wanted = _query_stems(query)
    if not wanted:
        return []
    if text.isascii():  # its words are runs of [A-Za-z0-9], and folding is lower-casing
        candidates = _ascii_candidates(query)
        if candidates is None:
            return []
        words = candidates.finditer(text)
    else:
        words = _TOKEN.finditer(text)
    return [(word.start(), word.end()) for word in words if _stem(word.group()) in wanted]


def mark(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """HTML-escaped text with each span wrapped in <mark>…</mark>."""
    parts, position = [], 0
    for start, end in spans:
        parts.append(html.escape(text[position:start]))
        parts.append(f"<mark>{html.escape(text[start:end])}</mark>")
        position = end
    parts.append(html.escape(text[position:]))
    return "".join(parts)
