"""A Milvus generation is published only once a server has built its indexes and searches
through them (`milvus_client.load_indexed`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from semsearch.index import milvus_client
from semsearch.index.errors import StoreUnavailable
from semsearch.index.milvus_client import load_indexed


class Server:
    """A client whose one index is built `after` describe calls (never: None; Lite: no counts)."""

    def __init__(self, after: int | None, counts: bool = True):
        self.after, self.counts, self.calls = after, counts, []  # type: list[str]
        self.described = 0

    def list_indexes(self, collection: str) -> list[str]:
        return ["vector"]

    def describe_index(self, collection: str, name: str) -> dict[str, Any]:
        self.calls.append("describe")
        self.described += 1
        if not self.counts:
            return {"index_type": "HNSW", "field_name": "vector"}
        built = self.after is not None and self.described > self.after
        pending = 0 if built else 40
        return {"total_rows": 100, "indexed_rows": 100 - pending, "pending_index_rows": pending}

    def release_collection(self, collection: str) -> None:
        self.calls.append("release")

    def load_collection(self, collection: str) -> None:
        self.calls.append("load")


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(milvus_client, "INDEX_POLL_SECONDS", 0)


def test_a_server_is_waited_for_then_the_collection_loaded() -> None:
    server = Server(after=3)
    load_indexed(server, "semsearch_gen_2")
    assert server.calls == ["describe"] * 4 + ["load"]


def test_a_collection_loaded_before_its_index_was_built_is_loaded_again() -> None:
    """Built but loaded before, a collection may still be searched without its index."""
    server = Server(after=0)
    load_indexed(server, "semsearch_gen_2", reload=True)
    assert server.calls == ["describe", "release", "load"]


def test_milvus_lite_has_nothing_to_wait_for() -> None:
    lite = Server(after=None, counts=False)
    load_indexed(lite, "semsearch_gen_2")
    assert lite.calls == ["describe", "load"]


def test_an_index_never_built_fails_the_build_with_what_to_do() -> None:
    with pytest.raises(
        StoreUnavailable,
        match=r"did not build the index vector of semsearch_gen_2 .*\(60 of 100 rows\)",
    ):
        load_indexed(Server(after=None), "semsearch_gen_2", seconds=0.01)


def test_a_published_generation_is_indexed(
    tmp_path: Path, milvus_uri: str, milvus_alias: str
) -> None:
    """On a server, every row of the passages, the sentences and the vocabulary is indexed
    once the build returns, and each is loaded (Milvus Lite gives no counts)."""
    from semsearch.index.builder import build_index
    from semsearch.index.milvus_client import VOCAB_SUFFIX
    from semsearch.index.milvus_sentences import SENTENCES_SUFFIX
    from semsearch.index.milvus_store import MilvusStore
    from tests.conftest import FakeEmbedder
    from tests.index.test_stores import synthetic_corpus

    corpus = synthetic_corpus(tmp_path / "corpus", articles=200)
    milvus = MilvusStore(milvus_uri, milvus_alias, index_type="hnsw", lock_dir=tmp_path / "mv")
    try:
        build_index(corpus, tmp_path / "mv", FakeEmbedder(dimension=384), store=milvus)
        client = milvus.client()
        collection = milvus.collection_of("gen-1")
        for name in (collection, collection + SENTENCES_SUFFIX, collection + VOCAB_SUFFIX):
            assert str(client.get_load_state(name)["state"]).endswith("Loaded")
            for index_name in client.list_indexes(name):
                index = client.describe_index(name, index_name)
                if "pending_index_rows" in index:
                    assert index["pending_index_rows"] == 0
                    assert index["indexed_rows"] == index["total_rows"] > 0
    finally:
        milvus.drop()
