"""What a query may be: its modes, the bounds on its text, k, offset and filters, and the checks."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import get_args

from semsearch.index.stores import PassageFilter
from semsearch.search.errors import InvalidQuery
from semsearch.search.settings import Mode

__all__ = [
    "MAX_K",
    "MAX_QUERY_CHARS",
    "MAX_RESULTS",
    "MAX_SECTIONS",
    "MAX_SECTION_CHARS",
    "MODES",
    "check_date",
    "check_offset",
    "check_query_text",
    "check_sections",
    "make_filter",
    "validate_query",
]

MODES: tuple[str, ...] = get_args(Mode)
MAX_QUERY_CHARS = 1000
MAX_K = 100
# How deep paging goes: offset + k at most (the ranking is always looked at this deep).
MAX_RESULTS = 200
# Sections one search may name, and the length of each.
MAX_SECTIONS = 50
MAX_SECTION_CHARS = 200


def check_query_text(query: str) -> None:
    """Raise InvalidQuery unless `query` is searchable text (not blank, not too long, clean)."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidQuery("the query is empty: give some words to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"the query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    if "\x00" in query:
        raise InvalidQuery("the query contains a NUL character")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidQuery("the query is not valid Unicode (it holds a lone surrogate)") from None


def validate_query(query: str, k: int, mode: str) -> str:
    """Check a query before searching; returns it stripped. Raises InvalidQuery with the reason."""
    check_query_text(query)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidQuery(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    if mode not in MODES:
        raise InvalidQuery(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    return query.strip()


def check_offset(k: int, offset: int) -> None:
    """Raise InvalidQuery unless 0 <= offset and offset + k <= MAX_RESULTS."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidQuery(f"offset must be a whole number from 0, got {offset!r}")
    if offset + k > MAX_RESULTS:
        raise InvalidQuery(
            f"offset + k is {offset + k}; results go {MAX_RESULTS} deep at most "
            f"(offset + k <= {MAX_RESULTS})"
        )


def check_date(value: str, name: str) -> str:
    """An ISO date (YYYY-MM-DD) checked and written as such; InvalidQuery names `name` else."""
    text = value.strip() if isinstance(value, str) else value
    try:
        if not isinstance(text, str) or len(text) > 10:
            raise ValueError
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        shown = repr(value) if len(str(value)) <= 20 else repr(str(value)[:20] + "…")
        raise InvalidQuery(f"{name} must be a date written YYYY-MM-DD, not {shown}") from None


def check_sections(sections: Iterable[str]) -> tuple[str, ...]:
    """The sections named, each once, in order; InvalidQuery for a blank, long or odd one."""
    named = tuple(dict.fromkeys(sections))
    if len(named) > MAX_SECTIONS:
        raise InvalidQuery(f"{len(named)} sections named; the limit is {MAX_SECTIONS}")
    for section in named:
        if not isinstance(section, str) or not section.strip():
            raise InvalidQuery("a section is empty: name one, or leave section out")
        if len(section) > MAX_SECTION_CHARS:
            raise InvalidQuery(
                f"a section has {len(section)} characters; the limit is {MAX_SECTION_CHARS}"
            )
        if "\x00" in section:
            raise InvalidQuery("a section contains a NUL character")
        try:
            section.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidQuery(
                "a section is not valid Unicode (it holds a lone surrogate)"
            ) from None
    return tuple(sorted(named))


def make_filter(
    article: str | None = None,
    sections: Iterable[str] = (),
    after: str | None = None,
    before: str | None = None,
) -> PassageFilter:
    """The checked filter of a search (dates written YYYY-MM-DD, sections each once, sorted).

    Raises:
        InvalidQuery: a date that is not one, `after` later than `before`, a bad section.
    """
    first = None if after is None else check_date(after, "after")
    last = None if before is None else check_date(before, "before")
    if first is not None and last is not None and first > last:
        raise InvalidQuery(
            f"after ({first}) is later than before ({last}): no date is in between "
            "(both bounds are inclusive)"
        )
    return PassageFilter(article, check_sections(sections), first, last)
