"""Distributed builds: Ray Data workers embed what the plain build embeds, identically."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from semsearch.index.builder import build_index
from semsearch.index.distributed import RayEmbedder, RayUnavailable
from semsearch.index.faiss_generation import FaissGeneration
from tests.conftest import SEEDS

pytest.importorskip("ray", reason="Ray is in the dev extra: pip install -e '.[dev]'")


@pytest.mark.model
def test_a_ray_build_equals_the_plain_build(tmp_path: Path, real_embedder, model_cache) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    (corpus / "second.txt").write_text(
        "Storm cuts power\n\nA storm cut power to thousands of homes overnight.\n\n"
        "Engineers expect to restore the grid by the weekend.\n"
    )
    plain = build_index(corpus, tmp_path / "plain", real_embedder)
    workers = {
        "model": "all-MiniLM-L6-v2",
        "runtime": "auto",
        "device": "cpu",
        "batch_size": 64,
        "threads": 1,
        "cache_dir": str(model_cache),
    }
    with RayEmbedder.start(real_embedder, workers, "local") as embedder:
        distributed = build_index(corpus, tmp_path / "ray", embedder)
    assert distributed.embedded == plain.embedded == plain.passages == 20
    one, other = FaissGeneration.open(tmp_path / "plain"), FaissGeneration.open(tmp_path / "ray")
    try:
        assert one.passage_locations() == other.passage_locations()
        assert one.manifest["model"] == other.manifest["model"]
        first = np.load(one.folder / "vectors.npy")
        second = np.load(other.folder / "vectors.npy")
        assert np.allclose(first, second, atol=1e-5)
    finally:
        one.close()
        other.close()


def test_an_unreachable_cluster_fails_fast() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RayUnavailable, match="no Ray cluster reachable"):
        RayEmbedder.start(object(), {}, f"127.0.0.1:{port}")  # type: ignore[arg-type]
    with pytest.raises(RayUnavailable, match="host:port"):
        RayEmbedder.start(object(), {}, "nonsense")  # type: ignore[arg-type]
