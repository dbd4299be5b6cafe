"""The lexical leg's sum of its words' BM25 rows: the best k, exactly, however many rows."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch.index.lexical import _summed


def _reference(
    found: list[tuple[np.ndarray, np.ndarray]], k: int, keep: np.ndarray | None
) -> tuple[list[int], list[float]]:
    """Sum every row's scores in a dict, sort by score then rowid: slow and obviously right."""
    totals: dict[int, float] = {}
    for rows, scores in found:
        for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
            totals[row] = totals.get(row, 0.0) + score
    if keep is not None:
        totals = {r: s for r, s in totals.items() if r < len(keep) and keep[r]}
    best = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:k]
    return [r for r, _ in best], [s for _, s in best]


def _word(rng: np.random.Generator, passages: int, holding: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.sort(rng.choice(passages, size=holding, replace=False))
    # Few distinct scores, so that many rows tie with the k-th.
    return rows.astype(np.int32), rng.integers(1, 40, size=holding) / 100.0


@pytest.mark.parametrize("words", [1, 2, 4])
@pytest.mark.parametrize("k", [1, 10, 300])
@pytest.mark.parametrize("masked", [False, True])
def test_the_best_rows_are_exact_past_the_sampled_bound(words: int, k: int, masked: bool) -> None:
    rng = np.random.default_rng(words * 1000 + k)
    passages = 200_000  # past the point where the bound is taken from a sample
    found = [_word(rng, passages, holding) for holding in (150_000, 90_000, 70_000, 300)[:words]]
    keep = rng.random(passages - 5) < 0.4 if masked else None
    rows, scores = _summed(found, k, keep)
    expected_rows, expected_scores = _reference(found, k, keep)
    assert rows.tolist() == expected_rows
    assert np.allclose(scores, expected_scores)
    assert rows.dtype == np.int64


def test_few_rows_and_an_empty_mask() -> None:
    found = [
        (np.array([3, 1, 7]), np.array([0.5, 0.25, 0.5])),
        (np.array([1, 9]), np.array([0.25, 0.1])),
    ]
    rows, scores = _summed(found, 3)
    assert rows.tolist() == [1, 3, 7] and scores.tolist() == [0.5, 0.5, 0.5]
    rows, scores = _summed(found, 10, np.zeros(20, dtype=bool))
    assert rows.size == 0 and scores.size == 0
    assert _summed(found, 0)[0].size == 0 and _summed(found[:1], 0)[0].size == 0
