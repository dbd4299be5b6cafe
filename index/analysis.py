"""Text analysis shared by the lexical legs and the highlighter: tokens, folding, Porter stems.

SQLite FTS5 analyses text itself (`porter unicode61 remove_diacritics 2`); this module does the
same in Python, for the highlighter and for stores whose engine analyses text differently (the
Milvus store indexes these stems, so its BM25 sees the words FTS5 sees).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

import snowballstemmer

__all__ = ["TOKEN", "fold", "stem", "stems"]

# Runs of letters and digits, as SQLite's unicode61 tokenizer cuts them.
TOKEN = re.compile(r"[^\W_]+")

_local = threading.local()


def fold(token: str) -> str:
    """Case-folded, with diacritics removed ("Café" -> "cafe")."""
    decomposed = unicodedata.normalize("NFKD", token.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _stemmer() -> snowballstemmer.stemmer:
    # The original Porter algorithm, as FTS5's porter tokenizer uses. A stemmer keeps state
    # while it works, so each thread gets its own.
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("porter")
    return stemmer


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """The Porter stem of a token, folded first; cached, since passages repeat their words."""
    return _stemmer().stemWord(fold(token))


def stems(text: str) -> list[str]:
    """The stem of every token of `text`, in order."""
    return [stem(token) for token in TOKEN.findall(text)]
