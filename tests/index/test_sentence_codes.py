"""Sentence vectors as 8-bit codes: their inner products, and older generations' float rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from semsearch.index.faiss_generation import FaissGeneration
from semsearch.index.generations import sha256_of
from semsearch.index.sentence_codes import CODE_DTYPE, products, write_codes
from tests.conftest import FakeEmbedder


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_coded_products_are_within_half_a_step(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    # Clustered unit vectors with one dimension far wider than the rest, as some models have.
    centres = rng.normal(size=(30, 384))
    vectors = _unit(centres[rng.integers(0, 30, 150_000)] + rng.normal(size=(150_000, 384)))
    vectors[:, 5] *= 6
    vectors = _unit(vectors).astype(np.float16)  # as a build keeps them
    write_codes(vectors, tmp_path / "codes.npy", tmp_path / "ranges.npy")
    codes = np.load(tmp_path / "codes.npy", mmap_mode="r")
    ranges = np.load(tmp_path / "ranges.npy")
    assert codes.dtype == CODE_DTYPE and codes.shape == vectors.shape
    assert ranges.shape == (2, 384)
    queries = _unit(rng.normal(size=(20, 384)))
    rows = rng.choice(len(vectors), size=2_000, replace=False)
    for query in queries:
        exact = vectors[rows].astype(np.float32) @ query
        coded = products(codes[rows], query, ranges)
        # The bound: half a step in each dimension, weighted by the query.
        bound = float(np.abs(query) @ ranges[1]) / 2 + 1e-5
        assert np.abs(coded - exact).max() <= bound
        assert np.abs(coded - exact).mean() < 1e-3


def test_a_dimension_with_one_value_and_no_rows(tmp_path: Path) -> None:
    vectors = np.tile(np.array([[0.6, 0.0, 0.8]], dtype=np.float32), (4, 1))
    vectors[1, 1] = 0.5
    write_codes(vectors, tmp_path / "codes.npy", tmp_path / "ranges.npy")
    coded = products(np.load(tmp_path / "codes.npy"), vectors[0], np.load(tmp_path / "ranges.npy"))
    assert coded == pytest.approx(vectors @ vectors[0], abs=1e-3)
    write_codes(np.zeros((0, 3), np.float32), tmp_path / "none.npy", tmp_path / "none_r.npy")
    assert np.load(tmp_path / "none.npy").shape == (0, 3)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_float_sentence_rows_of_older_generations_are_read(
    fake_index: Path, fake_embedder: FakeEmbedder, dtype: type
) -> None:
    """Generations written before the codes hold float16 (or, before that, float32) rows and no
    ranges: they score as they did."""
    folder = fake_index / "gen-1"
    store = FaissGeneration.open(fake_index)
    ids = np.arange(store.manifest["counts"]["passages"])
    query = fake_embedder.embed_query("Russia energy infrastructure attacks")
    coded = store.sentence_scores(ids, query).maxima()
    store.close()
    codes = np.load(folder / "sentences.npy")
    ranges = np.load(folder / "sentence_ranges.npy")
    np.save(folder / "sentences.npy", (ranges[0] + codes * ranges[1]).astype(dtype))
    (folder / "sentence_ranges.npy").unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"]["sentence_ranges.npy"]
    manifest["files"]["sentences.npy"] = {
        "sha256": sha256_of(folder / "sentences.npy"),
        "bytes": (folder / "sentences.npy").stat().st_size,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    store = FaissGeneration.open(fake_index)
    try:
        assert store.capabilities.sentence_vectors
        floats = store.sentence_scores(ids, query).maxima()
        assert floats == pytest.approx(coded, abs=2e-3)
    finally:
        store.close()
