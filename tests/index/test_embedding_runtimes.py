"""Embedding runtimes: the OpenVINO export reproduces sentence-transformers, and auto falls back."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from semsearch.index import openvino_runtime
from semsearch.index.embedders import AutoEmbedder, make_embedder
from semsearch.index.embedding import (
    DEFAULT_MODEL,
    Embedder,
    SentenceTransformerEmbedder,
    resolve_model,
)
from semsearch.index.errors import ModelError
from semsearch.index.openvino_runtime import OpenVINOEmbedder
from tests.conftest import FakeEmbedder

TEXTS = [
    "Power cuts hit thousands of homes after the storm.",
    "  Leading and trailing spaces are stripped, as sentence-transformers does.  ",
    "Ünïcödé and emoji 🙂 and שלום",
    "word " * 400,  # longer than the model's window: truncated the same way
]


@pytest.fixture(scope="module")
def reference() -> Embedder:
    """The model on torch (sentence-transformers as it is), loaded once for this module."""
    return make_embedder(runtime="torch").load()  # type: ignore[attr-defined]


@pytest.mark.model
def test_openvino_export_matches_torch(model_cache: Path, reference) -> None:
    exported = make_embedder(runtime="openvino", cache_dir=model_cache).load()
    assert exported.runtime == "openvino" and reference.runtime == "torch"
    assert exported.model_id == reference.model_id
    assert (exported.dimension, exported.max_tokens) == (reference.dimension, reference.max_tokens)
    for text in TEXTS:
        assert exported.count_tokens(text) == reference.count_tokens(text)
    counts = [reference.count_tokens(text) for text in TEXTS]
    assert exported.count_tokens_many(TEXTS) == reference.count_tokens_many(TEXTS) == counts
    assert exported.count_tokens_many([]) == reference.count_tokens_many([]) == []
    ours, theirs = exported.embed_batch(TEXTS), reference.embed_batch(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert np.min(np.sum(ours * theirs, axis=1)) > 0.9999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    query = exported.embed_query("storm damage")
    assert query.shape == (384,)
    assert exported.embed_batch([]).shape == (0, 384)


@pytest.mark.model
def test_openvino_queries_on_every_path_and_thread_agree(model_cache: Path, reference) -> None:
    """Short texts run on the fixed-shape model (one core each, or every core when asked), long
    ones and batches on the free-shape one, concurrent queries on separate inference requests:
    the vectors are the same either way."""
    from concurrent.futures import ThreadPoolExecutor

    exported = make_embedder(runtime="openvino", cache_dir=model_cache, batch_size=8).load()
    short = [f"storm number {i} cut the power" for i in range(12)]
    medium = [
        f"storm number {i} cut the power to the northern towns and villages for three days"
        for i in range(12)
    ]
    long = " ".join(["a query far longer than the fixed shape of thirty-two tokens"] * 4)
    texts = [*short, *medium, long]
    # With [CLS] and [SEP]: the 16-token shape, the 32-token one, and the free shape.
    assert max(exported.count_tokens(t) for t in short) + 2 <= 16
    assert all(16 < exported.count_tokens(t) + 2 <= 32 for t in medium)
    assert exported.count_tokens(long) > 32
    one_by_one = np.stack([exported.embed_query(text) for text in texts])
    spread = np.stack([exported.embed_query(text, all_cores=True) for text in texts])
    together = exported.embed_batch(texts)  # four batches through the asynchronous queue
    with ThreadPoolExecutor(8) as pool:
        concurrent = np.stack(list(pool.map(exported.embed_query, texts * 4)))
    expected = reference.embed_batch(texts)
    for got in (one_by_one, spread, together, concurrent[: len(texts)], concurrent[-len(texts) :]):
        assert np.min(np.sum(got * expected, axis=1)) > 0.9999


@pytest.mark.model
def test_export_is_reused(
    model_cache: Path, real_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session's export (made for `real_embedder`) is loaded, not made again, and gives the
    same vectors; it is the only export in the session's folder."""

    def no_export(source: str, folder: Path) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(openvino_runtime, "_export", no_export)
    again = make_embedder(runtime="openvino", cache_dir=model_cache).load()
    assert again.runtime == real_embedder.runtime == "openvino"
    assert np.allclose(again.embed_query("reused"), real_embedder.embed_query("reused"), atol=1e-6)
    folder = openvino_runtime.export_folder(model_cache, *resolve_model(DEFAULT_MODEL))
    assert [p.name for p in model_cache.glob("all-MiniLM-L6-v2-openvino-*")] == [folder.name]


@pytest.mark.model
def test_export_that_does_not_reproduce_the_model_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openvino_runtime, "_CHECK_MIN_COSINE", 1.5)  # nothing can pass
    embedder = make_embedder(runtime="openvino", cache_dir=tmp_path)
    with pytest.raises(ModelError, match="does not reproduce the model"):
        embedder.load()
    assert not any(p.name.endswith(".xml") for p in tmp_path.rglob("*"))  # nothing published


@pytest.mark.model
def test_unwritable_model_cache_is_a_clear_error_and_auto_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, real_embedder
) -> None:
    """One export attempt (it traces the model before it writes): the OpenVINO runtime's error,
    which auto logs as it falls back to torch, says what to do; torch gives the model's vectors."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    auto = make_embedder(runtime="auto", cache_dir=blocked / "models")
    assert isinstance(auto, AutoEmbedder)
    with caplog.at_level(logging.WARNING):
        vector = auto.embed_query("still searchable")
    assert auto.runtime == "torch"
    [warning] = [r.getMessage() for r in caplog.records if r.name == AutoEmbedder.__module__]
    assert warning.startswith("cannot write the OpenVINO export of ")
    assert "set SEMSEARCH_MODEL_CACHE to a writable folder" in warning
    assert warning.endswith("; using the torch runtime instead")
    assert float(vector @ real_embedder.embed_query("still searchable")) > 0.9999
    # nothing left behind, and the file in the way is as it was
    assert [p.name for p in tmp_path.iterdir()] == ["not-a-folder"]
    assert blocked.read_text() == "a file where the cache folder should be"


def test_auto_falls_back_to_torch_when_the_export_fails(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FakeEmbedder):
        def load(self) -> FakeEmbedder:
            raise ModelError("cannot export 'x' to OpenVINO (RuntimeError: boom)")

    fallback = FakeEmbedder()
    auto = AutoEmbedder(Broken(), fallback)
    with caplog.at_level(logging.WARNING):
        vector = auto.embed_query("power cuts")
    assert np.array_equal(vector, fallback.embed_query("power cuts"))
    assert auto.runtime == "fake"
    assert "using the torch runtime instead" in caplog.text


def test_runtime_choice(tmp_path: Path) -> None:
    # (nothing is loaded or exported until first use)
    exported = make_embedder(runtime="openvino", cache_dir=tmp_path)
    assert isinstance(exported, OpenVINOEmbedder) and not any(tmp_path.iterdir())
    assert isinstance(make_embedder(runtime="torch"), SentenceTransformerEmbedder)
    assert isinstance(make_embedder(runtime="auto", device="cuda"), SentenceTransformerEmbedder)
    assert isinstance(make_embedder(runtime="auto"), AutoEmbedder)
    with pytest.raises(ModelError, match="unknown runtime 'tensorrt'"):
        make_embedder(runtime="tensorrt")


def test_export_folder_changes_with_the_model_files(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"1")
    first = openvino_runtime.export_folder(tmp_path / "cache", str(model), str(model))
    (model / "weights.bin").write_bytes(b"22")
    second = openvino_runtime.export_folder(tmp_path / "cache", str(model), str(model))
    assert first != second and first.parent == second.parent
