"""Distributed index builds: embed passages with Ray Data, one model per worker.

`semsearch index --ray [ADDRESS]` reads and chunks the articles in the driver (both cached per
article, and cheap beside embedding), sends the texts the embedding cache lacks to Ray Data
`map_batches` over a pool of actors that each load the model once, and writes the result to
the configured store like any build. Without an address a local Ray is started for the build
(bound to 127.0.0.1) and shut down after it; with one, the build joins that cluster, whose
workers need semsearch and the model installed (the same image or a runtime environment).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from semsearch.index.embedders import make_embedder
from semsearch.index.embedding import Embedder, count_tokens_many
from semsearch.index.errors import SemsearchError

__all__ = ["RayEmbedder", "RayUnavailable"]

log = logging.getLogger("semsearch.ray")

# Texts per Ray job: one job for a whole build (each job costs about 2 s to start).
RAY_CALL_SIZE = 1_000_000
# Texts per actor call: large enough for the model to sort by length and batch well.
WORKER_BATCH = 256


class RayUnavailable(SemsearchError):
    """Ray is not installed, or the cluster named cannot be reached."""


class _EmbedWorker:
    """A Ray Data actor: loads the embedder once, then embeds batches of texts."""

    settings: ClassVar[dict[str, Any]] = {}  # set on a subclass made per build (see embed_batch)

    def __init__(self) -> None:
        from pathlib import Path

        options = dict(self.settings)
        cache_dir = options.pop("cache_dir", None)
        self.embedder = make_embedder(
            options.pop("model"), cache_dir=Path(cache_dir) if cache_dir else None, **options
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.embed_batch([str(text) for text in batch["text"]])
        return {"row": batch["row"], "vector": np.asarray(vectors, dtype=np.float32)}


def _original_error(error: BaseException) -> str:
    """The user-facing line of an error raised inside a Ray worker."""
    text = getattr(error, "error_msg", None) or str(error)
    found = [
        f"{name}: {message}"
        for name, message in re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.*)$", text, re.M)
        if not name.startswith("ray.")
    ]
    return found[-1] if found else (text.strip().splitlines() or ["unknown error"])[-1]


def _check_reachable(address: str) -> None:
    """Fail in seconds, not the minutes Ray retries, when nothing listens at host:port."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(
            f"--ray {address!r}: give the head node as host:port (such as 10.0.0.5:6379), "
            "or --ray alone for a local Ray"
        )
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as error:
        raise RayUnavailable(f"no Ray cluster reachable at {address}: {error}") from None


class RayEmbedder:
    """An Embedder whose `embed_batch` runs on Ray workers; the rest is the local embedder's.

    Use `with RayEmbedder.start(local, worker_settings, address) as embedder:`.
    """

    call_size = RAY_CALL_SIZE
    spreads_queries = False  # embed_query is the local embedder's, without `all_cores`

    def __init__(self, local: Embedder, worker_settings: dict[str, Any], started: bool):
        self.local = local
        self.model_id = local.model_id
        self.runtime = local.runtime
        self._worker_settings = worker_settings
        self._started = started

    @classmethod
    def start(
        cls, local: Embedder, worker_settings: dict[str, Any], address: str = "local"
    ) -> RayEmbedder:
        """Connect to the Ray cluster at `address`, or start a local one ("local").

        Raises:
            RayUnavailable: Ray is not installed or the cluster cannot be reached.
        """
        # Read by Ray when it is imported: no usage reports, quiet Ray Data, and a local Ray
        # that listens on 127.0.0.1 only.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
        if address == "local":
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        else:
            _check_reachable(address)
        try:
            import ray
        except ImportError:
            raise RayUnavailable("--ray needs Ray Data: pip install 'semsearch[ray]'") from None
        started = not ray.is_initialized()
        if started:
            options: dict[str, Any] = {
                "logging_level": logging.ERROR,
                "log_to_driver": False,
            }
            if address == "local":
                options |= {"address": "local", "include_dashboard": False}
            else:
                options["address"] = address
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise RayUnavailable(f"cannot start or join Ray ({address}): {error}") from None
        return cls(local, worker_settings, started)

    def __enter__(self) -> RayEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut down the local Ray this embedder started (a cluster is left running)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    @property
    def dimension(self) -> int:
        return self.local.dimension

    @property
    def max_tokens(self) -> int:
        return self.local.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def count_tokens_many(self, texts: list[str]) -> list[int]:
        return count_tokens_many(self.local, texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.local.embed_query(text)

    def _pool(self) -> tuple[int, float]:
        """(actors, CPUs per actor): one model per worker, each with a few cores to itself."""
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 1))
        per_actor = max(1, min(4, cpus))
        return max(1, cpus // per_actor), float(per_actor)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Embed on the Ray workers; rows come back in the order of `texts`."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import ray
        import ray.data
        from ray.data import ActorPoolStrategy

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        actors, per_actor = self._pool()
        settings = {**self._worker_settings, "threads": int(per_actor)}
        items = [{"row": row, "text": text} for row, text in enumerate(texts)]
        blocks = max(1, min(len(items) // WORKER_BATCH + 1, actors * 8))
        # The settings ride on a class made here (pickled by value) rather than as constructor
        # arguments, which Ray would keep in its object store and warn about.
        worker = type("EmbedWorker", (_EmbedWorker,), {"settings": settings})
        dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            worker,
            batch_size=WORKER_BATCH,
            batch_format="numpy",
            num_cpus=per_actor,
            compute=ActorPoolStrategy(min_size=1, max_size=actors),
        )
        try:
            parts = list(dataset.iter_batches(batch_size=None, batch_format="numpy"))
        except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError) as error:
            raise RayUnavailable(
                f"a Ray embedding worker failed: {_original_error(error)}"
            ) from None
        rows = np.concatenate([part["row"] for part in parts])
        vectors = np.concatenate([part["vector"] for part in parts])
        ordered = np.empty_like(vectors)
        ordered[rows] = vectors
        if len(rows) != len(texts):
            raise RayUnavailable(f"Ray returned {len(rows)} vectors for {len(texts)} texts")
        return ordered
