"""The sentence vectors of a Milvus generation: a collection beside it, written and scored.

`<collection>_sentences` holds a row per sentence vector: its key (its passage's chunk id times
`SLOTS`, plus its number among that passage's sentences, in the order of
`index.records.SentenceVectors`), its passage's chunk id and article, and the vector, under an
exact (FLAT) inner-product index. Scoring a query's candidates is one search filtered to their
passages: the server computes the products and returns them with the keys alone, never the
vectors (a hybrid query's ~1,300 sentence vectors would be half a million floats on the wire).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from semsearch.index.milvus_client import (
    INSERT_BATCH,
    MAX_TOP_K,
    VARCHAR_MAX,
    call,
    create_unloaded,
)
from semsearch.index.records import SentenceVectors
from semsearch.index.sentence_scores import SentenceScores

__all__ = ["SENTENCES_SUFFIX", "MilvusSentences", "create_sentences", "insert_sentences"]

SENTENCES_SUFFIX = "_sentences"
# Sentence numbers a passage may use in a key (a passage is a few hundred tokens at most).
SLOTS = 1 << 12


def create_sentences(client: Any, name: str, dimension: int) -> None:
    """Create the (empty) sentence collection `name` for vectors of `dimension`."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("passage", DataType.INT64)
    schema.add_field("article_id", DataType.VARCHAR, max_length=VARCHAR_MAX)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    index = client.prepare_index_params()
    # Exact: a search is always filtered to a few hundred passages' sentences, and their every
    # product is wanted, not the nearest few.
    index.add_index("vector", index_type="FLAT", metric_type="IP")
    create_unloaded(client, name, schema, index)


def insert_sentences(
    client: Any, name: str, first_id: int, articles: list[str], sentences: SentenceVectors
) -> int:
    """Insert the sentence vectors of passages `first_id`, `first_id` + 1, ... (of `articles`,
    one a passage); returns how many rows went in (a passage's sentences past `SLOTS` are
    left out)."""
    offsets = np.asarray(sentences.offsets, dtype=np.int64)
    counts = np.diff(offsets)
    passages = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    numbers = np.arange(len(passages), dtype=np.int64) - np.repeat(offsets[:-1], counts)
    vectors = sentences.vectors  # (float16: each row sent as float32)
    kept = np.flatnonzero(numbers < SLOTS)
    for start in range(0, len(kept), INSERT_BATCH):
        rows = [
            {
                "id": (first_id + int(passages[row])) * SLOTS + int(numbers[row]),
                "passage": first_id + int(passages[row]),
                "article_id": articles[int(passages[row])],
                "vector": vectors[row].astype(np.float32).tolist(),
            }
            for row in kept[start : start + INSERT_BATCH].tolist()
        ]
        call(client.insert, name, rows)
    return len(kept)


class MilvusSentences:
    """The sentence collection `name` of an opened generation; safe to share between threads.

    `client` gives the generation's connected MilvusClient.
    """

    def __init__(self, client: Callable[[], Any], name: str):
        self._client = client
        self.name = name

    def scores(self, ids: np.ndarray, vector: np.ndarray) -> SentenceScores:
        """The inner product of the query vector with every sentence of these passages."""
        wanted = np.asarray(ids, dtype=np.int64).reshape(-1)
        if not len(wanted):
            return SentenceScores.none(wanted)
        # Every sentence of these passages (a passage has a few; past Milvus's limit on one
        # search, the lowest products are the ones left out, never a passage's best).
        keys, products = self._search(vector, MAX_TOP_K, f"passage in {np.unique(wanted).tolist()}")
        if not len(keys):
            return SentenceScores.none(wanted)
        # Each passage's products laid out in its sentences' order (one left out: -inf) ...
        scored = SentenceScores.laid_out(keys // SLOTS, keys % SLOTS, products, -np.inf)
        known, sizes, starts = scored.ids, scored.counts, scored.firsts
        # ... then passage after passage as asked (twice for an id asked twice; none: 0).
        at = np.minimum(np.searchsorted(known, wanted), len(known) - 1)
        found_here = known[at] == wanted
        counts = np.where(found_here, sizes[at], 0)
        firsts = np.cumsum(counts) - counts
        rows = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(starts[at] - firsts, counts)
        return SentenceScores(wanted, scored.products[rows], firsts, counts)

    def nearest(self, vector: np.ndarray, limit: int) -> SentenceScores:
        """The `limit` sentences of the whole collection nearest to the query vector, as the
        scores of their passages, with the `limit`-th product as their ceiling (-inf when
        the collection holds no more)."""
        limit = min(limit, MAX_TOP_K)
        keys, products = self._search(vector, limit, "")
        ceiling = float(products.min()) if 0 < limit <= len(keys) else -np.inf
        return SentenceScores.laid_out(keys // SLOTS, keys % SLOTS, products, ceiling)

    def _search(self, vector: np.ndarray, limit: int, where: str) -> tuple[np.ndarray, np.ndarray]:
        """The keys and products of the `limit` sentences nearest the query vector that the
        filter `where` keeps ("": all), best first."""
        found = call(
            self._client().search,
            self.name,
            data=[np.asarray(vector, dtype=np.float32).reshape(-1).tolist()],
            anns_field="vector",
            limit=limit,
            filter=where,
            search_params={"metric_type": "IP"},
            # Each key says its passage and number; one small field is asked for all the same,
            # as Milvus Lite takes none for every field, vectors included.
            output_fields=["passage"],
        )[0]
        keys = np.asarray(_column(found, "ids"), dtype=np.int64)
        return keys, np.asarray(_column(found, "distances"), dtype=np.float32)


def _column(hits: Any, name: str) -> list[Any]:
    """The ids or distances of a search's hits: pymilvus's columns where it has them."""
    column = getattr(hits, name, None)
    if column is not None:
        return list(column)
    key = "id" if name == "ids" else "distance"
    return [hit[key] for hit in hits]
