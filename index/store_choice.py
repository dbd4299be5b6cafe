"""The stores by name: `make_store("faiss" | "milvus", ...)` for the configuration's choice.

Each concrete store is imported only when it is asked for (pymilvus loads only for Milvus).
"""

from __future__ import annotations

from pathlib import Path

from semsearch.index.stores import Store

__all__ = ["STORE_KINDS", "make_store"]

STORE_KINDS = ("faiss", "milvus")


def make_store(
    kind: str,
    index_dir: Path,
    *,
    milvus_uri: str = "var/milvus.db",
    milvus_token: str = "",
    milvus_collection: str = "semsearch",
    milvus_index: str = "hnsw",
    hnsw_m: int = 32,
    hnsw_ef_search: int = 128,
) -> Store:
    """The store of this kind: FAISS + SQLite files in `index_dir`, or Milvus at `milvus_uri`
    (builds of either take their lock in `index_dir`).

    Raises:
        StoreUnavailable: Milvus is named but pymilvus is not installed or cannot connect.
        ValueError: an unknown kind.
    """
    if kind == "faiss":
        from semsearch.index.faiss_store import FaissStore

        return FaissStore(index_dir)
    if kind == "milvus":
        from semsearch.index.milvus_store import MilvusStore  # pymilvus loads only when asked for

        return MilvusStore(
            uri=milvus_uri,
            alias=milvus_collection,
            token=milvus_token,
            index_type=milvus_index,
            hnsw_m=hnsw_m,
            ef_search=hnsw_ef_search,
            lock_dir=index_dir,
        )
    raise ValueError(f"unknown store {kind!r}: use {' or '.join(STORE_KINDS)}")
