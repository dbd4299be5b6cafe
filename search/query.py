"""What a query may be: its modes, the bounds on its text and k, and the checks of them."""

from __future__ import annotations

from typing import get_args

from semsearch.search.errors import InvalidQuery
from semsearch.search.settings import Mode

__all__ = ["MAX_K", "MAX_QUERY_CHARS", "MODES", "check_query_text", "validate_query"]

MODES: tuple[str, ...] = get_args(Mode)
MAX_QUERY_CHARS = 1000
MAX_K = 100


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
