"""The one-time OpenVINO export of a sentence-transformers model, checked before it is used.

The whole sentence-transformers pipeline (transformer, pooling, normalisation and any other
module) is traced into one OpenVINO model, so any model that traces works, not only BERT-style
ones; the tokenizer is saved as tokenizer.json beside it, with what the runtime needs to know
(`META`). The staged export is run by the runtime's own loader on sample texts (`CHECK_TEXTS`)
and compared with sentence-transformers before the folder is published.

`index.openvino_runtime` decides where the export lives and passes its loader and the bar the
check must clear; this module imports nothing of it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from semsearch.index.embedding import quiet_transformers
from semsearch.index.errors import ModelError

__all__ = ["CHECK_TEXTS", "EXPORT_VERSION", "META", "Encoder", "export_model"]

log = logging.getLogger(__name__)

EXPORT_VERSION = 1
META = "semsearch-export.json"
# Texts of assorted lengths and scripts the export must reproduce before it is trusted.
CHECK_TEXTS = (
    "power cuts",
    "The storm left thousands of homes without electricity for three days.",
    "Ünïcödé, emoji 🙂 and RTL text: שלום עולם. " * 3,
    " ".join(["A long paragraph that runs past the model's window and must be truncated."] * 60),
)
_FEATURES = ("input_ids", "attention_mask", "token_type_ids")


class Encoder(Protocol):
    """A loaded export, as the check runs it: normalised vectors of texts, in order."""

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray: ...


def export_model(
    source: str, folder: Path, load: Callable[[Path], Encoder], min_cosine: float
) -> None:
    """Trace the sentence-transformers pipeline into OpenVINO, check it, and publish `folder`.

    Args:
        source: what sentence-transformers loads (a folder or a hub name).
        folder: where the export is published (atomically, once checked).
        load: the runtime's loader of an export folder, run on the staged export to check it.
        min_cosine: the lowest cosine to sentence-transformers' vectors of the check texts that
            the export may give (each text alone and all in one batch).

    Raises:
        ModelError: the model cannot be exported, the export does not reproduce it, or the
            folder cannot be written.
    """
    import openvino
    import torch
    from sentence_transformers import SentenceTransformer

    quiet_transformers()
    log.info("exporting %s to OpenVINO (once; kept in %s)", source, folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about data-dependent branches
            model = SentenceTransformer(source, device="cpu")
            tokenizer = model.tokenizer
            first = model[0]
            max_seq_length = int(cast(int, model.max_seq_length))
            lower_case = bool(getattr(first, "do_lower_case", False))
            names = [n for n in tokenizer.model_input_names if n in _FEATURES]
            wrapper = _pipeline_module(model, names).eval()
            example = model.preprocess(list(CHECK_TEXTS[:2]))
            example_inputs = tuple(example[name] for name in names)
            with torch.no_grad():
                converted = openvino.convert_model(wrapper, example_input=example_inputs)
            for port, name in zip(converted.inputs, names, strict=True):
                port.get_tensor().set_names({name})
            expected = model.encode(
                list(CHECK_TEXTS), normalize_embeddings=True, convert_to_numpy=True
            )
    except Exception as error:  # tracing and loading raise many kinds
        raise ModelError(
            f"cannot export {source!r} to OpenVINO ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'}); "
            "set SEMSEARCH_EMBEDDING_RUNTIME=torch"
        ) from error

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
        try:
            openvino.save_model(converted, str(staging / "model.xml"), compress_to_fp16=False)
            tokenizer.save_pretrained(str(staging / "hf-tokenizer"))
            if not (staging / "hf-tokenizer" / "tokenizer.json").is_file():
                raise ModelError(
                    f"{source!r} has no fast tokenizer (tokenizer.json) for the OpenVINO runtime; "
                    "set SEMSEARCH_EMBEDDING_RUNTIME=torch"
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
            loaded = load(staging)
            together = loaded.encode(list(CHECK_TEXTS), batch_size=2)
            one_by_one = np.concatenate([loaded.encode([text], 2) for text in CHECK_TEXTS])
            cosine = float(
                min(np.min(np.sum(got * expected, axis=1)) for got in (together, one_by_one))
            )
            if cosine < min_cosine:
                raise ModelError(
                    f"the OpenVINO export of {source!r} does not reproduce the model (cosine "
                    f"{cosine:.4f} on check texts); set SEMSEARCH_EMBEDDING_RUNTIME=torch"
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
            "set SEMSEARCH_EMBEDDING_RUNTIME=torch"
        ) from error
    except OSError as error:
        raise ModelError(
            f"cannot write the OpenVINO export of {source!r} to {folder.parent} "
            f"({error.strerror or error}); set SEMSEARCH_MODEL_CACHE to a writable folder, or "
            "SEMSEARCH_EMBEDDING_RUNTIME=torch"
        ) from error
    log.info("OpenVINO export ready: %s", folder)


def _pipeline_module(model: Any, names: list[str]) -> Any:
    """A torch module that runs the whole pipeline on input tensors, in `names`' order."""
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            features = dict(zip(names, tensors, strict=True))
            return self.model(features)["sentence_embedding"]

    return Pipeline()
