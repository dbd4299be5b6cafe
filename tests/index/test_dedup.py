"""Near-duplicate passages: exact and edited copies group together, distinct passages do not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semsearch.index.builder import build_index
from semsearch.index.dedup import near_duplicate_groups
from semsearch.index.faiss_generation import FaissGeneration
from tests.conftest import FakeEmbedder

STORY = (
    "Story title\n\n"
    "The central bank left interest rates unchanged at 4.75% on Thursday, as most economists "
    "had expected after weak retail figures.\n\n"
    "Analysts said the next move was likely to be a cut, possibly as soon as the spring, if "
    "consumer spending stayed subdued.\n"
)
OTHER = (
    "Another story\n\n"
    "The football club confirmed that its captain will miss the rest of the season after "
    "surgery on a damaged knee ligament.\n"
)


def vectors(texts: list[str]) -> np.ndarray:
    return FakeEmbedder().embed_batch(texts)


def test_exact_and_edited_copies_group_together() -> None:
    rates = (
        "The central bank left interest rates unchanged at 4.75% on Thursday, as most economists "
        "had expected after weak retail figures and a slowing housing market over the winter."
    )
    texts = [
        rates,
        rates,
        rates.replace("Thursday", "Wednesday"),
        "The club confirmed its captain will miss the rest of the season after knee surgery.",
    ]
    assert near_duplicate_groups(vectors(texts), texts).tolist() == [0, 0, 0, 3]


def test_same_words_with_other_context_are_duplicates() -> None:
    texts = ["Prices rose by 2% in May, the statistics office said.", "Other text entirely here."]
    far_apart = np.eye(2, 8, dtype=np.float32)  # orthogonal vectors: only the words agree
    twins = [texts[0], texts[0].upper()]
    assert near_duplicate_groups(far_apart, twins).tolist() == [0, 0]
    assert near_duplicate_groups(far_apart, texts).tolist() == [0, 1]


def test_related_but_different_passages_stay_apart() -> None:
    texts = [
        "The Bank of England has left interest rates on hold at 4.75% for a sixth month in a row.",
        "The Bank of England has left interest rates on hold again at 4.75%, as predicted.",
    ]
    assert near_duplicate_groups(np.ones((2, 4), dtype=np.float32) / 2, texts).tolist() == [0, 1]


def test_build_counts_duplicates_and_lists_them(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(STORY)
    (corpus / "b.txt").write_text(STORY)
    (corpus / "c.txt").write_text(STORY.replace("Thursday", "Wednesday"))
    (corpus / "d.txt").write_text(OTHER)
    report = build_index(corpus, tmp_path / "ix", FakeEmbedder())
    assert report.duplicates == 4  # two paragraphs, each twice more
    store = FaissGeneration.open(tmp_path / "ix")
    assert [a for _, a, _ in store.duplicates_of(0)] == ["b.txt", "c.txt"]
    assert store.duplicates_of(6) == []
    store.close()


def test_the_cosine_bar_itself_counts() -> None:
    texts = ["the same words in both passages here", "the same words in both passages here too"]
    pair = np.array([[1.0, 0.0], [0.9, 0.19**0.5]], dtype=np.float32)
    bar = float(pair[0] @ pair[1])
    assert near_duplicate_groups(pair, texts, cosine=bar, jaccard=0.5).tolist() == [0, 0]
    above = float(np.nextafter(np.float32(bar), np.float32(2)))
    assert near_duplicate_groups(pair, texts, cosine=above, jaccard=0.5).tolist() == [0, 1]


def test_large_corpora_find_the_same_groups_with_an_inverted_file(monkeypatch) -> None:
    # Beyond EXACT_MAX passages, candidates come from an IVF index instead of every pair.
    rng = np.random.default_rng(7)
    originals = rng.normal(size=(3000, 32)).astype(np.float32)
    copies = originals[:300] + rng.normal(scale=0.02, size=(300, 32)).astype(np.float32)
    vectors_ = np.concatenate([originals, copies])
    vectors_ /= np.linalg.norm(vectors_, axis=1, keepdims=True)
    words = [f"passage {i} says " + " ".join(f"w{i}x{j}" for j in range(12)) for i in range(3000)]
    # Half the copies keep their words with one changed (duplicates), half are new words.
    texts = words + [
        words[i].replace("x0 ", "x0 edited ") if i % 2 == 0 else f"other {i} " * 8
        for i in range(300)
    ]
    exact = near_duplicate_groups(vectors_, texts)
    monkeypatch.setattr("semsearch.index.vectors.NEIGHBOURS_EXACT_MAX", 0)
    assert near_duplicate_groups(vectors_, texts).tolist() == exact.tolist()
    grouped = np.flatnonzero(exact != np.arange(len(exact)))
    assert grouped.tolist() == [3000 + i for i in range(0, 300, 2)]
    assert exact[grouped].tolist() == list(range(0, 300, 2))
