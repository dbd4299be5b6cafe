"""Reciprocal rank fusion."""

from __future__ import annotations

import pytest

from search.fusion import fuse_rrf


def test_items_in_both_lists_win() -> None:
    fused = fuse_rrf([[1, 2, 3], [3, 4, 1]])
    assert [item for item, _ in fused][:2] == [1, 3]


def test_scores_are_sums_of_reciprocal_ranks() -> None:
    fused = dict(fuse_rrf([[7], [8, 7]], k=60))
    assert fused[7] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[8] == pytest.approx(1 / 61)


def test_ties_break_by_best_rank_then_id() -> None:
    assert [item for item, _ in fuse_rrf([[5, 9], [9, 5]])] == [5, 9]
    assert [item for item, _ in fuse_rrf([[4], [2]])] == [2, 4]


def test_empty_lists() -> None:
    assert fuse_rrf([[], []]) == []
