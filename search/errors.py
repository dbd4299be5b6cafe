"""Search errors; the rest of the tree lives in `index.errors`.

SemsearchError
└── InvalidQuery     the query, k or mode is out of bounds
"""

from __future__ import annotations

from semsearch.index.errors import SemsearchError

__all__ = ["InvalidQuery"]


class InvalidQuery(SemsearchError):
    """The query text, k or mode cannot be searched."""
