"""Text analysis shared by the lexical legs and the highlighter: tokens, folding, Porter stems.

SQLite FTS5 analyses text itself (`porter unicode61 remove_diacritics 2`); this module does the
same in Python, for the highlighter and for stores whose engine analyses text differently (the
Milvus store indexes these stems, so its BM25 sees the words FTS5 sees).
"""

from __future__ import annotations

import re
import threading
import unicodedata

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
        if hasattr(stemmer, "maxCacheSize"):
            # PyStemmer's own cache (10,000 words a thread, bounded in nothing else) would keep
            # folded words of any length, and `stem` keeps what is worth keeping anyway.
            stemmer.maxCacheSize = 0
    return stemmer


# Stems kept for tokens of at most STEM_CACHE_CHARS characters whose stem is as short, up to
# STEM_CACHE_ENTRIES of them (then all are dropped and the cache fills again). A kept entry
# costs at most 2 x 204 bytes (a key and a stem of 32 four-byte characters) and ~60 bytes of
# dict, so under 50 MB in all however hostile the tokens (one character can fold to 18, so
# neither the key nor the stem is left unbounded); real words are far smaller (~170 bytes).
# Every word of the BBC and SciFact corpora fits in 32 characters (the longest chemical name
# has 31) but four run-together PDF fragments; 100,000 entries hold their 66,400 distinct
# words together. Longer tokens are stemmed each time (a few microseconds).
STEM_CACHE_CHARS = 32
STEM_CACHE_ENTRIES = 100_000


class _Stems(dict[str, str]):
    """Token -> stem, filled on a miss. A hit is one dict lookup in C, with no lock and no
    recency order to keep (stemming every word of the BBC corpus: ~80 ns a word, against ~90
    with functools.lru_cache and ~400 with a locked cachetools LRU), which matters since every
    word of every highlighted passage is stemmed. When full it is emptied whole. Safe between
    threads: each dict operation is atomic, and two threads missing one token store one stem
    (threads filling it at once may overshoot the entries by one each)."""

    def __missing__(self, token: str) -> str:
        found: str = _stemmer().stemWord(fold(token))
        if len(token) <= STEM_CACHE_CHARS and len(found) <= STEM_CACHE_CHARS:
            if len(self) >= STEM_CACHE_ENTRIES:
                self.clear()
            self[token] = found
        return found


_STEMS = _Stems()


def stem(token: str) -> str:
    """The Porter stem of a token, folded first; kept, since passages repeat their words."""
    return _STEMS[token]


def stems(text: str) -> list[str]:
    """The stem of every token of `text`, in order."""
    return [stem(token) for token in TOKEN.findall(text)]
