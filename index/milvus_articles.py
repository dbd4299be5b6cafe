"""The articles of a Milvus generation as wholes: a collection beside it, for article-level BM25.

The words of a query are often spread over a story (`search.fusion.add_article_words`), so
each article is also matched whole, as the FAISS store's `articles_fts` does. The collection
`<collection>_articles` holds a row per article: its id (the primary key), its section and date
(for filters, as on the passages), and `terms`, the Porter stems of its title, each heading once
and every passage, which a BM25 function turns into a sparse vector (Milvus 2.5 and later).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from semsearch.index.analysis import stems
from semsearch.index.articles import Article
from semsearch.index.bm25 import bm25_ceiling
from semsearch.index.chunking import Chunk
from semsearch.index.milvus_client import (
    INSERT_BATCH,
    VARCHAR_MAX,
    add_bm25,
    call,
    create_unloaded,
)

__all__ = [
    "ARTICLES_SUFFIX",
    "MilvusArticles",
    "article_rows",
    "create_articles",
    "insert_articles",
]

ARTICLES_SUFFIX = "_articles"

log = logging.getLogger("semsearch.milvus")


def create_articles(client: Any, name: str) -> None:
    """Create the (empty) article collection `name`, with its BM25 function."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("article_id", DataType.VARCHAR, is_primary=True, max_length=VARCHAR_MAX)
    for field in ("section", "published"):  # (what `filter_expression` may test on articles)
        schema.add_field(field, DataType.VARCHAR, max_length=VARCHAR_MAX)
    schema.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_MAX, enable_analyzer=True)
    index = client.prepare_index_params()
    add_bm25(schema, index, "terms")
    create_unloaded(client, name, schema, index)


def article_rows(articles: Sequence[Article], chunks: Sequence[Chunk]) -> list[dict[str, Any]]:
    """A row of the article collection for each article that has passages among `chunks`.

    An article whose stems are longer than a Milvus text field (64 KiB: some 10,000 words) is
    matched on its first 64 KiB of them, and the build says which.
    """
    parts: dict[str, list[str]] = {}
    headings: dict[str, set[str]] = {}
    for chunk in chunks:
        own = parts.setdefault(chunk.article_id, [])
        seen = headings.setdefault(chunk.article_id, set())
        if chunk.heading and chunk.heading not in seen:
            seen.add(chunk.heading)
            own.append(chunk.heading)
        own.append(chunk.text)
    rows = []
    for article in articles:
        if article.id not in parts:
            continue
        terms = " ".join(stems("\n".join([article.title, *parts[article.id]])))
        if len(terms.encode("utf-8")) > VARCHAR_MAX:
            cut = terms.encode("utf-8")[:VARCHAR_MAX].decode("utf-8", "ignore")
            terms = cut[: cut.rfind(" ")] if " " in cut else cut
            log.warning(
                "%s: too long for Milvus's article-level BM25; it is matched on its first "
                "%d words (its passages are matched whole)",
                article.id,
                len(terms.split()),
            )
        rows.append(
            {
                "article_id": article.id,
                "section": article.section,
                "published": article.published or "",
                "terms": terms,
            }
        )
    return rows


def insert_articles(client: Any, name: str, rows: list[dict[str, Any]]) -> None:
    """Insert `article_rows` into the article collection `name`."""
    for offset in range(0, len(rows), INSERT_BATCH):
        call(client.insert, name, rows[offset : offset + INSERT_BATCH])


class MilvusArticles:
    """The article collection `name` of an opened generation; safe to share between threads.

    `client` gives the generation's connected MilvusClient; `frequencies` the number of articles
    holding each of some stems (from the generation's vocabulary); `count` how many articles
    there are.
    """

    def __init__(
        self,
        client: Callable[[], Any],
        name: str,
        frequencies: Callable[[list[str]], list[int]],
        count: int,
    ):
        self._client = client
        self._frequencies = frequencies
        self._count = count
        self.name = name

    def search(
        self, terms: Sequence[str], k: int, expression: str
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """The `k` best articles by BM25 among those the filter `expression` keeps ("" for all):
        their ids, scores, and the query's largest possible article BM25."""
        nothing = (np.zeros(0, dtype=str), np.zeros(0, dtype=np.float64), 0.0)
        wanted = list(dict.fromkeys(s for term in terms for s in stems(term)))
        if not wanted:
            return nothing
        found = call(
            self._client().search,
            self.name,
            data=[" ".join(wanted)],
            anns_field="sparse",
            limit=k,
            filter=expression,
            search_params={"metric_type": "BM25"},
            output_fields=["article_id"],  # (the primary key; without, Milvus Lite sends all)
        )[0]
        if not found:
            return nothing
        # Milvus Lite negates BM25 scores; they are >= 0.
        ids = np.array([str(hit["article_id"]) for hit in found])
        scores = np.array([abs(float(hit["distance"])) for hit in found], dtype=np.float64)
        ceiling = bm25_ceiling(self._frequencies(wanted), self._count, idf="lucene")
        return ids, scores, ceiling
