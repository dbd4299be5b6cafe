"""A Milvus generation is published only once a server has built its indexes and searches
through them (`milvus_client.load_indexed`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from semsearch.index import milvus_client
from semsearch.index.errors import StoreUnavailable
from semsearch.index.milvus_client import flush_and_load, load_indexed


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


class Collections(Server):
    """A server whose every index is built already, recording each call with its collection."""

    def __init__(self) -> None:
        super().__init__(after=0)
        self.log: list[tuple[str, str]] = []

    def flush(self, collection: str) -> None:
        self.log.append(("flush", collection))

    def release_collection(self, collection: str) -> None:
        self.log.append(("release", collection))

    def load_collection(self, collection: str) -> None:
        self.log.append(("load", collection))


def test_a_generations_collections_are_all_flushed_then_each_loaded_once() -> None:
    """Created unloaded, each is loaded once, after every flush; one loaded before its index
    was built (a delete by filter reads it) is released first."""
    server = Collections()
    names = ["gen_3", "gen_3_sentences", "gen_3_vocab"]
    flush_and_load(server, names, loaded={"gen_3"})
    flushes = [call for call in server.log if call[0] == "flush"]
    assert sorted(flushes) == [("flush", name) for name in sorted(names)]
    assert server.log[: len(names)] == flushes  # (every flush before any load)
    loads = server.log[len(names) :]
    assert sorted(loads) == sorted([("load", name) for name in names] + [("release", "gen_3")])
    assert loads.index(("release", "gen_3")) < loads.index(("load", "gen_3"))


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
