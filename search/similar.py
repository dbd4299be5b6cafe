"""Similar passages: the passages nearest to one passage's stored vector, shown as hits."""

from __future__ import annotations

import numpy as np

from semsearch.index.errors import IndexIncompatible
from semsearch.search.errors import InvalidQuery, UnknownPassage
from semsearch.search.fusion import Ranking
from semsearch.search.hits import Hit, build_hits
from semsearch.search.query import MAX_K
from semsearch.search.ranking import FUSION_DEPTH, Ranker, Turn

__all__ = ["similar_passages"]


def similar_passages(ranker: Ranker, turn: Turn, chunk_id: int, k: int = 10) -> list[Hit]:
    """`SearchService.similar`: the `k` passages nearest to a passage's stored vector, best
    first, without the passage and its near-duplicates (see there)."""
    if isinstance(chunk_id, bool) or not isinstance(chunk_id, int) or chunk_id < 0:
        raise InvalidQuery(f"a chunk id is a whole number from 0, got {chunk_id!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidQuery(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    store = ranker.store
    with turn(None):
        # (Chunk ids are 64-bit in both stores: a larger one names no passage.)
        if chunk_id >= 2**63 or chunk_id not in store.chunks([chunk_id]):
            raise UnknownPassage(
                f"no passage has chunk id {chunk_id} in index generation {store.generation}"
            )
        try:
            vector = store.vectors(np.array([chunk_id], dtype=np.int64))[0]
        except IndexIncompatible as error:
            raise InvalidQuery(f"similar passages need the passages' vectors: {error}") from None
        # Deep enough that leaving out the passage, its duplicates and the duplicates among
        # the rest still leaves k (as `search`, the same depth whatever k is).
        same = {chunk_id, *(other for other, _, _ in store.duplicates_of(chunk_id))}
        found = [pair for pair in store.dense_search(vector, FUSION_DEPTH) if pair[0] not in same]
        ranked = ranker.collapse(Ranking.of(found))
        return build_hits(store, "", ranked, found, [], None, k, None, True)
