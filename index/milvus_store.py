"""The Milvus store: each generation a Milvus collection, the live one named by an alias.

For corpora that outgrow one machine. Works with Milvus Lite (a local folder such as
`var/milvus.db`, in-process) and with a Milvus server or cluster (`http://host:19530`).

One collection per generation (`<alias>_gen_<n>`) holds, per passage: the chunk id (primary
key), article id, paragraph, part, heading, title, text, character span, near-duplicate group,
the article's section, date ("" when none), author and url (format 5 on), the dense vector
(an HNSW or FLAT index, inner product), and `terms`, the Porter stems of title, heading and
text (`index.analysis`), which a BM25 function turns into a sparse vector for Milvus's own
full-text search. Stemming here rather than in the engine gives the lexical leg the
words SQLite FTS5 sees on every Milvus version (Milvus Lite's analyzer does not stem).
Beside it, as the FAISS store keeps them: `<alias>_gen_<n>_sentences`, the vectors of each
passage's sentences (`index.milvus_sentences`); `<alias>_gen_<n>_articles`, each article whole
for article-level BM25 (`index.milvus_articles`); and `<alias>_gen_<n>_vocab`, each stem's
document frequencies.

A build fills a new collection, flushes it, records the manifest (a row of `<alias>_manifests`,
`index.milvus_manifests`: it survives a server restart), and only then points the alias at it:
searchers see the old generation or the new one, never half.

This module is the `Store` (`MilvusStore`: list, open, write and remove generations); the
connection and what the modules share are `index.milvus_client`. Opening a generation:
`index.milvus_generation`; writing one: `index.milvus_writer`. Generation names and keep-N come
from `index.generations`, as for the FAISS store; nothing of the FAISS store is imported.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

from semsearch.index.errors import IndexCorrupt, IndexNotFound, SemsearchError, StoreUnavailable
from semsearch.index.generations import generation_name, generation_number
from semsearch.index.lock import BuildLock
from semsearch.index.manifest import check_compatible
from semsearch.index.milvus_articles import ARTICLES_SUFFIX
from semsearch.index.milvus_client import (
    MANIFEST_PROPERTY,
    VOCAB_SUFFIX,
    call,
    connect,
    valid_name,
)
from semsearch.index.milvus_generation import MilvusGeneration
from semsearch.index.milvus_manifests import drop_manifest, read_manifest
from semsearch.index.milvus_sentences import SENTENCES_SUFFIX
from semsearch.index.milvus_writer import MilvusWriter
from semsearch.index.stores import KEEP_GENERATIONS, VectorIndexSpec

__all__ = ["MANIFEST_PROPERTY", "MilvusStore", "connect"]

log = logging.getLogger("semsearch.milvus")


class MilvusStore:
    """Generations as collections of one Milvus instance, the live one behind `alias`.

    Builds take their lock in `lock_dir` (the index folder), as FAISS builds do.
    """

    kind = "milvus"
    keeps_sentences = True  # in a collection beside each generation's

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
        if not valid_name(alias):
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
        for name in call(self.client().list_collections):
            match = pattern.fullmatch(name)
            if match:
                found.append(int(match.group(1)))
        return sorted(found)

    def generation_names(self) -> list[str]:
        """Every generation collection of this alias, oldest first."""
        return [generation_name(n) for n in self.generation_numbers()]

    def live_generation(self) -> str | None:
        """The generation the alias points at, or None when nothing is published (or the alias
        points at a collection that is none of its generations)."""
        target = self._alias_target()
        match = self._collection_pattern().fullmatch(target or "")
        return generation_name(int(match.group(1))) if match else None

    def _alias_target(self) -> str | None:
        """The collection the alias points at, or None when there is no alias."""
        client = self.client()
        if self.alias not in call(client.list_aliases).get("aliases", []):
            return None
        return str(call(client.describe_alias, alias=self.alias)["collection_name"])

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

        name = generation or self.live_generation()
        if name is None:
            self._check_alias()
            raise IndexNotFound(
                f"nothing indexed in {self.describe()}: run `semsearch index` first"
            )
        collection = self.collection_of(name)
        client = self.client()
        if not call(client.has_collection, collection):
            raise IndexNotFound(f"{self.describe()} has no collection {collection}")
        manifest = read_manifest(client, self.alias, collection)
        if manifest is None:
            raise IndexCorrupt(
                f"collection {collection} has no semsearch manifest (an unfinished build?): "
                "rebuild with `semsearch index`"
            )
        check_compatible(manifest, self.describe(), model_id, dimension)
        call(client.load_collection, collection)
        beside = manifest.get("milvus", {})
        for each in ("vocab", "sentences", "articles"):
            if beside.get(each):
                call(client.load_collection, beside[each])
        # The generation gets a client of its own: closing it leaves this store's connected.
        opened = MilvusGeneration(self.copy(), collection, name, manifest)
        if opened.count() != manifest["counts"]["passages"]:
            raise IndexCorrupt(
                f"collection {collection} holds {opened.count()} passages, its manifest "
                f"{manifest['counts']['passages']}: rebuild with `semsearch index`"
            )
        return opened

    def _check_alias(self) -> None:
        """Raise IndexCorrupt when the alias points at a collection that is none of its
        generations (moved by hand): Milvus's counterpart of a CURRENT file holding garbage."""
        target = self._alias_target()
        if target is not None and not self._collection_pattern().fullmatch(target):
            raise IndexCorrupt(
                f"Milvus alias {self.alias} points at collection {target}, which is not one of "
                f"its generations ({self.alias}_gen_<n>): run `semsearch index` to build one "
                "and point the alias at it"
            )

    def writer(self, vector_index: VectorIndexSpec | None = None) -> MilvusWriter:
        """A writer for a new generation (the FAISS index choice does not apply here)."""

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
        if self.alias in call(client.list_aliases).get("aliases", []):
            call(client.drop_alias, self.alias)
        names = self.generation_names()
        for name in names:
            self.drop_generation(name)
        drop_manifest(client, self.alias, "", every=True)
        return names

    def drop_generation(self, name: str) -> None:
        """Drop one generation's collection and those beside it, published or not."""
        client = self.client()
        collection = self.collection_of(name)
        beside = (VOCAB_SUFFIX, SENTENCES_SUFFIX, ARTICLES_SUFFIX)
        for each in (collection, *(collection + suffix for suffix in beside)):
            if call(client.has_collection, each):
                call(client.drop_collection, each)
        drop_manifest(client, self.alias, collection)

    def vector_index_params(self) -> dict[str, Any]:
        if self.index_type == "flat":
            return {"index_type": "FLAT", "metric_type": "IP", "params": {}}
        return {
            "index_type": "HNSW",
            "metric_type": "IP",
            "params": {"M": self.hnsw_m, "efConstruction": self.ef_construction},
        }
