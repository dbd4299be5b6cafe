"""The OpenVINO runtime: a sentence-transformers model exported once, then run without torch.

The export (`index.openvino_export`: the whole pipeline traced into one OpenVINO model, checked
against sentence-transformers on sample texts) is kept in a cache folder (beside the embedding
cache) keyed by the model's files and the library versions: later runs load it in a second
without importing torch or sentence-transformers. This module finds or makes that export, and
compiles and runs it.

Tokenisation uses the `tokenizers` library on the exported tokenizer.json with the model's own
truncation length, exactly what sentence-transformers does, and is part of the export check.

`index.embedders.make_embedder` chooses between this runtime and torch (`index.embedding`);
this module imports only `index.embedding`'s constants and `index.openvino_export`, never the
chooser.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import Any

import numpy as np

from semsearch.index.embedding import DEFAULT_BATCH_SIZE
from semsearch.index.errors import ModelError
from semsearch.index.openvino_export import EXPORT_VERSION, META, export_model

__all__ = ["OpenVINOEmbedder", "export_folder", "openvino_available"]

log = logging.getLogger(__name__)

# How closely the export must reproduce sentence-transformers on the check texts (the lowest
# cosine); read at each export.
_CHECK_MIN_COSINE = 0.999


def openvino_available() -> bool:
    """Whether the openvino and tokenizers packages can be imported."""
    try:
        import openvino  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError:
        return False
    return True


def export_folder(cache_dir: Path, model_id: str, source: str) -> Path:
    """Where the export of this model, for these library versions, lives under `cache_dir`."""
    import openvino

    digest = hashlib.sha256()
    for part in (str(EXPORT_VERSION), model_id, openvino.__version__, _files_fingerprint(source)):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in model_id.split("/")[-1])
    return cache_dir / f"{slug[:40]}-openvino-{digest.hexdigest()[:16]}"


def _export(source: str, folder: Path) -> None:
    """Export `source` to `folder` (`openvino_export.export_model`), checked by this runtime."""
    export_model(
        source,
        folder,
        load=lambda staging: _Loaded(staging, threads=0),
        min_cosine=_CHECK_MIN_COSINE,
    )


def _files_fingerprint(source: str) -> str:
    """Names, sizes and modification times of a local model folder; the name for a hub model."""
    folder = Path(source)
    if not folder.is_dir():
        return source
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            entries.append(f"{path.relative_to(folder)}:{stat.st_size}:{int(stat.st_mtime)}")
    return "\n".join(entries)


class OpenVINOEmbedder:
    """A sentence-transformers model run by OpenVINO on the CPU.

    Args:
        model_id: the model's id (as in manifests and the embedding cache).
        source: what sentence-transformers loads (a folder or a hub name); used to export.
        cache_dir: the folder exports are kept in.
        batch_size: texts per forward pass.
        threads: inference threads; 0 lets OpenVINO use every core.
    """

    runtime = "openvino"

    def __init__(
        self,
        model_id: str,
        source: str,
        cache_dir: Path,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int = 0,
    ):
        self.model_id = model_id
        self._source = source
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self._threads = threads
        self._state: _Loaded | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> _Loaded:
        if self._state is None:
            with self._lock:
                if self._state is None:
                    self._state = self._load()
        return self._state

    def _load(self) -> _Loaded:
        folder = export_folder(self._cache_dir, self.model_id, self._source)
        if not (folder / META).is_file():
            _export(self._source, folder)
        try:
            return _Loaded(folder, self._threads)
        except (OSError, RuntimeError, ValueError, KeyError) as error:
            raise ModelError(
                f"cannot load the OpenVINO export of {self.model_id!r} from {folder} "
                f"({type(error).__name__}: {error}); delete that folder to export it again, or "
                "set SEMSEARCH_EMBEDDING_RUNTIME=torch"
            ) from error

    def load(self) -> OpenVINOEmbedder:
        """Export (first time) and compile the model now rather than on first use."""
        self._loaded()
        return self

    @property
    def dimension(self) -> int:
        return self._loaded().dimension

    @property
    def max_tokens(self) -> int:
        return self._loaded().max_seq_length - 2

    def count_tokens(self, text: str) -> int:
        return self._loaded().count_tokens(text)

    def count_tokens_many(self, texts: list[str]) -> list[int]:
        """`count_tokens` of each text, in one batch call (on every core)."""
        return self._loaded().count_tokens_many(texts)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        state = self._loaded()
        if not texts:
            return np.zeros((0, state.dimension), dtype=np.float32)
        return state.encode(list(texts), self._batch_size)

    def embed_query(self, text: str, all_cores: bool = False) -> np.ndarray:
        """The vector of one query; with `all_cores`, spread over every core (for a query that
        runs alone: faster; with others running, one core each serves more of them)."""
        state = self._loaded()
        return state.encode([text], self._batch_size, all_cores)[0]

    @property
    def spreads_queries(self) -> bool:
        """Whether `embed_query(..., all_cores=True)` runs differently (several cores)."""
        return any(short.alone is not None for short in self._loaded().short)


class _Loaded:
    """An export, compiled for short texts one at a time (at two widths), and for everything else.

    Every compilation runs one inference stream per core (OpenVINO's THROUGHPUT hint), so that
    concurrent requests each get a core instead of waiting for one call that spreads over all of
    them (measured on 2 cores: about 4 ms of CPU a query instead of 8 to 12, and nearly twice the
    dense queries a second with 8 concurrent clients, at about the same latency for one).

    - A short text (a query: up to 32 tokens) runs on a copy of the model with a fixed input
      shape of one text of 16 or 32 tokens (the narrowest that holds it), padded; a fixed shape
      lets OpenVINO plan the inference once, which halves the time of a short query. Padding is
      masked, so the vector is the same. Each width is also compiled for latency (one stream
      over every core): a query asked for with `all_cores`, when nothing else is running, takes
      2.0 ms there instead of 3.1 on one of 2 AMD EPYC cores (16 tokens).
    - A longer text, or many (a build), runs on the model with free shapes, in batches sorted by
      token count (little padding), through an asynchronous queue that keeps every stream busy
      while this thread tokenises the next batch.
    """

    def __init__(self, folder: Path, threads: int):
        import openvino

        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        self.folder = folder
        self.max_seq_length = int(meta["max_seq_length"])
        self.dimension = int(meta["dimension"])
        self.lower_case = bool(meta.get("do_lower_case", False))
        self.inputs: list[str] = list(meta["inputs"])
        self.pad_id = int(meta["pad_id"])
        self.plain = self._tokenizer(folder, None)
        self.truncating = self._tokenizer(folder, self.max_seq_length)
        # A Rust tokenizer must not be used by two threads at once ("Already borrowed").
        self.tokenizer_lock = threading.Lock()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "THROUGHPUT"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        core = openvino.Core()
        model = core.read_model(str(folder / "model.xml"))
        self.compiled = core.compile_model(model, "CPU", config)
        self.requests = _pool(self.compiled)
        # Fixed-shape models for short texts, narrowest first.
        self.short: list[_Short] = []
        # With one stream there is nothing to spread: the latency compilation would be the same.
        spread = _streams(self.compiled) > 1
        latency: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads > 0:
            latency["INFERENCE_NUM_THREADS"] = threads
        for width in sorted({min(w, self.max_seq_length) for w in SHORT_WIDTHS}):
            try:
                model.reshape(
                    {
                        port.get_any_name(): openvino.PartialShape([1, width])
                        for port in model.inputs
                    }
                )
                compiled = core.compile_model(model, "CPU", config)
            except RuntimeError as error:  # a model whose inputs are not (batch, tokens)
                log.info("no fixed-shape model for short texts (%s): the free-shape one", error)
                self.short = []
                break
            alone = core.compile_model(model, "CPU", latency) if spread else None
            self.short.append(
                _Short(width, _pool(compiled), None if alone is None else _pool(alone))
            )
        self.bulk_lock = threading.Lock()

    @staticmethod
    def _tokenizer(folder: Path, truncate_at: int | None) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_padding()
        if truncate_at is None:
            tokenizer.no_truncation()
        else:
            tokenizer.enable_truncation(truncate_at)
        return tokenizer

    def count_tokens(self, text: str) -> int:
        with self.tokenizer_lock:
            return len(self.plain.encode(text, add_special_tokens=False).ids)

    def count_tokens_many(self, texts: list[str]) -> list[int]:
        with self.tokenizer_lock:
            encodings = self.plain.encode_batch(texts, add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def _tokenise(self, texts: list[str]) -> list[Any]:
        cleaned = [text.strip() for text in texts]
        if self.lower_case:
            cleaned = [text.lower() for text in cleaned]
        with self.tokenizer_lock:
            return self.truncating.encode_batch(cleaned)

    def encode(self, texts: list[str], batch_size: int, all_cores: bool = False) -> np.ndarray:
        """Normalised vectors for `texts`, in order; one short text on every core if asked."""
        encodings = self._tokenise(texts)
        if len(encodings) == 1:
            length = len(encodings[0].ids)
            for short in self.short:
                if length <= short.width:
                    requests = short.alone if all_cores and short.alone else short.requests
                    return self._infer_one(requests, self._features(encodings, short.width))
            if length <= SHORT_WIDTHS[-1]:  # no fixed shape for this model: unpadded, at once
                return self._infer_one(self.requests, self._features(encodings))
        with self.bulk_lock:
            return self._encode_bulk(encodings, batch_size)

    @staticmethod
    def _infer_one(requests: Queue[Any], features: dict[str, np.ndarray]) -> np.ndarray:
        request = requests.get()
        try:
            request.infer(features)
            return _normalised(request.get_output_tensor(0).data)
        finally:
            requests.put(request)

    def _features(
        self, encodings: Sequence[Any], width: int | None = None
    ) -> dict[str, np.ndarray]:
        """Model inputs for tokenised texts, padded to `width` or to the longest of them."""
        width = width or max(len(e.ids) for e in encodings)
        arrays = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in self.inputs}
        if "input_ids" in arrays:
            arrays["input_ids"].fill(self.pad_id)
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            if "input_ids" in arrays:
                arrays["input_ids"][row, :length] = encoding.ids
            if "attention_mask" in arrays:
                arrays["attention_mask"][row, :length] = 1
            if "token_type_ids" in arrays:
                arrays["token_type_ids"][row, :length] = encoding.type_ids
        return arrays

    def _encode_bulk(self, encodings: list[Any], batch_size: int) -> np.ndarray:
        import openvino

        # Longest first by token count, as sentence-transformers sorts: batches pad little.
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out = np.empty((len(encodings), self.dimension), dtype=np.float32)
        queue = openvino.AsyncInferQueue(self.compiled, self.requests.qsize() or 1)

        def done(request: Any, rows: np.ndarray) -> None:
            out[rows] = request.get_output_tensor(0).data

        queue.set_callback(done)
        for offset in range(0, len(order), batch_size):
            rows = order[offset : offset + batch_size]
            queue.start_async(self._features([encodings[i] for i in rows]), rows)
        queue.wait_all()
        return _normalised(out)


# A query of up to 16 or 32 tokens (with [CLS] and [SEP]) runs on a model of that fixed shape:
# padding costs time (one query: 1.8 ms at 16 tokens, 2.4 ms at 32, on 2 Xeon cores).
SHORT_WIDTHS = (16, 32)


@dataclass(frozen=True)
class _Short:
    """A model compiled for one text of `width` tokens: its inference requests, one stream per
    core, and (when there are several cores) those of its compilation for latency."""

    width: int
    requests: Queue[Any]
    alone: Queue[Any] | None


def _streams(compiled: Any) -> int:
    """How many inferences the compiled model runs at once."""
    return max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))


def _pool(compiled: Any) -> Queue[Any]:
    """As many inference requests as the compiled model runs at once, to be borrowed."""
    requests: Queue[Any] = Queue()
    for _ in range(_streams(compiled)):
        requests.put(compiled.create_infer_request())
    return requests


def _normalised(vectors: Any) -> np.ndarray:
    """Rows scaled to unit length: the model may normalise already; the index relies on it."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)
