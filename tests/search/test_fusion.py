"""Reciprocal rank fusion."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch.search.fusion import (
    Ranking,
    anchor,
    boost_articles,
    fuse_bounded,
    fuse_rrf,
    fuse_zscore,
)


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
    assert fuse_rrf([[], []]).pairs() == []


def test_zscore_standardises_each_leg() -> None:
    # dense scores 0.9/0.5/0.1 and BM25 30/20/10 both standardise to +1.22/0/-1.22.
    fused = dict(fuse_zscore([(1, 0.9), (2, 0.5), (3, 0.1)], [(3, 30.0), (2, 20.0), (1, 10.0)]))
    assert fused[1] == pytest.approx(0.0) and fused[3] == pytest.approx(0.0)
    assert fused[2] == pytest.approx(0.0)


def test_zscore_weight_and_missing_ids() -> None:
    dense, lexical = [(1, 0.9), (2, 0.1)], [(3, 5.0), (1, 1.0)]
    fused = fuse_zscore(dense, lexical, dense_weight=0.5)
    # id 2 is missing from the lexical leg and gets its floor (-1), id 3 the dense floor (-1).
    assert dict(fused) == pytest.approx({1: 0.0, 2: -1.0, 3: 0.0})
    assert [i for i, _ in fused] == [1, 3, 2]  # ties go to the smaller id
    assert [i for i, _ in fuse_zscore(dense, lexical, dense_weight=1.0)] == [1, 2, 3]


def test_zscore_with_one_leg_empty() -> None:
    assert [i for i, _ in fuse_zscore([(4, 0.3), (5, 0.2)], [])] == [4, 5]
    assert fuse_zscore([], []).pairs() == []


def test_zscore_constant_scores_do_not_divide_by_zero() -> None:
    assert dict(fuse_zscore([(1, 0.5), (2, 0.5)], [])) == {1: 0.0, 2: 0.0}


def test_article_boost_groups_an_articles_paragraphs() -> None:
    scored = [(10, 3.0), (20, 2.0), (11, 1.0)]
    article_of = {10: 1, 11: 1, 20: 2}
    assert [i for i, _ in boost_articles(scored, article_of, weight=1.0)] == [10, 11, 20]
    assert boost_articles(scored, article_of, weight=0.0).pairs() == scored


def test_repeated_ids_count_once() -> None:
    assert dict(fuse_rrf([[1, 1, 2]]))[1] == pytest.approx(1 / 61)
    assert dict(fuse_rrf([[1, 1, 2]]))[2] == pytest.approx(1 / 62)
    fused = fuse_zscore([(1, 0.9), (1, 0.1), (2, 0.5)], [], dense_weight=1.0)
    assert dict(fused) == pytest.approx({1: 1.0, 2: -1.0})


def test_bounded_fusion_divides_bm25_by_the_ceiling() -> None:
    dense = [(1, 0.8), (2, 0.6)]
    lexical = [(2, 6.0), (3, 3.0)]
    fused = dict(fuse_bounded(dense, lexical, lexical_ceiling=10.0, dense_weight=0.5))
    # 1 has no lexical score: the lexical leg's lowest (3.0); 3 has no cosine: the lowest (0.6).
    assert fused == pytest.approx(
        {1: 0.5 * 0.8 + 0.5 * 0.3, 2: 0.5 * 0.6 + 0.5 * 0.6, 3: 0.5 * 0.6 + 0.5 * 0.3}
    )
    assert [i for i, _ in fuse_bounded(dense, lexical, 10.0, 0.5)] == [2, 1, 3]


def test_bounded_fusion_edge_cases() -> None:
    assert fuse_bounded([], [], 5.0).pairs() == []
    assert [i for i, _ in fuse_bounded([(4, 0.3), (5, 0.2)], [], 0.0)] == [4, 5]
    # no ceiling (no query term in the corpus): scores are taken as they are
    assert dict(fuse_bounded([], [(7, 2.0)], 0.0, 0.5)) == {7: 1.0}
    tied = fuse_bounded([(9, 0.5), (3, 0.5)], [], 1.0)
    assert [i for i, _ in tied] == [3, 9]


def test_a_ranking_keeps_its_pairs_in_order() -> None:
    pairs = [(5, 0.5), (2, 0.25), (9, -1.0)]
    ranking = Ranking.of(pairs)
    assert ranking.pairs() == pairs and list(ranking) == pairs and len(ranking) == 3
    assert ranking.ids.dtype == np.int64
    assert Ranking.of([(3, 1.0), (4, 0.5), (3, 0.2)]).first_of_each().pairs() == [
        (3, 1.0),
        (4, 0.5),
    ]
    assert Ranking.of([]).pairs() == [] and Ranking.of(ranking) is ranking


def test_article_words_add_each_articles_share() -> None:
    from semsearch.search.fusion import add_article_words

    scored = Ranking.of([(0, 0.5), (1, 0.45), (2, 0.4)])
    article_of = np.array([7, 8, 9])
    # article 8 matched best (BM25 6 of a ceiling of 10); 9 a little; 7 not at all
    lifted = add_article_words(scored, article_of, np.array([9, 8]), np.array([1.0, 6.0]), 10.0)
    assert lifted.ids.tolist() == [1, 0, 2]
    assert lifted.scores.tolist() == pytest.approx([0.45 + 0.8 * 0.6, 0.5, 0.4 + 0.8 * 0.1])
    assert add_article_words(scored, article_of, np.array([8]), np.array([6.0]), 0.0) is scored
    assert (
        add_article_words(scored, article_of, np.zeros(0, dtype=np.int64), np.zeros(0), 5.0)
        is scored
    )


def test_sentences_lift_a_passage_part_of_the_way_and_never_lower_it() -> None:
    from semsearch.search.fusion import lift_to_sentences

    cosines = np.array([0.5, 0.6, 0.3, 0.2])
    best = np.array([0.9, 0.4, -np.inf, 0.2])  # higher, lower, no sentence, equal
    assert lift_to_sentences(cosines, best, 0.25).tolist() == pytest.approx(
        [0.5 + 0.25 * 0.4, 0.6, 0.3, 0.2]
    )
    assert lift_to_sentences(cosines, best, 0.0).tolist() == cosines.tolist()
    assert lift_to_sentences(cosines, best, 1.0).tolist() == pytest.approx([0.9, 0.6, 0.3, 0.2])
    assert len(lift_to_sentences(np.zeros(0), np.zeros(0), 0.4)) == 0


def test_anchor_moves_a_passage_up_keeping_scores_in_order():
    scored = Ranking(np.array([5, 6, 7, 8, 9]), np.array([0.9, 0.8, 0.7, 0.6, 0.5]))
    moved, done = anchor(scored, 9, within=3)
    assert done and moved.ids.tolist() == [5, 6, 9, 7, 8]
    assert moved.scores.tolist() == [0.9, 0.8, 0.7, 0.7, 0.6]  # it takes the passed one's score
    # Already within, not there at all, or the anchor off: unchanged.
    for chunk_id, within in ((6, 3), (1, 3), (9, 0)):
        same, done = anchor(scored, chunk_id, within=within)
        assert same is scored and not done
