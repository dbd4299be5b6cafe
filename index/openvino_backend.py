"""The OpenVINO embedding backend: the sentence-transformers model exported once, run without torch.

The whole sentence-transformers pipeline (transformer, pooling, normalisation and any other
module) is traced into one OpenVINO model, so any model that traces works, not only BERT-style
ones. The export is checked against sentence-transformers on sample texts before it is used, and
kept in a cache folder (beside the embedding cache) keyed by the model's files and the library
versions: later runs load it in a second without importing torch or sentence-transformers.

Tokenisation uses the `tokenizers` library on the exported tokenizer.json with the model's own
truncation length, exactly what sentence-transformers does, and is part of the export check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import ModelError

__all__ = ["OpenVINOEmbedder", "export_folder", "openvino_available"]

log = logging.getLogger(__name__)

EXPORT_VERSION = 1
META = "semsearch-export.json"
# Texts of assorted lengths and scripts the export must reproduce before it is trusted.
_CHECK_TEXTS = (
    "power cuts",
    "The storm left thousands of homes without electricity for three days.",
    "Ünïcödé, emoji 🙂 and RTL text: שלום עולם. " * 3,
    " ".join(["A long paragraph that runs past the model's window and must be truncated."] * 60),
)
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

    backend = "openvino"

    def __init__(
        self,
        model_id: str,
        source: str,
        cache_dir: Path,
        batch_size: int = 64,
        threads: int = 0,
    ):
        self.model_id = model_id
        self._source = source
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self._threads = threads
        self._state: _Loaded | None = None
        self._lock = threading.Lock()
        # One inference at a time: the compiled model already uses every core for one call.
        self._use = threading.Lock()

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
                "set SEMSEARCH_EMBEDDING_BACKEND=torch"
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
        plain = self._loaded().plain
        return len(plain.encode(text, add_special_tokens=False).ids)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        state = self._loaded()
        if not texts:
            return np.zeros((0, state.dimension), dtype=np.float32)
        with self._use:
            return state.encode(list(texts), self._batch_size)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_batch([text])[0]


class _Loaded:
    """An export, compiled: tokenizers, the compiled model and its input names."""

    def __init__(self, folder: Path, threads: int):
        import openvino
        from tokenizers import Tokenizer

        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        self.max_seq_length = int(meta["max_seq_length"])
        self.dimension = int(meta["dimension"])
        self.lower_case = bool(meta.get("do_lower_case", False))
        self.inputs: list[str] = list(meta["inputs"])
        self.plain = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.plain.no_truncation()
        self.plain.no_padding()
        self.batcher = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.batcher.enable_truncation(self.max_seq_length)
        self.batcher.enable_padding(pad_id=int(meta["pad_id"]), pad_token=meta["pad_token"])
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        core = openvino.Core()
        self.compiled = core.compile_model(str(folder / "model.xml"), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        cleaned = [text.strip() for text in texts]
        if self.lower_case:
            cleaned = [text.lower() for text in cleaned]
        # Longest first, as sentence-transformers does: batches of similar length pad little.
        order = np.argsort([-len(text) for text in cleaned], kind="stable")
        out = np.empty((len(cleaned), self.dimension), dtype=np.float32)
        for offset in range(0, len(order), batch_size):
            rows = order[offset : offset + batch_size]
            out[rows] = self._forward([cleaned[i] for i in rows])
        return out

    def _forward(self, texts: list[str]) -> np.ndarray:
        encodings = self.batcher.encode_batch(texts)
        features = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        result = self.request.infer({name: features[name] for name in self.inputs})
        vectors = np.asarray(result[self.compiled.output(0)], dtype=np.float32)
        # The pipeline normalises when the model does; normalise anyway: the index expects it.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


def _export(source: str, folder: Path) -> None:
    """Trace the sentence-transformers pipeline into OpenVINO, check it, and publish `folder`."""
    import openvino
    import torch
    from sentence_transformers import SentenceTransformer

    from index.embedding import quiet_transformers

    quiet_transformers()
    log.info("exporting %s to OpenVINO (once; kept in %s)", source, folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about data-dependent branches
            model = SentenceTransformer(source, device="cpu")
            tokenizer = model.tokenizer
            first = model[0]
            max_seq_length = int(model.max_seq_length)
            lower_case = bool(getattr(first, "do_lower_case", False))
            names = [n for n in tokenizer.model_input_names if n in _FEATURES]
            wrapper = _pipeline_module(model, names).eval()
            example = model.preprocess(list(_CHECK_TEXTS[:2]))
            example_inputs = tuple(example[name] for name in names)
            with torch.no_grad():
                converted = openvino.convert_model(wrapper, example_input=example_inputs)
            for port, name in zip(converted.inputs, names, strict=True):
                port.get_tensor().set_names({name})
            expected = model.encode(
                list(_CHECK_TEXTS), normalize_embeddings=True, convert_to_numpy=True
            )
    except Exception as error:  # tracing and loading raise many kinds
        raise ModelError(
            f"cannot export {source!r} to OpenVINO ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'}); "
            "set SEMSEARCH_EMBEDDING_BACKEND=torch"
        ) from error

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
        try:
            openvino.save_model(converted, str(staging / "model.xml"), compress_to_fp16=False)
            tokenizer.save_pretrained(str(staging / "hf-tokenizer"))
            if not (staging / "hf-tokenizer" / "tokenizer.json").is_file():
                raise ModelError(
                    f"{source!r} has no fast tokenizer (tokenizer.json) for the OpenVINO backend; "
                    "set SEMSEARCH_EMBEDDING_BACKEND=torch"
                )
            saved = staging / "hf-tokenizer" / "tokenizer.json"
            shutil.move(str(saved), staging / "tokenizer.json")
            shutil.rmtree(staging / "hf-tokenizer")
            pad_token = tokenizer.pad_token or "[PAD]"
            meta = {
                "export_version": EXPORT_VERSION,
                "source": source,
                "max_seq_length": max_seq_length,
                "do_lower_case": lower_case,
                "dimension": int(expected.shape[1]),
                "inputs": names,
                "pad_token": pad_token,
                "pad_id": int(tokenizer.convert_tokens_to_ids(pad_token)),
            }
            (staging / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
            got = _Loaded(staging, threads=0).encode(list(_CHECK_TEXTS), batch_size=2)
            cosine = float(np.min(np.sum(got * expected, axis=1)))
            if cosine < _CHECK_MIN_COSINE:
                raise ModelError(
                    f"the OpenVINO export of {source!r} does not reproduce the model (cosine "
                    f"{cosine:.4f} on check texts); set SEMSEARCH_EMBEDDING_BACKEND=torch"
                )
            try:
                os.replace(staging, folder)
            except OSError:  # another process published the same export first
                if not (folder / META).is_file():
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    except (RuntimeError, ValueError, KeyError) as error:  # OpenVINO cannot run what it wrote
        raise ModelError(
            f"the OpenVINO export of {source!r} cannot be run ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'}); "
            "set SEMSEARCH_EMBEDDING_BACKEND=torch"
        ) from error
    except OSError as error:
        raise ModelError(
            f"cannot write the OpenVINO export of {source!r} to {folder.parent} "
            f"({error.strerror or error}); set SEMSEARCH_MODEL_CACHE to a writable folder, or "
            "SEMSEARCH_EMBEDDING_BACKEND=torch"
        ) from error
    log.info("OpenVINO export ready: %s", folder)


_FEATURES = ("input_ids", "attention_mask", "token_type_ids")


def _pipeline_module(model: Any, names: list[str]) -> Any:
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            features = dict(zip(names, tensors, strict=True))
            return self.model(features)["sentence_embedding"]

    return Pipeline()
