"""A least-recently-used cache bounded in entries and in bytes, safe to share between threads.

For caches whose keys a client chooses (a query's words, a query's highlighting pattern): a
cache bounded only in entries grows with the size of what it is sent, and one bounded only in
the bytes of its values keeps any number of empty ones. Here every entry costs `ENTRY_OVERHEAD`
(the cache's own bookkeeping) plus what its `cost` function says its key and value hold, so
both the number of entries and their bytes stay under the cache's bounds, whatever is sent.

Built on `cachetools.LRUCache` (sized in bytes through `getsizeof`) behind a lock: cachetools is
not thread-safe, and searches run in a thread pool. A hit is a lock, a dict lookup and a move
to the end of the recency order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

__all__ = ["ENTRY_OVERHEAD", "BoundedCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# What an entry costs the cache itself, beyond its key and value: a slot in cachetools' data
# and size dicts, a node of its recency OrderedDict, the (value, cost) pair and the cost's int.
# Measured with tracemalloc from 1,000 to 140,000 entries: 195-260 bytes (the dicts grow by
# doubling); a margin above that.
ENTRY_OVERHEAD = 384


class BoundedCache(Generic[K, V]):
    """Keeps up to `max_entries` entries and `max_bytes` bytes, least recently used dropped first.

    `cost(key, value)` is the bytes an entry's key and value hold (`sys.getsizeof` of each object
    they keep alive); the cache adds `ENTRY_OVERHEAD`. An entry costing more than `largest`
    bytes (a sixteenth of `max_bytes` unless given) is not kept at all, so that no single one
    empties the cache.
    """

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        cost: Callable[[K, V], int],
        largest: int | None = None,
    ):
        if max_entries < 1 or max_bytes < ENTRY_OVERHEAD:
            raise ValueError(f"a cache needs an entry and {ENTRY_OVERHEAD} bytes at least")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.largest = min(max_bytes, max_bytes // 16 if largest is None else largest)
        self._cost = cost
        # Each value is kept as (value, its cost), so that cachetools sizes it without asking.
        self._kept: LRUCache[K, tuple[V, int]] = LRUCache(max_bytes, getsizeof=_second)
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value kept for `key` (now the most recently used), or None."""
        with self._lock:
            try:
                return self._kept[key][0]
            except KeyError:
                return None

    def put(self, key: K, value: V) -> None:
        """Keep `value` for `key`, dropping the least recently used entries to make room; an
        entry costing more than `largest` bytes is not kept."""
        size = ENTRY_OVERHEAD + self._cost(key, value)
        if size > self.largest:
            return
        with self._lock:
            self._kept[key] = (value, size)  # drops entries until the bytes fit
            while len(self._kept) > self.max_entries:
                self._kept.popitem()

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def bytes(self) -> int:
        """What the kept entries cost, overhead included (at most `max_bytes`)."""
        return int(self._kept.currsize)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._kept.clear()


def _second(pair: tuple[object, int]) -> int:
    return pair[1]
