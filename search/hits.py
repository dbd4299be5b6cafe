"""Hits: the passages a ranking shows, with their text, highlights and why they rank there.

`build_hits` turns a fused ranking into `Hit`s: it looks up the shown passages, caps hits per
article, highlights the query's words, and records each passage's rank and score in the dense
and lexical legs (a passage only the lexical leg found shows the cosine it was fused with) and
the other articles that hold the same passage. Given the query's vector, it also finds in each
hit the sentence nearest to it (`Hit.answer`, `answers`), where the store keeps sentence vectors.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from semsearch.index.chunking import sentence_spans
from semsearch.index.stores import PassageStore, SentenceScores
from semsearch.search.fusion import Ranking
from semsearch.search.score_parts import ScoreParts, Stages, score_parts
from semsearch.search.text import highlight_spans, mark

__all__ = ["ANSWER_FLOOR", "Answer", "Hit", "answers", "build_hits", "shown_answer"]

# A hit's best sentence is its answer only when its inner product with the query is at least
# this. With all-MiniLM-L6-v2 on seeds/, the best sentences of hits that answer a query scored
# 0.25 to 0.56 ("drone strikes on energy infrastructure": 0.56, 0.48; "power outages": 0.33,
# 0.26), those of hits that only share the topic 0.10 to 0.16, and those of a query the
# articles do not discuss ("banana bread recipe") 0.01 to 0.08.
ANSWER_FLOOR = 0.15
# The sentence spans of the passages shown most recently: a repeated query (a popular search,
# paging back) finds its hits' spans here, as its vector in the query cache (segmenting ten
# passages takes about 0.05-0.09 ms: a tenth of a cached hybrid query over 10,000 passages).
SPAN_CACHE_ENTRIES = 4096


@lru_cache(maxsize=SPAN_CACHE_ENTRIES)
def _sentence_spans(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(sentence_spans(text))


@dataclass(frozen=True)
class Answer:
    """The sentence of a hit's text that best answers the query: `text[start:end]`."""

    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    """One ranked passage, with what is needed to show it and to explain its rank."""

    rank: int
    score: float
    article_id: str
    title: str
    section: str  # the article's metadata: "" when unknown
    published: str | None  # YYYY-MM-DD
    author: str
    url: str
    tags: tuple[str, ...]
    paragraph: int
    part: int
    heading: str
    text: str
    snippet: str
    highlights: tuple[tuple[int, int], ...]
    start: int
    end: int
    chunk_id: int
    dense_rank: int | None
    dense_score: float | None
    lexical_rank: int | None
    lexical_score: float | None
    also_in: tuple[str, ...] = ()
    answer: Answer | None = None  # None: no query vector, or no sentence vectors
    anchored: bool = False  # moved up as the dense leg's best passage (`fusion.anchor`)
    score_parts: ScoreParts | None = None  # what the score adds up from (`search.score_parts`)


def _places(leg: list[tuple[int, float]], wanted: Any) -> dict[int, tuple[int | None, float]]:
    """(rank, score) in a leg of each of the `wanted` ids the leg returned."""
    return {
        chunk_id: (rank, score)
        for rank, (chunk_id, score) in enumerate(leg, start=1)
        if chunk_id in wanted
    }


def build_hits(
    store: PassageStore,
    query: str,
    ranked: Ranking,
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    cosines: Ranking | None,
    k: int,
    max_per_article: int | None,
    collapse: bool,
    offset: int = 0,
    vector: np.ndarray | None = None,
    sentences: SentenceScores | None = None,
    anchored: int | None = None,
    pool: Executor | None = None,
    stages: Stages | None = None,
) -> list[Hit]:
    """The `k` hits of `ranked` after the first `offset` (at most `max_per_article` from one
    article when set), ranked offset + 1 on.

    Args:
        store: where the passages are looked up.
        query: the query, for highlighting.
        ranked: the final ranking, best first.
        dense, lexical: the legs it came from, best first, for each hit's explanation.
        cosines: with bounded fusion, the cosine of every candidate (both legs'), else None.
        collapse: whether near-duplicates were collapsed (hits then list them in `also_in`).
        vector: the query's vector, for each hit's answer sentence (`answers`); None: no answers.
        sentences: the sentences' scores the ranking already has, for the hits among them.
        anchored: the passage moved up as the dense leg's best (`fusion.anchor`), if any.
        pool: where a store in a server scores the shown hits' sentences that `sentences`
            lacks while their passages are read (two round trips at once, not one after the
            other).
        stages: the ranking after each of its steps, for each hit's `score_parts`.
    """
    # Without a cap, only ranks offset + 1 to offset + k can become hits: only they are looked up.
    window = slice(offset, offset + k)
    shown = (
        ranked.pairs()
        if max_per_article is not None
        else Ranking(ranked.ids[window], ranked.scores[window]).pairs()
    )
    skip = offset if max_per_article is not None else 0  # capped: counted from the first
    scoring = None
    if pool is not None and max_per_article is None and not store.capabilities.in_process:
        scoring = _score_ahead(store, [chunk_id for chunk_id, _ in shown], vector, sentences, pool)
    records = store.chunks(chunk_id for chunk_id, _ in shown)
    dense_at = _places(dense, records)
    lexical_at = _places(lexical, records)
    if cosines is not None:
        # A passage only the lexical leg found was fused with its own cosine: shown unranked.
        unranked = [chunk_id for chunk_id in records if chunk_id not in dense_at]
        where = np.isin(cosines.ids, unranked)
        scores = cosines.scores[where].tolist()
        for chunk_id, cosine in zip(cosines.ids[where].tolist(), scores, strict=True):
            dense_at[chunk_id] = (None, cosine)
    chosen = []
    per_article: dict[str, int] = {}
    for chunk_id, score in shown:
        record = records.get(chunk_id)
        if record is None:
            continue
        if max_per_article is not None:
            if per_article.get(record.article_id, 0) >= max_per_article:
                continue
            per_article[record.article_id] = per_article.get(record.article_id, 0) + 1
        if skip:
            skip -= 1
            continue
        chosen.append((chunk_id, score, record))
        if len(chosen) == k:
            break
    if scoring is not None:
        more = scoring.result()
        sentences = more if sentences is None else sentences.taking(more)
    # The answer sentences of the hits shown only, not of every candidate.
    found = answers(
        store, [(chunk_id, record.text) for chunk_id, _, record in chosen], vector, sentences
    )
    chosen_ids = [chunk_id for chunk_id, _, _ in chosen]
    # Collapsed: each hit lists the other articles holding its near-duplicates.
    duplicates = store.duplicates_of_many(chosen_ids) if collapse else {}
    parts = score_parts(stages, chosen_ids) if stages is not None else {}
    hits: list[Hit] = []
    for (chunk_id, score, record), answer in zip(chosen, found, strict=True):
        spans = highlight_spans(record.text, query)
        d_rank, d_score = dense_at.get(chunk_id, (None, None))
        l_rank, l_score = lexical_at.get(chunk_id, (None, None))
        hits.append(
            Hit(
                rank=offset + len(hits) + 1,
                score=round(score, 6),
                article_id=record.article_id,
                title=record.title,
                section=record.section,
                published=record.published,
                author=record.author,
                url=record.url,
                tags=record.tags,
                paragraph=record.paragraph,
                part=record.part,
                heading=record.heading,
                text=record.text,
                snippet=mark(record.text, spans),
                highlights=tuple(spans),
                start=record.start,
                end=record.end,
                chunk_id=chunk_id,
                dense_rank=d_rank,
                dense_score=None if d_score is None else round(d_score, 6),
                lexical_rank=l_rank,
                lexical_score=None if l_score is None else round(l_score, 6),
                also_in=_also_in(duplicates.get(chunk_id, []), record.article_id),
                answer=answer,
                anchored=chunk_id == anchored,
                score_parts=parts.get(chunk_id),
            )
        )
    return hits


def _score_ahead(
    store: PassageStore,
    ids: list[int],
    vector: np.ndarray | None,
    scored: SentenceScores | None,
    pool: Executor,
) -> Future[SentenceScores] | None:
    """The sentences of those of `ids` that `scored` lacks, being scored in `pool` (None when
    there are none, or nothing to score them with)."""
    if vector is None or not ids or not store.capabilities.sentence_vectors:
        return None
    if scored is not None:
        seen = scored.best(ids)[2]
        ids = [chunk_id for chunk_id, known in zip(ids, seen.tolist(), strict=True) if not known]
    if not ids:
        return None
    return pool.submit(store.sentence_scores, np.array(ids, dtype=np.int64), vector)


def _also_in(duplicates: list[tuple[int, str, int]], article_id: str) -> tuple[str, ...]:
    """The other articles holding a near-duplicate of a passage (`duplicates`), each once."""
    others = (other for _, other, _ in duplicates)
    return tuple(dict.fromkeys(other for other in others if other != article_id))


def shown_answer(hit: Hit) -> tuple[int, int] | None:
    """The hit's answer span where it is worth marking: None where it has none or where it is
    the whole text (a passage of one sentence)."""
    if hit.answer is None or (hit.answer.start, hit.answer.end) == (0, len(hit.text)):
        return None
    return hit.answer.start, hit.answer.end


def answers(
    store: PassageStore,
    passages: list[tuple[int, str]],
    vector: np.ndarray | None,
    scored: SentenceScores | None = None,
) -> list[Answer | None]:
    """For each (chunk id, text), the sentence of the text nearest to the query vector when it
    scores at least `ANSWER_FLOOR`, else None; all None without a vector or where the store
    keeps no sentence vectors. Passages `scored` already holds are not scored again; the
    others are, by `store.sentence_scores`."""
    if vector is None or not passages or not store.capabilities.sentence_vectors:
        return [None] * len(passages)
    ids = [chunk_id for chunk_id, _ in passages]
    if scored is None:
        scored = store.sentence_scores(np.array(ids, dtype=np.int64), vector)
    numbers, products, known = scored.best(ids)
    if not known.all():
        missing = [chunk_id for chunk_id, seen in zip(ids, known.tolist(), strict=True) if not seen]
        rest = store.sentence_scores(np.array(missing, dtype=np.int64), vector).best(missing)
        numbers[~known], products[~known] = rest[0], rest[1]
    found: list[Answer | None] = []
    for (_, text), number, product in zip(
        passages, numbers.tolist(), products.tolist(), strict=True
    ):
        spans = _sentence_spans(text) if number >= 0 and product >= ANSWER_FLOOR else ()
        # (an index built with other sentences than these: no answer)
        found.append(Answer(*spans[number]) if 0 <= number < len(spans) else None)
    return found
