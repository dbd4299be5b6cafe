"""What an index holds, for `semsearch info`: the facts of its live generation's manifest."""

from __future__ import annotations

from typing import Any

from semsearch.search.settings import Settings, store_for

__all__ = ["index_facts"]


def index_facts(settings: Settings) -> dict[str, Any]:
    """The live generation's facts, by name: where, what, with which model, when.

    Raises:
        IndexNotFound: nothing is built yet (and its kin for an unusable index).
        StoreUnavailable: the configured store cannot be reached.
    """
    store = store_for(settings).open()
    manifest = store.manifest
    store.close()
    counts, model = manifest["counts"], manifest["model"]
    return {
        "index": _where(settings),
        "store": settings.store,
        "generation": manifest["generation"],
        "articles": counts["articles"],
        "passages": counts["passages"],
        "duplicates": counts["duplicate_passages"],
        "sentences": counts.get("sentences", 0),
        "model": model["id"],
        "dimension": model["dimension"],
        "built_with": model.get("backend", "torch"),
        "vectors": _vectors(settings, manifest),
        "source": manifest["source"],
        "built_at": manifest["created_at"],
        "semsearch": manifest["semsearch_version"],
    }


def _where(settings: Settings) -> str:
    if settings.store == "faiss":
        return str(settings.index_dir)
    return f"{settings.milvus_uri} (alias {settings.milvus_collection})"


def _vectors(settings: Settings, manifest: dict[str, Any]) -> str:
    """The vector index: its kind and parameters."""
    if settings.store == "milvus":
        layout = manifest["milvus"]
        vectors = f"milvus {layout['index_type']} {layout['metric_type']} {layout['params']}"
        return vectors + f"; lexical: {layout['lexical']}"
    faiss = manifest["faiss"]
    return "faiss " + " ".join(
        [faiss["type"]] + [f"{k}={v}" for k, v in faiss.items() if k not in ("type", "metric")]
    )
