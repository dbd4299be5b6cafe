"""The manifests of a Milvus alias's generations, kept as rows of a collection of their own.

A generation's manifest (what it was built from, its counts, its vocabulary collection) was a
property of its collection; a Milvus 2.3 server loses collection properties when it restarts
(milvus-io/milvus#30144), which left every index unreadable until a full rebuild. A row of
`<alias>_manifests` (the collection name, the manifest as JSON) is data, and survives. The
property is still written, for readers of indexes built before the rows existed.
"""

from __future__ import annotations

import json
from typing import Any

from semsearch.index.errors import StoreUnavailable
from semsearch.index.milvus_client import MANIFEST_PROPERTY, VARCHAR_MAX, call, literal

__all__ = ["MANIFESTS_SUFFIX", "drop_manifest", "read_manifest", "write_manifest"]

MANIFESTS_SUFFIX = "_manifests"


def _collection(alias: str) -> str:
    return alias + MANIFESTS_SUFFIX


def write_manifest(client: Any, alias: str, collection: str, manifest: dict[str, Any]) -> None:
    """Record `collection`'s manifest, as a row and as its property, before it is published.

    Raises:
        StoreUnavailable: the manifest is longer than a Milvus text field holds.
    """
    text = json.dumps(manifest)
    if len(text.encode("utf-8")) > VARCHAR_MAX:
        raise StoreUnavailable(
            f"the manifest of {collection} is longer than Milvus's {VARCHAR_MAX}-byte limit on "
            "text fields"
        )
    rows = _collection(alias)
    if not call(client.has_collection, rows):
        _create(client, rows)
    call(client.load_collection, rows)
    call(client.upsert, rows, [{"collection": collection, "manifest": text, "unused": [0.0, 0.0]}])
    call(client.flush, rows)
    call(client.alter_collection_properties, collection, properties={MANIFEST_PROPERTY: text})


def read_manifest(client: Any, alias: str, collection: str) -> dict[str, Any] | None:
    """`collection`'s manifest: its row, else its property (a generation built before the
    rows); None when it has neither (a build that never finished), or they are not JSON."""
    rows = _collection(alias)
    text = None
    if call(client.has_collection, rows):
        call(client.load_collection, rows)
        # Strong: a row written or deleted just before is seen as it is now (the default,
        # Bounded, showed a deleted row for about a second on Milvus 2.3.5).
        found = call(
            client.query,
            rows,
            ids=[collection],
            output_fields=["manifest"],
            consistency_level="Strong",
        )
        text = found[0]["manifest"] if found else None
    if text is None:
        properties = call(client.describe_collection, collection).get("properties", {})
        text = properties.get(MANIFEST_PROPERTY)
    try:
        manifest = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) else None


def drop_manifest(client: Any, alias: str, collection: str, *, every: bool = False) -> None:
    """Forget `collection`'s manifest row; with `every`, drop the alias's rows altogether."""
    rows = _collection(alias)
    if not call(client.has_collection, rows):
        return
    if every:
        call(client.drop_collection, rows)
        return
    call(client.load_collection, rows)
    call(client.delete, rows, filter=f"collection == {literal(collection)}")


def _create(client: Any, name: str) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("collection", DataType.VARCHAR, is_primary=True, max_length=255)
    schema.add_field("manifest", DataType.VARCHAR, max_length=VARCHAR_MAX)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
    index = client.prepare_index_params()
    index.add_index("unused", index_type="FLAT", metric_type="L2")
    call(client.create_collection, name, schema=schema, index_params=index)
