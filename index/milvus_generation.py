"""One opened generation of the Milvus store: a collection searched in Milvus (`PassageStore`).

Dense search is Milvus's vector index (inner product); lexical search is Milvus's BM25 over the
Porter stems the writer stored (`index.milvus_writer`), with the document frequencies of the
generation's vocabulary collection giving the query's largest possible score. Passages and
articles are read back as `index.records` (`index.milvus_rows`). Sentence scores come from the
collection beside it (`index.milvus_sentences`), article-level BM25 from another
(`index.milvus_articles`); a generation built before them, or on a Milvus without BM25, lacks
them: see `capabilities`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from semsearch.index.analysis import stems
from semsearch.index.bm25 import bm25_ceiling
from semsearch.index.manifest import check_compatible
from semsearch.index.milvus_articles import MilvusArticles
from semsearch.index.milvus_client import (
    MAX_TOP_K,
    call,
    filter_expression,
)
from semsearch.index.milvus_keys import FIELDS as KEY_FIELDS
from semsearch.index.milvus_keys import PassageKeys
from semsearch.index.milvus_rows import MilvusRows
from semsearch.index.milvus_sentences import MilvusSentences
from semsearch.index.milvus_vocab import Vocabulary
from semsearch.index.records import ArticleRecord, ChunkRecord
from semsearch.index.sentence_scores import SentenceScores
from semsearch.index.stores import Capabilities, PassageFilter

if TYPE_CHECKING:  # the store imports this module
    from semsearch.index.milvus_store import MilvusStore

__all__ = ["MilvusGeneration"]

# The query's nearest sentences are a search of the whole sentence collection (exact: FLAT),
# looked up beside the dense search (`search.sentence_lift`); the candidates' sentences, the
# other way, are a search filtered to them, after it. The first saves a round trip while the
# collection is small; a large one costs more to search whole than the wait it saves. On a
# Milvus 2.3.5 server sharing 2 cores (random 384-dimension vectors, 30 queries): of 100,000
# sentences the 500 nearest take 14 ms, those of 300 passages 10 ms (after a 3 ms dense search:
# even); of 400,000, 30 ms against 13. Over this many sentences, the candidates' are scored.
NEAREST_SCAN_MAX = 50_000
# A filter that keeps few passages can defeat an approximate (HNSW) search for the best k of
# them: the graph's walk seldom reaches them, and fewer or none come back (Milvus issues #27136,
# #33933; Milvus Lite missed one of an article's five; a 2.3.5 server, before its
# index is built and loaded, nearly all). Up to this many kept passages, their stored vectors
# are read and scored here, exactly; a wider filter leaves the graph enough to walk.
FILTERED_EXACT_MAX = 2_048


class MilvusGeneration:
    """One generation collection, opened for searching; safe to share between threads.

    Made by `MilvusStore.open`, with a store (a connection) of its own.
    """

    def __init__(self, store: MilvusStore, collection: str, name: str, manifest: dict):
        self.store = store
        self.collection = collection
        self.manifest = manifest
        self._name = name
        beside = manifest.get("milvus", {})
        self._vocabulary = (
            Vocabulary(self._client, beside["vocab"], with_articles=bool(beside.get("articles")))
            if beside.get("vocab")
            else None
        )
        self._sentences = (
            MilvusSentences(self._client, beside["sentences"]) if beside.get("sentences") else None
        )
        self._articles = (
            MilvusArticles(
                self._client,
                beside["articles"],
                self._vocabulary.articles,
                int(manifest["counts"]["articles"]),
            )
            if beside.get("articles") and self._vocabulary is not None
            else None
        )
        self.capabilities = Capabilities(
            # A Milvus before 2.5 has no BM25 function: the build went on without a lexical leg.
            lexical=beside.get("lexical") != "unavailable",
            stored_vectors=True,  # every passage's vector is in its collection
            sentence_vectors=self._sentences is not None,
            # A server's every call is a round trip: the nearest sentences are looked up beside
            # the dense search, not after it, where they are few enough (NEAREST_SCAN_MAX).
            sentence_search=self._sentences is not None
            and int(manifest.get("counts", {}).get("sentences", 0)) <= NEAREST_SCAN_MAX,
            article_lexical=self._articles is not None,
            in_process=False,  # Milvus searches in its own server: more may run at once
            metadata=int(manifest.get("format_version", 0)) >= 5,
        )
        version = int(manifest.get("format_version", 0))
        self._keys = PassageKeys()  # what the searches said of their hits
        self._passages = MilvusRows(self._client, collection, version, self._keys)

    @property
    def generation(self) -> str:
        return self._name

    @property
    def location(self) -> str:
        return f"{self.store.uri} collection {self.collection}"

    def check_dimension(self, dimension: int) -> None:
        check_compatible(self.manifest, self.store.describe(), None, dimension)

    def _client(self) -> Any:
        return self.store.client()

    def count(self) -> int:
        rows = call(self._client().query, self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def describe(self) -> dict[str, Any]:
        return {
            "store": "milvus",
            "location": self.store.uri,
            "generation": self.generation,
            "passages": self.manifest["counts"]["passages"],
            "vector_index": self.manifest.get("milvus", {}),
            "lexical": self.manifest.get("milvus", {}).get("lexical"),
        }

    def _search(
        self,
        data: list[Any],
        field: str,
        k: int,
        params: dict[str, Any],
        where: PassageFilter | None,
    ) -> list[tuple[int, float]]:
        found = call(
            self._client().search,
            self.collection,
            data=data,
            anns_field=field,
            limit=min(k, MAX_TOP_K),
            # Milvus applies the filter inside the search: the best k of the passages it keeps.
            filter=filter_expression(where, self.capabilities.metadata),
            search_params=params,
            # Each hit's group and article come with it: the ranking and the hits ask next.
            output_fields=list(KEY_FIELDS),
        )
        hits = found[0]
        self._keys.remember(hits)
        ids = getattr(hits, "ids", None)  # (pymilvus's columns; Milvus Lite gives dicts alone)
        if ids is not None:
            return list(zip(map(int, ids), map(float, hits.distances), strict=True))
        return [(int(hit["id"]), float(hit["distance"])) for hit in hits]

    def dense_search(
        self, vector: np.ndarray, k: int, where: PassageFilter | None = None
    ) -> list[tuple[int, float]]:
        """The `k` passages nearest to a normalised query vector: (chunk id, inner product)."""
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.store.index_type == "hnsw":
            if where is not None and not where.is_empty:
                exact = self._few_kept(vector, k, where)
                if exact is not None:
                    return exact
            params["params"] = {"ef": max(self.store.ef_search, min(k, MAX_TOP_K))}
        query = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        hits = self._search([query], "vector", k, params, where)
        return sorted(hits, key=lambda hit: (-hit[1], hit[0]))

    def _few_kept(
        self, vector: np.ndarray, k: int, where: PassageFilter
    ) -> list[tuple[int, float]] | None:
        """The `k` best of the passages `where` keeps, scored exactly from their stored
        vectors, where it keeps at most FILTERED_EXACT_MAX; None where it keeps more."""
        expression = filter_expression(where, self.capabilities.metadata)
        client = self._client()
        counted = call(client.query, self.collection, filter=expression, output_fields=["count(*)"])
        if int(counted[0]["count(*)"]) > FILTERED_EXACT_MAX:
            return None
        rows = call(
            client.query,
            self.collection,
            filter=expression,
            output_fields=["id", "vector", *KEY_FIELDS],
            limit=FILTERED_EXACT_MAX,
        )
        if not rows:
            return []
        self._keys.remember(rows)
        ids = np.array([int(row["id"]) for row in rows], dtype=np.int64)
        stored = np.array([row["vector"] for row in rows], dtype=np.float32)
        products = stored @ np.asarray(vector, dtype=np.float32).reshape(-1)
        best = np.lexsort((ids, -products))[:k]
        return list(
            zip(ids[best].tolist(), products[best].astype(np.float64).tolist(), strict=True)
        )

    def lexical_search(
        self, terms: Sequence[str], k: int, where: PassageFilter | None = None
    ) -> list[tuple[int, float]]:
        """BM25 over the stems of title, heading and text: (chunk id, score), higher is better.

        The terms are stemmed as the passages were and given to Milvus as plain text, which its
        analyzer only splits into words: no user text is read as syntax. Nothing without the
        lexical capability.
        """
        if not self.capabilities.lexical:
            return []
        wanted = list(dict.fromkeys(s for term in terms for s in stems(term)))
        if not wanted:
            return []
        hits = self._search([" ".join(wanted)], "sparse", k, {"metric_type": "BM25"}, where)
        # Milvus returns BM25 scores best first; Milvus Lite negates them. Scores are >= 0.
        return sorted(((i, abs(s)) for i, s in hits), key=lambda hit: (-hit[1], hit[0]))

    def lexical_ceiling(self, terms: Sequence[str]) -> float:
        """The largest BM25 score `lexical_search(terms)` could give a passage here.

        As in the FAISS store, from each stem's document frequency (kept beside the collection
        by the build) and the passage count; the index uses FTS5's k1 and b.
        """
        wanted = list(dict.fromkeys(s for term in terms for s in stems(term)))  # as searched
        if not wanted or self._vocabulary is None:
            return 0.0
        passages = int(self.manifest["counts"]["passages"])
        # Milvus computes idf as Lucene does: ln(1 + (N - df + 0.5) / (df + 0.5)).
        return bm25_ceiling(self._vocabulary.passages(wanted), passages, idf="lucene")

    def article_lexical_search(
        self, terms: Sequence[str], k: int, where: PassageFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """BM25 of whole articles, of those `where` keeps: the `k` best articles' ids (as
        `passage_keys` gives them), their scores, and the query's largest possible article
        BM25; nothing (and 0.0) without that capability."""
        if self._articles is None:
            return np.zeros(0, dtype=str), np.zeros(0, dtype=np.float64), 0.0
        return self._articles.search(terms, k, filter_expression(where, metadata=True))

    def similarities(self, ids: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The inner product of a query vector with the stored vectors of these passages."""
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        return self._stored(ids, len(query)) @ query

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored float32 vectors of these passages, a row each (zeros for unknown ids)."""
        return self._stored(ids, int(self.manifest.get("model", {}).get("dimension", 0)))

    def _stored(self, ids: np.ndarray, dimension: int) -> np.ndarray:
        wanted = [int(i) for i in np.asarray(ids).reshape(-1)]
        if not wanted:
            return np.zeros((0, dimension), dtype=np.float32)
        found = {
            int(row["id"]): row["vector"] for row in self._passages.rows(wanted, ["id", "vector"])
        }
        # A passage deleted since the search (a concurrent rebuild) scores as unrelated.
        zero = np.zeros(dimension, dtype=np.float32)
        return np.array([found.get(i, zero) for i in wanted], dtype=np.float32).reshape(
            len(wanted), dimension
        )

    def sentence_scores(self, ids: np.ndarray, vector: np.ndarray) -> SentenceScores:
        """The inner product of a query vector with each sentence of these passages (none
        without sentence vectors: see `capabilities`)."""
        if self._sentences is None:
            return SentenceScores.none(ids)
        return self._sentences.scores(ids, vector)

    def nearest_sentences(self, vector: np.ndarray, limit: int) -> SentenceScores:
        """The `limit` sentences nearest to the query vector, of every passage: their scores
        (partial, with a ceiling: `SentenceScores`); none without sentence vectors."""
        if self._sentences is None:
            return SentenceScores.none(np.zeros(0, dtype=np.int64))
        return self._sentences.nearest(vector, limit)

    # -- passages read back (`index.milvus_rows`) -----------------------------------------------

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]:
        """The stored passages with these ids (unknown ids are left out)."""
        return self._passages.chunks(ids)

    def passage_keys(self, ids: np.ndarray) -> tuple[dict[int, int], dict[int, str]]:
        """The near-duplicate group and article of each of `ids`."""
        return self._passages.passage_keys(ids)

    def duplicates_of(self, chunk_id: int) -> list[tuple[int, str, int]]:
        """(chunk id, article id, paragraph) of the other passages in this chunk's group."""
        return self._passages.duplicates_of_many([chunk_id])[int(chunk_id)]

    def duplicates_of_many(self, ids: Sequence[int]) -> dict[int, list[tuple[int, str, int]]]:
        """`duplicates_of` each of `ids`, in at most two queries."""
        return self._passages.duplicates_of_many(ids)

    def passage_locations(self) -> list[tuple[str, int, str]]:
        """(article id, paragraph, text) of every passage, indexed by chunk id."""
        return self._passages.passage_locations()

    def article(self, article_id: str) -> ArticleRecord | None:
        """An article and its passages, or None when no article has this id."""
        return self._passages.article(article_id)

    def close(self) -> None:
        """Disconnect this generation's client (a later call would reconnect)."""
        self.store.close()
