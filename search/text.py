"""Query text: terms for the lexical leg, and the spans of a passage to highlight."""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Sequence
from typing import NamedTuple

from semsearch.index.analysis import TOKEN as _TOKEN
from semsearch.index.analysis import fold as _fold
from semsearch.index.analysis import stem as _stem
from semsearch.index.bounded_cache import BoundedCache
from semsearch.search.query import MAX_QUERY_CHARS

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


# Each highlighted query's stems and word pattern, kept for the other passages of its results
# and its next pages, least recently used dropped first, bounded in entries and bytes (a
# query's key, stems and compiled pattern: ~2-3 KB for a query of a few words, ~27 KB for one
# of 1,000 characters, so 16 MB keep 4,096 ordinary queries or ~600 of the longest). A query
# longer than the searches' own limit (MAX_QUERY_CHARS) is neither kept nor compiled into a
# pattern (`re` keeps its last 512 patterns too): each of its passages' words is stemmed.
HIGHLIGHT_CACHE_ENTRIES = 4096
HIGHLIGHT_CACHE_BYTES = 16 * 1024 * 1024
HIGHLIGHT_CACHE_CHARS = MAX_QUERY_CHARS

# A pattern that finds nothing: for a query none of whose stems is ASCII.
_NOTHING = re.compile(r"(?!)")
# What a compiled pattern holds beyond sys.getsizeof (its code) and its source text: its group
# tables and flags (measured with tracemalloc: 100-260 bytes for queries of 30-1,000 chars).
_PATTERN_OBJECTS = 512


class _QueryWords(NamedTuple):
    """What highlighting needs of a query: its stems, and `candidates`, a pattern finding the
    words of ASCII text that may stem to one of them (None: stem every word)."""

    stems: frozenset[str]
    candidates: re.Pattern[str] | None


def _query_cost(query: str, words: _QueryWords) -> int:
    """The bytes a kept query holds: its text, its stems, its pattern and their containers."""
    cost = sys.getsizeof(query) + sys.getsizeof(words) + sys.getsizeof(words.stems)
    cost += sum(sys.getsizeof(word) for word in words.stems)
    if words.candidates is not None and words.candidates is not _NOTHING:
        pattern = words.candidates
        cost += sys.getsizeof(pattern) + sys.getsizeof(pattern.pattern) + _PATTERN_OBJECTS
    return cost


_kept: BoundedCache[str, _QueryWords] = BoundedCache(
    HIGHLIGHT_CACHE_ENTRIES, HIGHLIGHT_CACHE_BYTES, _query_cost
)


def _query_words(query: str) -> _QueryWords:
    """The stems of a query and its candidates pattern, kept for the next passages."""
    words = _kept.get(query)
    if words is None:
        stems = frozenset(_stems(query_terms(query)))
        if len(query) > HIGHLIGHT_CACHE_CHARS:
            return _QueryWords(stems, None)
        words = _QueryWords(stems, _ascii_candidates(stems))
        _kept.put(query, words)
    return words


def _ascii_candidates(stems: frozenset[str]) -> re.Pattern[str]:
    """A pattern for the words of lower-cased ASCII text that may stem to one of `stems`.

    Porter stemming rewrites at most the last few letters of a word (the stem of "happy" is
    "happi", of "hoping" "hope"), so a word stems to `s` only if it starts with `s` less its
    last two letters; checked on the 66,000 distinct words of the BBC and SciFact corpora, no
    stem differs from its word before its last letter. Scanning for those prefixes in C and
    stemming only the words found is many times faster than stemming every word.
    """
    prefixes = {stem[: max(1, len(stem) - 2)] for stem in stems if stem.isascii()}
    if not prefixes:
        return _NOTHING
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
    # Case-sensitive, for lower-cased text: 40% faster than IGNORECASE on the original.
    return re.compile(rf"(?<![a-z0-9])(?:{alternatives})[a-z0-9]*")


def highlight_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Character spans of `text` whose words match a query term after Porter stemming."""
    wanted, candidates = _query_words(query)
    if not wanted:
        return []
    if candidates is not None and text.isascii():
        # Its words are runs of [A-Za-z0-9], and folding is lower-casing, which keeps every
        # offset: the candidates pattern reads the lower-cased text.
        words = candidates.finditer(text.lower())
    else:
        words = _TOKEN.finditer(text)
    return [(word.start(), word.end()) for word in words if _stem(word.group()) in wanted]


def mark(text: str, spans: Sequence[tuple[int, int]], answer: tuple[int, int] | None = None) -> str:
    """HTML-escaped text with each span wrapped in <mark>…</mark>, and the `answer` span (when
    given) in <span class="answer">…</span> around them: a mark that crosses its edges is cut
    there, so that the tags nest."""
    if answer is not None:
        start, end = answer
        inside = [(max(a, start) - start, min(b, end) - start) for a, b in spans]
        return (
            mark(text[:start], [(a, min(b, start)) for a, b in spans if a < start])
            + '<span class="answer">'
            + mark(text[start:end], [(a, b) for a, b in inside if a < b])
            + "</span>"
            + mark(text[end:], [(max(a, end) - end, b - end) for a, b in spans if b > end])
        )
    parts, position = [], 0
    for start, end in spans:
        parts.append(html.escape(text[position:start]))
        parts.append(f"<mark>{html.escape(text[start:end])}</mark>")
        position = end
    parts.append(html.escape(text[position:]))
    return "".join(parts)
