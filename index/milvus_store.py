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

This module is the `Store` (`MilvusStore`: list, open, write and remove generations), the
connection (`connect`, `_call`) and what the other two share. Opening a generation:
`index.milvus_generation`; writing one: `index.milvus_writer`. Generation names and keep-N come
from `index.generations`, as for the FAISS store; nothing of the FAISS store is imported.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.errors import IndexCorrupt, IndexNotFound, SemsearchError, StoreUnavailable
from index.generations import generation_name, generation_number
from index.lock import BuildLock
from index.manifest import check_compatible
from index.stores import KEEP_GENERATIONS, VectorIndexSpec

if TYPE_CHECKING:  # both import this module: loaded when first asked for (see open, writer)
    from index.milvus_generation import MilvusGeneration
    from index.milvus_writer import MilvusWriter

__all__ = [
    "INSERT_BATCH",
    "MANIFEST_PROPERTY",
    "MAX_TOP_K",
    "QUERY_BATCH",
    "VARCHAR_MAX",
    "VOCAB_SUFFIX",
    "MilvusStore",
    "connect",
]

log = logging.getLogger("semsearch.milvus")

MANIFEST_PROPERTY = "semsearch_manifest"
VOCAB_SUFFIX = "_vocab"  # beside each generation: the document frequency of every stem
INSERT_BATCH = 1000
QUERY_BATCH = 1000  # ids per `query` call, and rows per page when reading everything
MAX_TOP_K = 16384  # Milvus's limit on one search
VARCHAR_MAX = 65535
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")


def _client_class() -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as error:
        raise StoreUnavailable(
            "SEMSEARCH_STORE=milvus needs pymilvus (and milvus-lite for a local file): "
            "pip install 'semsearch[milvus]'"
        ) from error
    return MilvusClient


def _literal(value: str) -> str:
    """A Milvus filter string literal: double-quoted, with quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_local(uri: str) -> bool:
    return "://" not in uri


class MilvusStore:
    """Generations as collections of one Milvus instance, the live one behind `alias`.

    Builds take their lock in `lock_dir` (the index folder), as FAISS builds do.
    """

    kind = "milvus"
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
        lock_dir: Path = Path("var/index"),
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
        self.lock_dir = lock_dir
        self._client: Any = None
        self._lock = threading.Lock()

    def copy(self) -> MilvusStore:
        """The same configuration, with a connection of its own."""
        return MilvusStore(
            self.uri,
            self.alias,
            self.token,
            self.index_type,
            self.hnsw_m,
            self.ef_construction,
            self.ef_search,
            self.lock_dir,
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
        """Disconnect this store's client (each opened generation has a client of its own)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def describe(self) -> str:
        return f"Milvus at {self.uri} (alias {self.alias})"

    # -- generations ------------------------------------------------------------------------

    def collection_of(self, generation: str) -> str:
        """The collection of a generation: gen-3 -> `<alias>_gen_3` (IndexCorrupt if no name)."""
        return f"{self.alias}_gen_{generation_number(generation)}"

    def _collection_pattern(self) -> re.Pattern[str]:
        return re.compile(re.escape(self.alias) + r"_gen_(\d+)")

    def generation_numbers(self) -> list[int]:
        """The numbers of this alias's generation collections, oldest first."""
        pattern = self._collection_pattern()
        found = []
        for name in _call(self.client().list_collections):
            match = pattern.fullmatch(name)
            if match:
                found.append(int(match.group(1)))
        return sorted(found)

    def generation_names(self) -> list[str]:
        """Every generation collection of this alias, oldest first."""
        return [generation_name(n) for n in self.generation_numbers()]

    def live_generation(self) -> str | None:
        """The generation the alias points at, or None when nothing is published."""
        client = self.client()
        if self.alias not in _call(client.list_aliases).get("aliases", []):
            return None
        target = _call(client.describe_alias, alias=self.alias)["collection_name"]
        match = self._collection_pattern().fullmatch(target)
        return generation_name(int(match.group(1))) if match else None

    def open(
        self,
        model_id: str | None = None,
        dimension: int | None = None,
        generation: str | None = None,
    ) -> MilvusGeneration:
        """Open the live generation (or `generation`), checking its manifest.

        Raises:
            IndexNotFound, IndexIncompatible, IndexCorrupt, StoreUnavailable.
        """
        from index.milvus_generation import MilvusGeneration

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
        # The generation gets a client of its own: closing it leaves this store's connected.
        opened = MilvusGeneration(self.copy(), collection, name, manifest)
        if opened.count() != manifest["counts"]["passages"]:
            raise IndexCorrupt(
                f"collection {collection} holds {opened.count()} passages, its manifest "
                f"{manifest['counts']['passages']}: rebuild with `semsearch index`"
            )
        return opened

    def writer(self, vector_index: VectorIndexSpec | None = None) -> MilvusWriter:
        """A writer for a new generation (the FAISS index choice does not apply here)."""
        from index.milvus_writer import MilvusWriter

        return MilvusWriter(self)

    def remove_old(self, keep: int = KEEP_GENERATIONS) -> list[str]:
        """Drop all but the newest `keep` generations, never the live one."""
        live = self.live_generation()
        removed = []
        for number in self.generation_numbers()[:-keep] if keep else self.generation_numbers():
            name = generation_name(number)
            if name == live:
                continue
            self.drop_generation(name)
            removed.append(name)
        return removed

    def build_lock(self) -> BuildLock:
        """The build lock of `lock_dir` (shared with every process building this store)."""
        return BuildLock(self.lock_dir)

    def reindex_vectors(self, spec: VectorIndexSpec, created_at: str) -> dict[str, Any]:
        """Not here: a Milvus generation is rebuilt whole (its vectors come from the cache)."""
        raise SemsearchError(
            "--reindex-vectors rebuilds a FAISS index; with SEMSEARCH_STORE=milvus run "
            "`semsearch index --force` (stored vectors are reused from the embedding cache)"
        )

    def place(self, generation: str) -> str:
        return f"{self.uri} collection {self.collection_of(generation)} (alias {self.alias})"

    def drop(self) -> list[str]:
        """Remove the alias and every generation collection behind it."""
        client = self.client()
        if self.alias in _call(client.list_aliases).get("aliases", []):
            _call(client.drop_alias, self.alias)
        names = self.generation_names()
        for name in names:
            self.drop_generation(name)
        return names

    def drop_generation(self, name: str) -> None:
        """Drop one generation's collection and its vocabulary, published or not."""
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
