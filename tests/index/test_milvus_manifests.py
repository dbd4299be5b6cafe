"""A Milvus generation's manifest is a row of `<alias>_manifests`, not only a collection
property: a Milvus 2.3 server loses properties when it restarts (milvus-io/milvus#30144)."""

from __future__ import annotations

from pathlib import Path

import pytest

from semsearch.index.builder import build_index
from semsearch.index.errors import IndexCorrupt
from semsearch.index.milvus_client import MANIFEST_PROPERTY
from semsearch.index.milvus_manifests import MANIFESTS_SUFFIX, read_manifest
from semsearch.index.milvus_store import MilvusStore
from tests.conftest import SEEDS, FakeEmbedder

pytest.importorskip("pymilvus")


def _drop_manifest_property(client: object, collection: str) -> None:
    """What a Milvus 2.3 server's restart does to a collection; a server that cannot drop a
    property (2.3 itself) is checked by restarting it instead (docs/operations.md)."""
    from pymilvus import MilvusException

    try:
        client.drop_collection_properties(collection, property_keys=[MANIFEST_PROPERTY])  # type: ignore[attr-defined]
    except MilvusException as error:
        pytest.skip(f"this Milvus cannot drop a collection property ({error.message})")


@pytest.fixture
def store(tmp_path: Path, milvus_uri: str, milvus_alias: str) -> MilvusStore:
    made = MilvusStore(milvus_uri, milvus_alias, index_type="flat", lock_dir=tmp_path / "index")
    build_index(SEEDS, tmp_path / "index", FakeEmbedder(), store=made)
    return made


def test_a_generation_opens_after_its_collection_properties_are_lost(store: MilvusStore) -> None:
    client = store.client()
    collection = store.collection_of("gen-1")
    before = store.open()
    manifest = before.manifest
    before.close()
    _drop_manifest_property(client, collection)
    assert MANIFEST_PROPERTY not in client.describe_collection(collection).get("properties", {})
    after = store.open()  # what a restarted 2.3 server shows
    try:
        assert after.manifest == manifest and after.count() == manifest["counts"]["passages"]
    finally:
        after.close()


def test_a_generation_built_before_the_rows_opens_from_its_property(store: MilvusStore) -> None:
    client = store.client()
    client.drop_collection(store.alias + MANIFESTS_SUFFIX)
    opened = store.open()
    try:
        assert opened.manifest["generation"] == "gen-1"
    finally:
        opened.close()


def test_dropped_generations_take_their_rows_and_a_collection_without_either_is_refused(
    store: MilvusStore, tmp_path: Path
) -> None:
    client = store.client()
    build_index(SEEDS, tmp_path / "index", FakeEmbedder(), store=store)
    build_index(SEEDS, tmp_path / "index", FakeEmbedder(), store=store)
    assert store.generation_names() == ["gen-2", "gen-3"]  # keep-2: gen-1 dropped
    assert not client.has_collection(store.collection_of("gen-1"))
    # A server's default (Bounded) read can still show the row just deleted; Milvus 2.3 wants
    # a limit on a query without a filter.
    rows = client.query(
        store.alias + MANIFESTS_SUFFIX,
        filter="",
        output_fields=["collection"],
        limit=100,
        consistency_level="Strong",
    )
    assert sorted(row["collection"] for row in rows) == [
        store.collection_of("gen-2"),
        store.collection_of("gen-3"),
    ]
    gen3 = store.collection_of("gen-3")
    _drop_manifest_property(client, gen3)
    client.delete(store.alias + MANIFESTS_SUFFIX, filter=f'collection == "{gen3}"')
    assert read_manifest(client, store.alias, gen3) is None
    with pytest.raises(IndexCorrupt, match="no semsearch manifest"):
        store.open()
    store.drop()
    assert not client.has_collection(store.alias + MANIFESTS_SUFFIX)
