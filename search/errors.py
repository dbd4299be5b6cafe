"""Search errors; the rest of the tree lives in `index.errors`.

SemsearchError
├── InvalidQuery     the query, k or mode is out of bounds
└── UnknownPassage   no passage has this chunk id (similar passages)
"""

from __future__ import annotations

from semsearch.index.errors import SemsearchError

__all__ = ["InvalidQuery", "UnknownPassage"]


class InvalidQuery(SemsearchError):
    """The query text, k or mode cannot be searched."""


class UnknownPassage(SemsearchError):
    """No passage of the searched generation has this chunk id."""
