"""Each Milvus generation's vocabulary: how many passages and articles hold each stem.

Milvus scores BM25 itself but does not say the most a query could score, which bounded fusion
needs (`index.bm25.bm25_ceiling`): that takes each query stem's document frequency. The build
writes them to `<collection>_vocab` (`write_vocabulary`); an opened generation looks a query's
stems up there once and keeps them (`Vocabulary`), as a generation never changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from semsearch.index.milvus_client import (
    INSERT_BATCH,
    QUERY_BATCH,
    VARCHAR_MAX,
    VOCAB_SUFFIX,
    call,
    create_unloaded,
)

__all__ = ["FREQUENCIES_KEPT", "Vocabulary", "write_vocabulary"]

# Stems whose document frequencies an opened generation keeps (cleared past this).
FREQUENCIES_KEPT = 100_000


def write_vocabulary(client: Any, collection: str, articles: Iterable[Counter[str]]) -> str:
    """Write `collection`'s vocabulary from each article's stems (and how many of its
    passages hold each) into a new collection, unloaded and not flushed (the writer flushes
    and loads it with the generation's others); returns its name."""
    from pymilvus import DataType

    vocab = collection + VOCAB_SUFFIX
    passages: Counter[str] = Counter()
    in_articles: Counter[str] = Counter()
    for counts in articles:
        passages.update(counts)
        in_articles.update(counts.keys())
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("term", DataType.VARCHAR, is_primary=True, max_length=VARCHAR_MAX)
    schema.add_field("df", DataType.INT64)
    schema.add_field("article_df", DataType.INT64)  # (absent before article-level BM25)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
    index = client.prepare_index_params()
    index.add_index("unused", index_type="FLAT", metric_type="L2")
    if call(client.has_collection, vocab):
        call(client.drop_collection, vocab)
    create_unloaded(client, vocab, schema, index)
    items = sorted(passages.items())
    for offset in range(0, len(items), INSERT_BATCH * 5):
        rows = [
            {"term": term, "df": df, "article_df": in_articles[term], "unused": [0.0, 0.0]}
            for term, df in items[offset : offset + INSERT_BATCH * 5]
        ]
        call(client.insert, vocab, rows)
    return vocab


class Vocabulary:
    """An opened generation's vocabulary collection `name`; safe to share between threads.

    `client` gives the generation's connected MilvusClient; `with_articles`: whether the
    vocabulary has article frequencies (a generation with article-level BM25).
    """

    def __init__(self, client: Callable[[], Any], name: str, with_articles: bool):
        self._client = client
        self.name = name
        self._fields = ["df", "article_df"] if with_articles else ["df"]
        # Each stem's (passages, articles) holding it; dict operations are atomic.
        self._kept: dict[str, tuple[int, int]] = {}

    def frequencies(self, stems: list[str]) -> list[tuple[int, int]]:
        """How many passages and how many articles hold each of `stems` ((0, 0) for a stem
        found nowhere; articles 0 without article frequencies)."""
        missing = [stem for stem in dict.fromkeys(stems) if stem not in self._kept]
        found: dict[str, tuple[int, int]] = dict.fromkeys(missing, (0, 0))
        for offset in range(0, len(missing), QUERY_BATCH):
            batch = missing[offset : offset + QUERY_BATCH]
            rows = call(self._client().query, self.name, ids=batch, output_fields=self._fields)
            found.update(
                (row["term"], (int(row["df"]), int(row.get("article_df", 0)))) for row in rows
            )
        if len(self._kept) > FREQUENCIES_KEPT:
            self._kept.clear()
        self._kept.update(found)
        return [found.get(stem) or self._kept.get(stem, (0, 0)) for stem in stems]

    def passages(self, stems: list[str]) -> list[int]:
        """How many passages hold each of `stems`."""
        return [passages for passages, _ in self.frequencies(stems)]

    def articles(self, stems: list[str]) -> list[int]:
        """How many articles hold each of `stems`."""
        return [articles for _, articles in self.frequencies(stems)]
