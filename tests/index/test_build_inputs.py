"""A build's vectors: every passage and sentence row holds its own text's vector, repeats too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch.index import build_inputs
from semsearch.index.build_inputs import embed_with_cache
from semsearch.index.chunking import Chunk
from tests.conftest import FakeEmbedder


def _chunk(number: int, text: str) -> Chunk:
    return Chunk("a.txt", number, 0, "", text, 0, len(text), f"Title\n{text}")


@pytest.mark.parametrize("warm", [False, True])
def test_repeated_texts_get_their_vectors_in_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warm: bool
) -> None:
    monkeypatch.setattr(build_inputs, "CACHE_READ", 3)  # several blocks of cache reads, repeats
    texts = ["one", "two", "one", "three", "two", "one", "four"]
    chunks = [_chunk(i, text) for i, text in enumerate(texts)]
    sentences = [["Same.", "Other."], ["Same."], [], ["Other.", "Same.", "New."]] + [["Same."]] * 3
    embedder = FakeEmbedder()
    if warm:  # the second build reads everything from the cache
        embed_with_cache(chunks, embedder, tmp_path, None, sentences)
    passages, found, embedded, texts_embedded = embed_with_cache(
        chunks, embedder, tmp_path, None, sentences
    )
    assert np.allclose(passages, embedder.embed_batch([c.embed_text for c in chunks]))
    flat = [s for found_in in sentences for s in found_in]
    assert found is not None and found.counts.tolist() == [len(s) for s in sentences]
    assert np.allclose(found.vectors.astype(np.float32), embedder.embed_batch(flat), atol=1e-3)
    # Each distinct text once: 4 passages, 3 sentences; nothing when the cache has them.
    assert (embedded, texts_embedded) == ((0, 0) if warm else (4, 7))
