"""The sentence vectors of a Milvus generation: a collection beside it, written and scored.

`<collection>_sentences` holds a row per sentence vector: its row number (the primary key), its
passage's chunk id and article, its number among that passage's sentences (the order of
`index.records.SentenceVectors`), and the vector, under an exact (FLAT) inner-product index.
Scoring a query's candidates is one search filtered to their passages: the server computes the
products and returns them, never the vectors (a hybrid query's ~1,300 sentence vectors would be
half a million floats on the wire).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from semsearch.index.milvus_client import INSERT_BATCH, MAX_TOP_K, VARCHAR_MAX, call
from semsearch.index.records import SentenceVectors
from semsearch.index.sentence_scores import SentenceScores

__all__ = ["SENTENCES_SUFFIX", "MilvusSentences", "create_sentences", "insert_sentences"]

SENTENCES_SUFFIX = "_sentences"


def create_sentences(client: Any, name: str, dimension: int) -> None:
    """Create the (empty) sentence collection `name` for vectors of `dimension`."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("passage", DataType.INT64)
    schema.add_field("number", DataType.INT64)
    schema.add_field("article_id", DataType.VARCHAR, max_length=VARCHAR_MAX)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    index = client.prepare_index_params()
    # Exact: a search is always filtered to a few hundred passages' sentences, and their every
    # product is wanted, not the nearest few.
    index.add_index("vector", index_type="FLAT", metric_type="IP")
    call(client.create_collection, name, schema=schema, index_params=index)


def insert_sentences(
    client: Any,
    name: str,
    first_row: int,
    first_id: int,
    articles: list[str],
    sentences: SentenceVectors,
) -> int:
    """Insert the sentence vectors of passages `first_id`, `first_id` + 1, ... (of `articles`,
    one a passage), their rows numbered from `first_row`; returns how many rows went in."""
    offsets = np.asarray(sentences.offsets, dtype=np.int64)
    counts = np.diff(offsets)
    passages = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    numbers = np.arange(len(passages), dtype=np.int64) - np.repeat(offsets[:-1], counts)
    vectors = np.asarray(sentences.vectors, dtype=np.float32)
    for start in range(0, len(passages), INSERT_BATCH):
        stop = min(start + INSERT_BATCH, len(passages))
        rows = [
            {
                "id": first_row + row,
                "passage": first_id + int(passages[row]),
                "number": int(numbers[row]),
                "article_id": articles[int(passages[row])],
                "vector": vectors[row].tolist(),
            }
            for row in range(start, stop)
        ]
        call(client.insert, name, rows)
    return len(passages)


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
        query = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        found = call(
            self._client().search,
            self.name,
            data=[query],
            anns_field="vector",
            # Every sentence of these passages (a passage has a few; past Milvus's limit on one
            # search, the lowest products are the ones left out, never a passage's best).
            limit=MAX_TOP_K,
            filter=f"passage in {[int(i) for i in wanted]}",
            search_params={"metric_type": "IP"},
            output_fields=["passage", "number"],
        )[0]
        if not found:
            return SentenceScores.none(wanted)
        entities = [hit.get("entity", hit) for hit in found]
        passages = np.fromiter((entity["passage"] for entity in entities), dtype=np.int64)
        numbers = np.fromiter((entity["number"] for entity in entities), dtype=np.int64)
        products = np.fromiter((hit["distance"] for hit in found), dtype=np.float32)
        # Each passage's products in its sentences' order (a sentence left out: -inf), laid
        # out for each of `ids` in turn (an id asked for twice gets them twice).
        counts_of: dict[int, int] = {}
        for passage, number in zip(passages.tolist(), numbers.tolist(), strict=True):
            counts_of[passage] = max(counts_of.get(passage, 0), number + 1)
        counts = np.array([counts_of.get(i, 0) for i in wanted.tolist()], dtype=np.int64)
        firsts = np.cumsum(counts) - counts
        own: dict[int, np.ndarray] = {}
        for passage, count in counts_of.items():
            own[passage] = np.full(count, -np.inf, dtype=np.float32)
        for passage, number, product in zip(
            passages.tolist(), numbers.tolist(), products.tolist(), strict=True
        ):
            own[passage][number] = product
        laid_out = [own[i] for i in wanted.tolist() if i in own]
        products = np.concatenate(laid_out) if laid_out else np.zeros(0, dtype=np.float32)
        return SentenceScores(wanted, products, firsts, counts)
