"""The real packaged model on seeds/: each question finds its paragraph in the top 3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch.search.service import SearchService
from semsearch.search.settings import Settings

pytestmark = pytest.mark.model

EXPECTED = [
    ("how many people lost electricity after the strikes", "1.2 million people"),
    ("which region does Moscow demand that Kyiv give up", "Donetsk"),
    ("who represented Ukraine at the negotiations", "Rustem Umerov"),
    ("casualties in Kharkiv", "Kharkiv regional head"),
    ("American envoys present at the meeting", "Witkoff"),
]


@pytest.fixture(scope="module")
def service(real_index: Path, real_embedder):
    service = SearchService.open(Settings(index_dir=real_index), real_embedder)
    yield service
    service.close()


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
@pytest.mark.parametrize(("query", "expected"), EXPECTED)
def test_expected_paragraph_in_top_3(service: SearchService, query: str, expected: str, mode: str):
    hits = service.search(query, k=3, mode=mode)
    assert any(expected in " ".join(hit.text.split()) for hit in hits), [h.text[:60] for h in hits]


def test_real_vectors_are_normalised(real_embedder) -> None:
    texts = ["power outages", "a second, longer sentence here", "word " * 400]
    vectors = real_embedder.embed_batch(texts)
    assert vectors.shape == (3, 384)
    assert vectors.dtype.name == "float32"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # every row, not one
    # a batch gives each text the vector it gets alone (padding is masked)
    alone = np.stack([real_embedder.embed_query(text) for text in texts])
    assert np.min(np.sum(vectors * alone, axis=1)) > 0.9999


def test_real_model_counts_tokens(real_embedder) -> None:
    assert real_embedder.max_tokens == 254
    assert real_embedder.count_tokens("hello world") == 2
