"""Writing a new generation of the Milvus store: a collection filled, then published.

`MilvusStore.writer` makes one. The first `add` creates the collection `<alias>_gen_<n>` (its
schema: `index.milvus_store`'s docstring), with a BM25 function over each passage's Porter stems
where the Milvus has one (2.5 and later; otherwise the generation has no lexical leg). Beside it
go the passages' sentence vectors (`index.milvus_sentences`) and, where there is BM25, the
articles as wholes (`index.milvus_articles`). All are created unloaded; `commit` writes the
vocabulary (`index.milvus_vocab`), flushes them all, loads each once its indexes are built
(`milvus_client.flush_and_load`), records the manifest (`index.milvus_manifests`), and only then
points the alias at the new collection.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from semsearch.index.analysis import stems
from semsearch.index.articles import Article
from semsearch.index.chunking import Chunk
from semsearch.index.errors import StoreUnavailable
from semsearch.index.generations import generation_name, generation_number
from semsearch.index.manifest import FORMAT_VERSION
from semsearch.index.milvus_articles import (
    ARTICLES_SUFFIX,
    article_rows,
    create_articles,
    insert_articles,
)
from semsearch.index.milvus_client import (
    INSERT_BATCH,
    METADATA_FIELDS,
    TAGS_FIELD,
    VARCHAR_MAX,
    add_bm25,
    call,
    create_unloaded,
    flush_and_load,
    literal,
)
from semsearch.index.milvus_manifests import read_manifest, write_manifest
from semsearch.index.milvus_sentences import SENTENCES_SUFFIX, create_sentences, insert_sentences
from semsearch.index.milvus_vocab import write_vocabulary
from semsearch.index.records import SentenceVectors, check_rows, join_tags

if TYPE_CHECKING:  # the store imports this module
    from semsearch.index.milvus_store import MilvusStore

__all__ = ["MilvusWriter"]

log = logging.getLogger("semsearch.milvus")


class MilvusWriter:
    """Fills a new generation collection; `commit` points the alias at it."""

    def __init__(self, store: MilvusStore):
        self.store = store
        self._collection: str | None = None
        self._name: str | None = None
        self._articles: dict[str, int] = {}  # article id -> passages added
        self._next_id = 0
        self._terms: dict[str, Counter[str]] = {}  # article id -> passages holding each stem
        self._lexical = True
        self._sentences: str | None = None  # the sentence collection, once one is added
        self._loaded: set[str] = set()  # collections loaded before their indexes were built

    def _create(self, dimension: int) -> str:
        from pymilvus import DataType

        client = self.store.client()
        numbers = self.store.generation_numbers()
        live = self.store.live_generation()
        # A collection newer than the live one and never published is a crashed build's: drop it.
        for number in numbers:
            name = generation_name(number)
            if live is not None and number > generation_number(live):
                collection = self.store.collection_of(name)
                if read_manifest(client, self.store.alias, collection) is None:
                    self.store.drop_generation(name)
        self._name = generation_name((numbers[-1] if numbers else 0) + 1)
        collection = self.store.collection_of(self._name)

        def schema(with_bm25: bool) -> tuple[Any, Any]:
            made = client.create_schema(auto_id=False, enable_dynamic_field=False)
            made.add_field("id", DataType.INT64, is_primary=True)
            made.add_field("article_id", DataType.VARCHAR, max_length=VARCHAR_MAX)
            for field in ("paragraph", "part", "start", "end", "dup_group"):
                made.add_field(field, DataType.INT64)
            made.add_field("grouped", DataType.BOOL)
            for field in ("heading", "title", "text", *METADATA_FIELDS, TAGS_FIELD):
                # (format 5 on: the article's section, date ("" when none), author and url;
                # format 6 on: its tags, one a line)
                made.add_field(field, DataType.VARCHAR, max_length=VARCHAR_MAX)
            made.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_MAX, enable_analyzer=True)
            made.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
            index = client.prepare_index_params()
            index.add_index("vector", **self.store.vector_index_params())
            if with_bm25:
                add_bm25(made, index, "terms")
            return made, index

        # Full-text search (BM25 functions) came with Milvus 2.5: a server that says it is older
        # is not asked; one that does not say (Milvus Lite) is tried, its refusal logged once.
        refusal = None if full_text_search(client) is not False else "the server predates 2.5"
        if refusal is None:
            made, index = schema(with_bm25=True)
            try:
                with _quiet(logging.getLogger("pymilvus")):  # (it logs each failed call whole)
                    create_unloaded(client, collection, made, index)
            except StoreUnavailable:
                raise
            except Exception as error:
                refusal = str(error).splitlines()[0] if str(error) else type(error).__name__
                if client.has_collection(collection):
                    client.drop_collection(collection)
        if refusal is not None:
            log.warning(
                "%s has no full-text search (%s): this index has no lexical leg; hybrid "
                "search will be dense only and lexical search refused (Milvus 2.5 or later has "
                "it)",
                self.store.describe(),
                refusal,
            )
            made, index = schema(with_bm25=False)
            create_unloaded(client, collection, made, index)
            self._lexical = False
        else:
            create_articles(client, collection + ARTICLES_SUFFIX)
        self._collection = collection
        return collection

    def add(
        self,
        articles: Sequence[Article],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        groups: np.ndarray,
        sentences: SentenceVectors | None = None,
    ) -> None:
        check_rows(chunks, vectors, groups)
        dimension = int(np.asarray(vectors).shape[1])
        collection = self._collection or self._create(dimension)
        first_id = self._next_id
        self._next_id += len(chunks)
        titles = {article.id: article.title for article in articles}
        metadata = {
            article.id: {
                "section": article.section,
                "published": article.published or "",
                "author": article.author,
                "url": article.url,
                TAGS_FIELD: join_tags(article.tags),
            }
            for article in articles
        }
        for article in articles:
            self._articles.setdefault(article.id, 0)
        groups = np.asarray(groups, dtype=np.int64)
        values, counts = np.unique(groups, return_counts=True)
        shared = {int(value) + first_id for value in values[counts > 1].tolist()}
        client = self.store.client()
        for offset in range(0, len(chunks), INSERT_BATCH):
            rows = []
            for row in range(offset, min(offset + INSERT_BATCH, len(chunks))):
                chunk = chunks[row]
                title = titles[chunk.article_id]
                group = int(groups[row]) + first_id
                terms = " ".join(stems(f"{title}\n{chunk.heading}\n{chunk.text}"))
                self._terms.setdefault(chunk.article_id, Counter()).update(set(terms.split()))
                rows.append(
                    {
                        "id": first_id + row,
                        "article_id": chunk.article_id,
                        "paragraph": chunk.paragraph,
                        "part": chunk.part,
                        "start": chunk.start,
                        "end": chunk.end,
                        "dup_group": group,
                        "grouped": group in shared,
                        "heading": chunk.heading,
                        "title": title,
                        "text": chunk.text,
                        **metadata[chunk.article_id],
                        "terms": terms,
                        "vector": np.asarray(vectors[row], dtype=np.float32).tolist(),
                    }
                )
                self._articles[chunk.article_id] += 1
            _check_lengths(rows)
            call(client.insert, collection, rows)
        if self._lexical:
            insert_articles(client, collection + ARTICLES_SUFFIX, article_rows(articles, chunks))
        if sentences is not None and len(sentences.vectors):
            if self._sentences is None:
                self._sentences = collection + SENTENCES_SUFFIX
                create_sentences(client, self._sentences, dimension)
            insert_sentences(
                client, self._sentences, first_id, [chunk.article_id for chunk in chunks], sentences
            )

    def delete_article(self, article_id: str) -> int:
        passages = self._articles.pop(article_id, 0)
        self._terms.pop(article_id, None)
        if passages and self._collection is not None:
            client = self.store.client()
            place = f"article_id == {literal(article_id)}"
            # (a delete by filter reads the collection: load what was created unloaded)
            for name in self._collections():
                if name not in self._loaded:
                    call(client.load_collection, name)
                    self._loaded.add(name)
            call(client.delete, self._collection, filter=place)
            if self._lexical:
                call(client.delete, self._collection + ARTICLES_SUFFIX, filter=place)
            if self._sentences is not None:
                call(client.delete, self._sentences, filter=place)
        return passages

    def commit(self, manifest: dict[str, Any]) -> str:
        if self._collection is None or self._name is None:
            raise ValueError("nothing was added to this generation")
        client = self.store.client()
        vocab = write_vocabulary(client, self._collection, self._terms.values())
        # Published only once searched through its indexes, loaded once they are built.
        flush_and_load(client, [*self._collections(), vocab], loaded=self._loaded)
        rows = call(client.query, self._collection, filter="", output_fields=["count(*)"])
        passages = int(rows[0]["count(*)"])
        sentences = 0
        if self._sentences is not None:
            counted = call(client.query, self._sentences, filter="", output_fields=["count(*)"])
            sentences = int(counted[0]["count(*)"])
        articles = self._collection + ARTICLES_SUFFIX if self._lexical else None
        shared = call(
            client.query, self._collection, filter="grouped == true", output_fields=["count(*)"]
        )
        grouped = int(shared[0]["count(*)"])
        leaders = call(
            client.query,
            self._collection,
            filter="grouped == true and dup_group == id",
            output_fields=["count(*)"],
        )
        written = {
            **manifest,
            "format_version": manifest.get("format_version", FORMAT_VERSION),
            "generation": self._name,
            "store": "milvus",
            "milvus": {
                "collection": self._collection,
                "alias": self.store.alias,
                **self.store.vector_index_params(),
                "lexical": "bm25 function over porter stems" if self._lexical else "unavailable",
                "vocab": vocab,
                # Beside the passages (absent: none kept; the vocabulary then has no article_df).
                **({"sentences": self._sentences} if self._sentences else {}),
                **({"articles": articles} if articles else {}),
            },
            "counts": {
                "articles": len(self._articles),
                "passages": passages,
                "duplicate_passages": grouped - int(leaders[0]["count(*)"]),
                "sentences": sentences,
            },
        }
        write_manifest(client, self.store.alias, self._collection, written)
        if self.store.alias in call(client.list_aliases).get("aliases", []):
            call(client.alter_alias, self._collection, self.store.alias)
        else:
            call(client.create_alias, self._collection, self.store.alias)
        return self._name

    def _collections(self) -> list[str]:
        """The collections this generation has so far: its passages, its sentences, and where
        the server has full-text search its articles."""
        if self._collection is None:
            return []
        lexical = [self._collection + ARTICLES_SUFFIX] if self._lexical else []
        return [self._collection, *lexical, *([self._sentences] if self._sentences else [])]

    def abort(self) -> None:
        if self._name is not None:
            try:
                self.store.drop_generation(self._name)
            except Exception as error:  # best effort: the next build drops it anyway
                log.warning("could not drop unfinished collection %s: %s", self._collection, error)
            self._collection = None


def _check_lengths(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        for field in (
            "article_id",
            "heading",
            "title",
            "text",
            *METADATA_FIELDS,
            TAGS_FIELD,
            "terms",
        ):
            if len(row[field].encode("utf-8", "surrogatepass")) > VARCHAR_MAX:
                raise StoreUnavailable(
                    f"{row['article_id']}: a passage's {field} is longer than Milvus's "
                    f"{VARCHAR_MAX}-byte limit on text fields"
                )


def full_text_search(client: Any) -> bool | None:
    """Whether the Milvus server has BM25 functions (2.5 and later), from the version it
    gives; None when that does not say (Milvus Lite gives its own version numbers)."""
    try:
        version = str(call(client.get_server_version))
    except StoreUnavailable:
        raise
    except Exception:
        return None
    found = re.fullmatch(r"v?(\d+)\.(\d+)(?:[.+-].*)?", version.strip())
    if found is None:
        return None
    return (int(found.group(1)), int(found.group(2))) >= (2, 5)


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """`logger` says nothing below CRITICAL for the duration."""
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
