"""Choosing an embedder: OpenVINO or torch for a configured model (`make_embedder`).

The runtimes themselves live apart: torch (sentence-transformers) and the `Embedder` protocol in
`index.embedding`, OpenVINO in `index.openvino_runtime`. This module is the one that imports
both: `AutoEmbedder` runs OpenVINO and falls back to torch when the model cannot be exported.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semsearch.index.embedding import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MODEL,
    Embedder,
    SentenceTransformerEmbedder,
    count_tokens_many,
    resolve_model,
)
from semsearch.index.errors import ModelError
from semsearch.index.openvino_runtime import OpenVINOEmbedder, openvino_available

__all__ = ["RUNTIMES", "AutoEmbedder", "make_embedder"]

RUNTIMES = ("auto", "openvino", "torch")

log = logging.getLogger(__name__)


class AutoEmbedder:
    """The OpenVINO runtime, or sentence-transformers on torch if the model cannot be exported.

    The choice is made on first use and logged; both give the same vectors (cosine > 0.999), so
    an index built with one is searched with the other.
    """

    def __init__(self, primary: Embedder, fallback: Embedder):
        self.model_id = primary.model_id
        self._primary = primary
        self._fallback = fallback
        self._chosen: Embedder | None = None
        self._lock = threading.Lock()

    def _pick(self) -> Embedder:
        if self._chosen is None:
            with self._lock:
                if self._chosen is None:
                    try:
                        self._chosen = self._primary.load()  # type: ignore[attr-defined]
                    except ModelError as error:
                        log.warning("%s; using the torch runtime instead", error)
                        self._chosen = self._fallback
        return self._chosen

    @property
    def runtime(self) -> str:
        """The chosen runtime's name ("openvino" or "torch"); choosing loads the model."""
        return self._pick().runtime

    def load(self) -> AutoEmbedder:
        self._pick().load()  # type: ignore[attr-defined]
        return self

    @property
    def dimension(self) -> int:
        return self._pick().dimension

    @property
    def max_tokens(self) -> int:
        return self._pick().max_tokens

    def count_tokens(self, text: str) -> int:
        return self._pick().count_tokens(text)

    def count_tokens_many(self, texts: list[str]) -> list[int]:
        return count_tokens_many(self._pick(), texts)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self._pick().embed_batch(texts)

    def embed_query(self, text: str, all_cores: bool = False) -> np.ndarray:
        chosen = self._pick()
        if all_cores and chosen.spreads_queries:
            return chosen.embed_query(text, all_cores=True)  # type: ignore[call-arg]
        return chosen.embed_query(text)

    @property
    def spreads_queries(self) -> bool:
        """Whether the chosen runtime runs a query asked for with `all_cores` on every core."""
        return self._pick().spreads_queries


def make_embedder(
    model: str = DEFAULT_MODEL,
    *,
    runtime: str = "auto",
    device: str = "cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int = 0,
    cache_dir: Path | None = None,
) -> Embedder:
    """The embedder for a configured model and runtime.

    Args:
        model: a model name (hub id) or a local folder; see `resolve_model`.
        runtime: "openvino" (exported once to `cache_dir`, then run without torch), "torch"
            (sentence-transformers as it is), or "auto": OpenVINO on the CPU when it is installed
            and the model exports, torch otherwise.
        device: torch device; anything but "cpu" means torch.
        batch_size: texts per forward pass.
        threads: inference threads; 0 uses every core.
        cache_dir: where OpenVINO exports are kept (the index folder's models/ by default).

    Raises:
        ModelError: an unknown runtime, or "openvino" without the openvino packages.
    """
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
    torch_embedder = SentenceTransformerEmbedder(model, device, batch_size, threads)
    if runtime == "torch" or (runtime == "auto" and device != "cpu"):
        return torch_embedder
    if not openvino_available():
        if runtime == "openvino":
            raise ModelError(
                "the openvino runtime needs the openvino and tokenizers packages "
                "(pip install openvino tokenizers), or set SEMSEARCH_EMBEDDING_RUNTIME=torch"
            )
        return torch_embedder
    model_id, source = resolve_model(model)
    exported = OpenVINOEmbedder(
        model_id, source, cache_dir or Path("var/index/models"), batch_size, threads
    )
    if runtime == "openvino":
        return exported
    return AutoEmbedder(exported, torch_embedder)
