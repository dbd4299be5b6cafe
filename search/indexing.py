"""`semsearch index` as library calls: build the seeds folder into the store, or rebuild only
its vector index. Both go through `search.rebuild.Rebuild` (one build at a time, under the
store's build lock)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from semsearch.index.builder import BuildReport
from semsearch.index.embedding import Embedder
from semsearch.search.feedback import Feedback
from semsearch.search.rebuild import Rebuild
from semsearch.search.settings import Settings, embedder_for

if TYPE_CHECKING:
    from semsearch.index.distributed import RayEmbedder

__all__ = ["Built", "VectorsRebuilt", "build", "rebuild_vectors", "settings_for_workers"]


@dataclass(frozen=True)
class Built:
    """A finished build (or the finding that the live generation is up to date)."""

    report: BuildReport
    where: str  # the generation's place: its folder, or its Milvus collection


@dataclass(frozen=True)
class VectorsRebuilt:
    """The live generation published again with another vector index."""

    manifest: dict[str, Any]
    where: str


def rebuild_vectors(settings: Settings) -> VectorsRebuilt:
    """Rebuild only the vector index of the live generation from its stored vectors.

    Raises:
        BuildRunning: another build holds the lock.
        SemsearchError: the store cannot (Milvus), or nothing is live.
    """
    with Rebuild(settings) as rebuild:
        manifest = rebuild.vectors_only()
        return VectorsRebuilt(manifest, rebuild.store.place(manifest["generation"]))


def build(
    settings: Settings,
    *,
    force: bool = False,
    ray_address: str | None = None,
    feedback: Feedback | None = None,
) -> Built:
    """Build the configured seeds folder into the configured store, unless the live generation
    was built from the same articles, model and settings (or `force`).

    Args:
        ray_address: embed on Ray Data workers: "local" (a Ray started for this build) or the
            host:port of a cluster's head node; None embeds here.
        feedback: where the model loading, warnings and embedding progress are reported.

    Raises:
        BuildRunning: another build holds the lock.
        CorpusError: the folder is missing or the formats setting names an unknown format
            (both found before the model loads), or the folder holds no article.
        RayUnavailable: Ray is not installed or its cluster cannot be reached.
    """
    feedback = feedback or Feedback()
    with ExitStack() as held:
        rebuild = held.enter_context(Rebuild(settings))
        rebuild.check_corpus()  # a missing folder or a bad format fails before the model loads
        embedder = _loaded_embedder(settings, feedback)
        if ray_address is not None:
            embedder = held.enter_context(_ray_embedder(embedder, settings, ray_address, feedback))
        report = rebuild.run(
            embedder, force=force, warn=feedback.warn, progress=feedback.task("embedding")
        )
        return Built(report, rebuild.store.place(report.generation))


def _loaded_embedder(settings: Settings, feedback: Feedback) -> Embedder:
    embedder = embedder_for(settings)
    with feedback.status(f"loading model {settings.model}"):
        embedder.load()  # type: ignore[attr-defined]  # each runtime's own; not on the protocol
    return embedder


def _ray_embedder(
    embedder: Embedder, settings: Settings, address: str, feedback: Feedback
) -> RayEmbedder:
    """A RayEmbedder around `embedder`: a context manager that stops the Ray it started."""
    from semsearch.index.distributed import RayEmbedder

    with feedback.status(f"starting Ray ({address})"):
        return RayEmbedder.start(embedder, settings_for_workers(settings), address)


def settings_for_workers(settings: Settings) -> dict[str, Any]:
    """What a Ray worker needs to load the same embedder."""
    return {
        "model": settings.model,
        "runtime": settings.embedding_runtime,
        "device": settings.device,
        "batch_size": settings.batch_size,
        "threads": settings.threads,
        "cache_dir": str((settings.model_cache or settings.index_dir / "models").resolve()),
    }
