"""The Milvus store: each generation a Milvus collection, the live one named by an alias.

For corpora that outgrow one machine. Works with Milvus Lite (a local folder such as
`var/milvus.db`, in-process) and with a Milvus server or cluster (`http://host:19530`).

One collection per generation (`<alias>_gen_<n>`) holds, per passage: the chunk id (primary
key), article id, paragraph, part, heading, title, text, character span, near-duplicate group,
the dense vector (an HNSW or FLAT index, inner product), and `terms`, the Porter stems of title,
heading and text (`index.analysis`), which a BM25 function turns into a sparse vector for
Milvus's own full-text search. Stemming here rather than in the engine gives the lexical leg the
words SQLite FTS5 sees on every Milvus version (Milvus Lite's analyzer does not stem).

A build fills a new collection, flushes it, records the manifest as a collection property, and
only then points the alias at it: searchers see the old generation or the new one, never half.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.analysis import stems
from index.articles import Article
from index.backends import check_rows
from index.chunking import Chunk
from index.errors import IndexCorrupt, IndexNotFound, StoreUnavailable
from index.store import (
    BM25_B,
    BM25_K1,
    ArticleRecord,
    ChunkRecord,
    SentenceVectors,
    VectorIndexSpec,
    bm25_ceiling,
    check_compatible,
)

__all__ = ["MANIFEST_PROPERTY", "MilvusBackend", "MilvusStore", "MilvusWriter"]

log = logging.getLogger("semsearch.milvus")

MANIFEST_PROPERTY = "semsearch_manifest"
VOCAB_SUFFIX = "_vocab"  # beside each generation: the document frequency of every stem
INSERT_BATCH = 1000
QUERY_BATCH = 1000  # ids per `query` call, and rows per page when reading everything
MAX_TOP_K = 16384  # Milvus's limit on one search
VARCHAR_MAX = 65535
# The fields of a ChunkRecord, in its order.
_ID_FIELDS = ["id", "article_id", "title", "paragraph", "part", "heading", "text", "start", "end"]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")


def _client_class() -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as error:
        raise StoreUnavailable(
            "SEMSEARCH_BACKEND=milvus needs pymilvus (and milvus-lite for a local file): "
            "pip install 'semsearch[milvus]'"
        ) from error
    return MilvusClient


def _literal(value: str) -> str:
    """A Milvus filter string literal: double-quoted, with quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_local(uri: str) -> bool:
    return "://" not in uri


class MilvusBackend:
    """Generations as collections of one Milvus instance, the live one behind `alias`."""

    name = "milvus"
    keeps_sentences = False  # one vector a passage: no sentence vectors are embedded for it

    def __init__(
        self,
        uri: str,
        alias: str = "semsearch",
        token: str = "",
        index_type: str = "hnsw",
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
    ):
        if not _NAME.fullmatch(alias):
            raise StoreUnavailable(
                f"SEMSEARCH_MILVUS_COLLECTION={alias!r} is not a Milvus name: use letters, digits "
                "and underscores, starting with a letter or underscore"
            )
        if index_type not in ("hnsw", "flat"):
            raise StoreUnavailable(f"unknown Milvus index {index_type!r}: use hnsw or flat")
        self.uri = uri
        self.alias = alias
        self.token = token
        self.index_type = index_type
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self._client: Any = None
        self._lock = threading.Lock()

    def copy(self) -> MilvusBackend:
        """The same configuration, with a connection of its own."""
        return MilvusBackend(
            self.uri,
            self.alias,
            self.token,
            self.index_type,
            self.hnsw_m,
            self.ef_construction,
            self.ef_search,
        )

    # -- connection -------------------------------------------------------------------------

    def client(self) -> Any:
        """The MilvusClient, connected on first use.

        Raises:
            StoreUnavailable: pymilvus is missing, or Milvus cannot be reached or opened.
        """
        with self._lock:
            if self._client is None:
                self._client = connect(self.uri, self.token)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def describe(self) -> str:
        return f"Milvus at {self.uri} (alias {self.alias})"

    # -- generations ------------------------------------------------------------------------

    def collection_of(self, generation: str) -> str:
        number = generation.removeprefix("gen-")
        if not number.isdigit():
            raise IndexCorrupt(f"{generation!r} is not a generation name such as gen-3")
        return f"{self.alias}_gen_{int(number)}"

    def _numbers(self) -> list[int]:
        pattern = re.compile(re.escape(self.alias) + r"_gen_(\d+)")
        found = []
        for name in _call(self.client().list_collections):
            match = pattern.fullmatch(name)
            if match:
                found.append(int(match.group(1)))
        return sorted(found)

    def generation_names(self) -> list[str]:
        """Every generation collection of this alias, oldest first."""
        return [f"gen-{n}" for n in self._numbers()]

    def live_generation(self) -> str | None:
        """The generation the alias points at, or None when nothing is published."""
        client = self.client()
        if self.alias not in _call(client.list_aliases).get("aliases", []):
            return None
        target = _call(client.describe_alias, alias=self.alias)["collection_name"]
        match = re.fullmatch(re.escape(self.alias) + r"_gen_(\d+)", target)
        return f"gen-{match.group(1)}" if match else None

    def open(
        self,
        model_id: str | None = None,
        dimension: int | None = None,
        generation: str | None = None,
    ) -> MilvusStore:
        """Open the live generation (or `generation`), checking its manifest.

        Raises:
            IndexNotFound, IndexIncompatible, IndexCorrupt, StoreUnavailable.
        """
        name = generation or self.live_generation()
        if name is None:
            raise IndexNotFound(
                f"nothing indexed in {self.describe()}: run `semsearch index` first"
            )
        collection = self.collection_of(name)
        client = self.client()
        if not _call(client.has_collection, collection):
            raise IndexNotFound(f"{self.describe()} has no collection {collection}")
        properties = _call(client.describe_collection, collection).get("properties", {})
        try:
            manifest = json.loads(properties[MANIFEST_PROPERTY])
        except (KeyError, TypeError, ValueError):
            raise IndexCorrupt(
                f"collection {collection} has no semsearch manifest (an unfinished build?): "
                "rebuild with `semsearch index`"
            ) from None
        check_compatible(manifest, self.describe(), model_id, dimension)
        _call(client.load_collection, collection)
        vocab = manifest.get("milvus", {}).get("vocab")
        if vocab:
            _call(client.load_collection, vocab)
        # The store gets a client of its own: closing it leaves this backend's connected.
        store = MilvusStore(self.copy(), collection, name, manifest)
        if store.count() != manifest["counts"]["passages"]:
            raise IndexCorrupt(
                f"collection {collection} holds {store.count()} passages, its manifest "
                f"{manifest['counts']['passages']}: rebuild with `semsearch index`"
            )
        return store

    def writer(self, vector_index: VectorIndexSpec | None = None) -> MilvusWriter:
        """A writer for a new generation (the FAISS index choice does not apply here)."""
        return MilvusWriter(self)

    def remove_old(self, keep: int = 2) -> list[str]:
        """Drop all but the newest `keep` generations, never the live one."""
        live = self.live_generation()
        removed = []
        for number in self._numbers()[:-keep] if keep else self._numbers():
            name = f"gen-{number}"
            if name == live:
                continue
            self._drop_generation(name)
            removed.append(name)
        return removed

    def drop(self) -> list[str]:
        """Remove the alias and every generation collection behind it."""
        client = self.client()
        if self.alias in _call(client.list_aliases).get("aliases", []):
            _call(client.drop_alias, self.alias)
        names = self.generation_names()
        for name in names:
            self._drop_generation(name)
        return names

    def _drop_generation(self, name: str) -> None:
        client = self.client()
        collection = self.collection_of(name)
        for each in (collection, collection + VOCAB_SUFFIX):
            if _call(client.has_collection, each):
                _call(client.drop_collection, each)

    def vector_index_params(self) -> dict[str, Any]:
        if self.index_type == "flat":
            return {"index_type": "FLAT", "metric_type": "IP", "params": {}}
        return {
            "index_type": "HNSW",
            "metric_type": "IP",
            "params": {"M": self.hnsw_m, "efConstruction": self.ef_construction},
        }


def connect(uri: str, token: str = "") -> Any:
    """A MilvusClient for `uri`; a local path opens (or creates) a Milvus Lite folder."""
    client_class = _client_class()
    if _is_local(uri):
        if not uri.endswith(".db"):
            raise StoreUnavailable(
                f"SEMSEARCH_MILVUS_URI={uri!r}: a Milvus Lite path must end in .db "
                "(such as var/milvus.db), or give http://host:19530 for a Milvus server"
            )
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    # Milvus Lite logs its own traceback when it cannot open a folder: the error below says it.
    lite_log = logging.getLogger("milvus_lite")
    level = lite_log.level
    lite_log.setLevel(logging.CRITICAL)
    try:
        return client_class(uri=uri, token=token) if token else client_class(uri=uri)
    except Exception as error:
        reason = str(error)
        if _is_local(uri) and ("lock" in reason.lower() or "Open local milvus failed" in reason):
            raise StoreUnavailable(
                f"Milvus Lite folder {uri} is in use by another process (a running "
                "`semsearch serve`?): stop it first, or serve the folder with "
                f"`milvus-lite server --data-dir {uri}` and set SEMSEARCH_MILVUS_URI to its "
                "http:// address"
            ) from None
        raise StoreUnavailable(f"cannot connect to Milvus at {uri}: {reason}") from None
    finally:
        lite_log.setLevel(level)


def _unreachable(error: Exception) -> bool:
    text = str(error).lower()
    return any(word in text for word in ("unavailable", "connect", "deadline", "timeout"))


def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the Milvus client; a connection failure becomes StoreUnavailable."""
    try:
        return method(*args, **kwargs)
    except Exception as error:
        if _unreachable(error):
            raise StoreUnavailable(f"Milvus cannot be reached: {error}") from None
        raise


class MilvusWriter:
    """Fills a new generation collection; `commit` points the alias at it."""

    def __init__(self, backend: MilvusBackend):
        self.backend = backend
        self._collection: str | None = None
        self._name: str | None = None
        self._articles: dict[str, int] = {}  # article id -> passages added
        self._next_id = 0
        self._terms: dict[str, Counter[str]] = {}  # article id -> passages holding each stem
        self._lexical = True

    def _create(self, dimension: int) -> str:
        from pymilvus import DataType, Function, FunctionType

        client = self.backend.client()
        numbers = self.backend._numbers()
        live = self.backend.live_generation()
        # A collection newer than the live one and never published is a crashed build's: drop it.
        for number in numbers:
            name = f"gen-{number}"
            if live is not None and number > int(live.removeprefix("gen-")):
                collection = self.backend.collection_of(name)
                properties = client.describe_collection(collection).get("properties", {})
                if MANIFEST_PROPERTY not in properties:
                    self.backend._drop_generation(name)
        self._name = f"gen-{(numbers[-1] if numbers else 0) + 1}"
        collection = self.backend.collection_of(self._name)

        def schema(with_bm25: bool) -> tuple[Any, Any]:
            made = client.create_schema(auto_id=False, enable_dynamic_field=False)
            made.add_field("id", DataType.INT64, is_primary=True)
            made.add_field("article_id", DataType.VARCHAR, max_length=VARCHAR_MAX)
            for field in ("paragraph", "part", "start", "end", "dup_group"):
                made.add_field(field, DataType.INT64)
            made.add_field("grouped", DataType.BOOL)
            for field in ("heading", "title", "text"):
                made.add_field(field, DataType.VARCHAR, max_length=VARCHAR_MAX)
            made.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_MAX, enable_analyzer=True)
            made.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
            index = client.prepare_index_params()
            index.add_index("vector", **self.backend.vector_index_params())
            if with_bm25:
                made.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
                made.add_function(
                    Function(
                        name="terms_bm25",
                        function_type=FunctionType.BM25,
                        input_field_names=["terms"],
                        output_field_names=["sparse"],
                    )
                )
                index.add_index(
                    "sparse",
                    index_type="SPARSE_INVERTED_INDEX",
                    metric_type="BM25",
                    params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},  # as SQLite FTS5
                )
            return made, index

        made, index = schema(with_bm25=True)
        try:
            _call(client.create_collection, collection, schema=made, index_params=index)
        except StoreUnavailable:
            raise
        except Exception as error:
            # Full-text search (BM25 functions) came with Milvus 2.5: say so, and go on dense.
            log.warning(
                "%s cannot create a BM25 function (%s): this index has no lexical leg; hybrid "
                "search will be dense only and lexical search refused",
                self.backend.describe(),
                error,
            )
            if client.has_collection(collection):
                client.drop_collection(collection)
            made, index = schema(with_bm25=False)
            _call(client.create_collection, collection, schema=made, index_params=index)
            self._lexical = False
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
        # Sentence vectors are not kept here: a passage's cosine is not raised toward its best
        # sentence's in Milvus (README "Scaling out").
        check_rows(chunks, vectors, groups)
        collection = self._collection or self._create(int(np.asarray(vectors).shape[1]))
        first_id = self._next_id
        self._next_id += len(chunks)
        titles = {article.id: article.title for article in articles}
        for article in articles:
            self._articles.setdefault(article.id, 0)
        groups = np.asarray(groups, dtype=np.int64)
        values, counts = np.unique(groups, return_counts=True)
        shared = {int(value) + first_id for value in values[counts > 1].tolist()}
        client = self.backend.client()
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
                        "terms": terms,
                        "vector": np.asarray(vectors[row], dtype=np.float32).tolist(),
                    }
                )
                self._articles[chunk.article_id] += 1
            _check_lengths(rows)
            _call(client.insert, collection, rows)

    def delete_article(self, article_id: str) -> int:
        passages = self._articles.pop(article_id, 0)
        self._terms.pop(article_id, None)
        if passages and self._collection is not None:
            _call(
                self.backend.client().delete,
                self._collection,
                filter=f"article_id == {_literal(article_id)}",
            )
        return passages

    def commit(self, manifest: dict[str, Any]) -> str:
        if self._collection is None or self._name is None:
            raise ValueError("nothing was added to this generation")
        client = self.backend.client()
        _call(client.flush, self._collection)
        rows = _call(client.query, self._collection, filter="", output_fields=["count(*)"])
        passages = int(rows[0]["count(*)"])
        shared = _call(
            client.query, self._collection, filter="grouped == true", output_fields=["count(*)"]
        )
        grouped = int(shared[0]["count(*)"])
        leaders = _call(
            client.query,
            self._collection,
            filter="grouped == true and dup_group == id",
            output_fields=["count(*)"],
        )
        vocab = self._write_vocab()
        written = {
            **manifest,
            "format_version": manifest.get("format_version", _format_version()),
            "generation": self._name,
            "store": "milvus",
            "milvus": {
                "collection": self._collection,
                "alias": self.backend.alias,
                **self.backend.vector_index_params(),
                "lexical": "bm25 function over porter stems" if self._lexical else "unavailable",
                "vocab": vocab,
            },
            "counts": {
                "articles": len(self._articles),
                "passages": passages,
                "duplicate_passages": grouped - int(leaders[0]["count(*)"]),
            },
        }
        _call(
            client.alter_collection_properties,
            self._collection,
            properties={MANIFEST_PROPERTY: json.dumps(written)},
        )
        if self.backend.alias in _call(client.list_aliases).get("aliases", []):
            _call(client.alter_alias, self._collection, self.backend.alias)
        else:
            _call(client.create_alias, self._collection, self.backend.alias)
        return self._name

    def _write_vocab(self) -> str:
        """A collection of (stem, passages holding it), for `MilvusStore.lexical_ceiling`."""
        from pymilvus import DataType

        assert self._collection is not None
        client = self.backend.client()
        vocab = self._collection + VOCAB_SUFFIX
        frequencies: Counter[str] = Counter()
        for counts in self._terms.values():
            frequencies.update(counts)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("term", DataType.VARCHAR, is_primary=True, max_length=VARCHAR_MAX)
        schema.add_field("df", DataType.INT64)
        schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
        index = client.prepare_index_params()
        index.add_index("unused", index_type="FLAT", metric_type="L2")
        if _call(client.has_collection, vocab):
            _call(client.drop_collection, vocab)
        _call(client.create_collection, vocab, schema=schema, index_params=index)
        items = sorted(frequencies.items())
        for offset in range(0, len(items), INSERT_BATCH * 5):
            rows = [
                {"term": term, "df": df, "unused": [0.0, 0.0]}
                for term, df in items[offset : offset + INSERT_BATCH * 5]
            ]
            _call(client.insert, vocab, rows)
        _call(client.flush, vocab)
        return vocab

    def abort(self) -> None:
        if self._name is not None:
            try:
                self.backend._drop_generation(self._name)
            except Exception as error:  # best effort: the next build drops it anyway
                log.warning("could not drop unfinished collection %s: %s", self._collection, error)
            self._collection = None


def _format_version() -> int:
    from index.store import FORMAT_VERSION

    return FORMAT_VERSION


def _check_lengths(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        for field in ("article_id", "heading", "title", "text", "terms"):
            if len(row[field].encode("utf-8", "surrogatepass")) > VARCHAR_MAX:
                raise StoreUnavailable(
                    f"{row['article_id']}: a passage's {field} is longer than Milvus's "
                    f"{VARCHAR_MAX}-byte limit on text fields"
                )


class MilvusStore:
    """One generation collection, opened for searching; safe to share between threads."""

    has_stored_vectors = True  # every passage's vector is in its collection
    has_sentence_vectors = False  # the writer does not keep them

    searches_in_process = False  # Milvus searches in its own server: more may run at once

    def __init__(self, backend: MilvusBackend, collection: str, name: str, manifest: dict):
        self.backend = backend
        self.collection = collection
        self.manifest = manifest
        self._name = name
        self.has_lexical = manifest.get("milvus", {}).get("lexical") != "unavailable"

    @property
    def generation(self) -> str:
        return self._name

    @property
    def location(self) -> str:
        return f"{self.backend.uri} collection {self.collection}"

    def check_dimension(self, dimension: int) -> None:
        check_compatible(self.manifest, self.backend.describe(), None, dimension)

    def _client(self) -> Any:
        return self.backend.client()

    def count(self) -> int:
        rows = _call(self._client().query, self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def describe(self) -> dict[str, Any]:
        return {
            "store": "milvus",
            "location": self.backend.uri,
            "generation": self.generation,
            "passages": self.manifest["counts"]["passages"],
            "vector_index": self.manifest.get("milvus", {}),
            "lexical": self.manifest.get("milvus", {}).get("lexical"),
        }

    def _search(
        self, data: list[Any], field: str, k: int, params: dict[str, Any], article: str | None
    ) -> list[tuple[int, float]]:
        found = _call(
            self._client().search,
            self.collection,
            data=data,
            anns_field=field,
            limit=min(k, MAX_TOP_K),
            filter="" if article is None else f"article_id == {_literal(article)}",
            search_params=params,
            output_fields=["id"],
        )
        return [(int(hit["id"]), float(hit["distance"])) for hit in found[0]]

    def dense_search(
        self, vector: np.ndarray, k: int, article: str | None = None
    ) -> list[tuple[int, float]]:
        """The `k` passages nearest to a normalised query vector: (chunk id, inner product)."""
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.backend.index_type == "hnsw":
            params["params"] = {"ef": max(self.backend.ef_search, min(k, MAX_TOP_K))}
        query = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        hits = self._search([query], "vector", k, params, article)
        return sorted(hits, key=lambda hit: (-hit[1], hit[0]))

    def lexical_search(
        self, terms: Sequence[str], k: int, article: str | None = None
    ) -> list[tuple[int, float]]:
        """BM25 over the stems of title, heading and text: (chunk id, score), higher is better.

        The terms are stemmed as the passages were and given to Milvus as plain text, which its
        analyzer only splits into words: no user text is read as syntax.
        """
        if not self.has_lexical:
            return []
        wanted = list(dict.fromkeys(s for term in terms for s in stems(term)))
        if not wanted:
            return []
        hits = self._search([" ".join(wanted)], "sparse", k, {"metric_type": "BM25"}, article)
        # Milvus returns BM25 scores best first; Milvus Lite negates them. Scores are >= 0.
        return sorted(((i, abs(s)) for i, s in hits), key=lambda hit: (-hit[1], hit[0]))

    def lexical_ceiling(self, terms: Sequence[str]) -> float:
        """The largest BM25 score `lexical_search(terms)` could give a passage here.

        As in the FAISS store, from each stem's document frequency (kept beside the collection
        by the build) and the passage count; the index uses FTS5's k1 and b.
        """
        wanted = [s for term in terms for s in stems(term)]
        vocab = self.manifest.get("milvus", {}).get("vocab")
        if not wanted or not vocab:
            return 0.0
        found: dict[str, int] = {}
        distinct = sorted(set(wanted))
        for offset in range(0, len(distinct), QUERY_BATCH):
            batch = distinct[offset : offset + QUERY_BATCH]
            rows = _call(self._client().query, vocab, ids=batch, output_fields=["df"])
            found.update((row["term"], int(row["df"])) for row in rows)
        passages = int(self.manifest["counts"]["passages"])
        # Milvus computes idf as Lucene does: ln(1 + (N - df + 0.5) / (df + 0.5)).
        return bm25_ceiling([found.get(term, 0) for term in wanted], passages, idf="lucene")

    def similarities(self, ids: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The inner product of a query vector with the stored vectors of these passages."""
        wanted = [int(i) for i in ids]
        if not wanted:
            return np.zeros(0, dtype=np.float32)
        found = {int(row["id"]): row["vector"] for row in self._rows(wanted, ["id", "vector"])}
        # A passage deleted since the search (a concurrent rebuild) scores as unrelated.
        zero = np.zeros(len(vector), dtype=np.float32)
        stored = np.array([found.get(i, zero) for i in wanted], dtype=np.float32)
        return stored @ np.asarray(vector, dtype=np.float32).reshape(-1)

    def sentence_similarities(self, ids: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """No sentence vectors here: -inf for every passage (see `IndexStore`)."""
        return np.full(len(ids), -np.inf)

    def _rows(self, ids: Sequence[int], fields: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for offset in range(0, len(ids), QUERY_BATCH):
            batch = [int(i) for i in ids[offset : offset + QUERY_BATCH]]
            found = _call(self._client().query, self.collection, ids=batch, output_fields=fields)
            rows.extend(found)
        return rows

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]:
        """The stored passages with these ids (unknown ids are left out)."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        return {
            int(row["id"]): ChunkRecord(*(row[field] for field in _ID_FIELDS))
            for row in self._rows(wanted, _ID_FIELDS)
        }

    def passage_keys(self, ids: np.ndarray) -> tuple[dict[int, int], dict[int, str]]:
        """The near-duplicate group and article of each of `ids`, looked up in one query."""
        rows = self._rows(np.asarray(ids).tolist(), ["dup_group", "article_id"])
        groups = {int(row["id"]): int(row["dup_group"]) for row in rows}
        articles = {int(row["id"]): row["article_id"] for row in rows}
        return groups, articles

    def duplicates_of(self, chunk_id: int) -> list[tuple[int, str, int]]:
        """(chunk id, article id, paragraph) of the other passages in this chunk's group."""
        own = self._rows([chunk_id], ["grouped", "dup_group"])
        if not own or not own[0]["grouped"]:
            return []
        rows = _call(
            self._client().query,
            self.collection,
            filter=f"dup_group == {int(own[0]['dup_group'])} and id != {int(chunk_id)}",
            output_fields=["article_id", "paragraph"],
        )
        return sorted((int(r["id"]), r["article_id"], int(r["paragraph"])) for r in rows)

    def _all(self, fields: list[str]) -> list[dict[str, Any]]:
        """Every row, a page at a time, by ascending id."""
        rows: list[dict[str, Any]] = []
        last = -1
        while True:
            page = _call(
                self._client().query,
                self.collection,
                filter=f"id > {last}",
                output_fields=fields,
                limit=QUERY_BATCH,
            )
            if not page:
                return rows
            page.sort(key=lambda row: int(row["id"]))
            rows.extend(page)
            last = int(page[-1]["id"])

    def passage_locations(self) -> list[tuple[str, int, str]]:
        """(article id, paragraph, text) of every passage, indexed by chunk id."""
        rows = self._all(["article_id", "paragraph", "text"])
        located: list[tuple[str, int, str]] = [("", 0, "")] * (
            int(rows[-1]["id"]) + 1 if rows else 0
        )
        for row in rows:
            located[int(row["id"])] = (row["article_id"], int(row["paragraph"]), row["text"])
        return located

    def article(self, article_id: str) -> ArticleRecord | None:
        """An article and its passages, or None when no article has this id."""
        rows = _call(
            self._client().query,
            self.collection,
            filter=f"article_id == {_literal(article_id)}",
            output_fields=_ID_FIELDS,
        )
        if not rows:
            return None
        records = sorted(
            (ChunkRecord(*(row[field] for field in _ID_FIELDS)) for row in rows),
            key=lambda record: (record.paragraph, record.part),
        )
        return ArticleRecord(article_id, records[0].title, tuple(records))

    def close(self) -> None:
        """Disconnect this store's client (a later call would reconnect)."""
        self.backend.close()
