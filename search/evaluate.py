"""Evaluation on BEIR-format folders: nDCG@10, Recall@100, MRR@10 and passage hit@5 per mode."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semsearch.index.articles import Article, article_from_text
from semsearch.index.builder import build_from_articles
from semsearch.index.embedding import Embedder
from semsearch.index.errors import CorpusError
from semsearch.index.stores import PassageStore, Store
from semsearch.search.feedback import Progress
from semsearch.search.service import FUSION_DEPTH, MODES, SearchService
from semsearch.search.settings import Settings

__all__ = ["BeirDataset", "ensure_index", "evaluate", "load_beir"]

# Documents ranked per query: Recall@100 needs at least 100.
DOC_DEPTH = 100
PASSAGE_HIT_AT = 5


@dataclass
class BeirDataset:
    """A BEIR folder: documents, queries, graded judgements, and optional answer paragraphs."""

    name: str
    documents: list[tuple[str, str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    fingerprint: str
    paragraphs: dict[str, tuple[str, int, str]] = field(default_factory=dict)

    def articles(self) -> list[Article]:
        return [article_from_text(doc_id, title, text) for doc_id, title, text in self.documents]


def _read_jsonl(path: Path) -> Iterable[dict]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as error:
                    raise CorpusError(f"{path}:{number} is not valid JSON ({error})") from None


def load_beir(folder: Path) -> BeirDataset:
    """Read corpus.jsonl, queries.jsonl, qrels/test.tsv and, if present, paragraphs.jsonl.

    Raises:
        CorpusError: a file is missing or malformed.
    """
    needed = [folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / "test.tsv"]
    for path in needed:
        if not path.is_file():
            raise CorpusError(
                f"{path} is missing: `semsearch eval` needs a BEIR folder with corpus.jsonl, "
                "queries.jsonl and qrels/test.tsv"
            )
    digest = hashlib.sha256()
    for path in needed:
        digest.update(path.read_bytes())
    try:
        documents = [
            (str(d["_id"]), str(d.get("title") or ""), str(d.get("text") or ""))
            for d in _read_jsonl(needed[0])
        ]
        queries = {str(q["_id"]): str(q["text"]) for q in _read_jsonl(needed[1])}
    except KeyError as error:
        raise CorpusError(f"a record in {folder} has no {error} field") from None
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(needed[2].read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if (number == 0 and parts[0] == "query-id") or not line.strip():
            continue
        if len(parts) < 3:
            raise CorpusError(f"{needed[2]}:{number + 1} needs query-id, corpus-id and score")
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    paragraphs = {}
    if (folder / "paragraphs.jsonl").is_file():
        for p in _read_jsonl(folder / "paragraphs.jsonl"):
            paragraphs[str(p["_id"])] = (
                str(p["article"]),
                int(p["paragraph"]),
                p["paragraph_prefix"],
            )
    return BeirDataset(
        name=folder.resolve().name,
        documents=documents,
        queries={qid: text for qid, text in queries.items() if qid in qrels},
        qrels=qrels,
        fingerprint=digest.hexdigest(),
        paragraphs=paragraphs,
    )


def ensure_index(
    dataset: BeirDataset,
    index_dir: Path,
    embedder: Embedder,
    progress: Progress | None = None,
    store: Store | None = None,
    sentence_vectors: bool = True,
) -> bool:
    """Build the dataset's index unless the live one was built from the same documents, model
    and settings (the builder's own up-to-date check).

    Args:
        store: where the index lives (default: FAISS + SQLite in `index_dir`, which keeps the
            embedding cache either way).
        sentence_vectors: also embed each passage's sentences (see `build_from_articles`).

    Returns:
        True when an index was built, False when the existing one was reused.
    """
    report = build_from_articles(
        dataset.articles(),
        index_dir,
        embedder,
        source=f"beir:{dataset.name}",
        progress=progress,
        extra_manifest={"corpus_sha256": dataset.fingerprint},
        skip_unchanged=True,
        store=store,
        sentence_vectors=sentence_vectors,
    )
    return not report.up_to_date


def _documents_in_order(
    chunk_ids: Sequence[int], article_of: Sequence[str], store: PassageStore | None = None
) -> list[str]:
    """Documents ranked by their best passage; a collapsed hit ranks its `also_in` articles too."""
    seen: dict[str, None] = {}
    duplicates = store.duplicates_of_many(chunk_ids) if store is not None else {}
    for chunk_id in chunk_ids:
        seen.setdefault(article_of[chunk_id], None)
        if store is not None:
            for _, article_id, _ in duplicates[chunk_id]:
                seen.setdefault(article_id, None)
        if len(seen) >= DOC_DEPTH:
            break
    return list(seen)[:DOC_DEPTH]


def _answer_passages(
    dataset: BeirDataset, locations: Sequence[tuple[str, int, str]]
) -> dict[str, set[int]]:
    """For each query with an answer paragraph, the chunk ids holding that paragraph."""
    by_article: dict[str, list[int]] = {}
    for chunk_id, (article_id, _, _) in enumerate(locations):
        by_article.setdefault(article_id, []).append(chunk_id)
    answers: dict[str, set[int]] = {}
    for qid, (article_id, _number, prefix) in dataset.paragraphs.items():
        wanted = " ".join(prefix.split())
        paragraphs = {
            locations[c][1]
            for c in by_article.get(article_id, [])
            if wanted in " ".join(locations[c][2].split())
        }
        # Every piece of the paragraph counts, should a long one have been split.
        answers[qid] = {c for c in by_article.get(article_id, []) if locations[c][1] in paragraphs}
    return answers


def evaluate(
    service: SearchService,
    dataset: BeirDataset,
    modes: Sequence[str] = MODES,
    progress: Progress | None = None,
) -> dict[str, dict[str, float]]:
    """Run every judged query in each mode and score the runs with ir-measures.

    Documents are ranked by their best passage. Returns {mode: {metric: value}} with ndcg@10,
    recall@100, mrr@10, hit@10 (a relevant document among the first 10) and, when the dataset
    has answer paragraphs, passage_hit@5; and the same for each of the `query_subsets` as
    {"mode/subset": ...}.
    """
    import ir_measures

    locations = service.store.passage_locations()
    article_of = [article_id for article_id, _, _ in locations]
    answers = _answer_passages(dataset, locations)
    qrels = [
        ir_measures.Qrel(qid, doc_id, relevance)
        for qid, judged in dataset.qrels.items()
        for doc_id, relevance in judged.items()
    ]
    subsets = query_subsets(dataset.queries)
    total = len(dataset.queries) * len(modes)
    done = 0
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        run: list[Any] = []  # ir_measures.ScoredDoc
        hit_at_5: dict[str, bool] = {}
        for qid, text in dataset.queries.items():
            chunk_ids = service.rank(text, mode, FUSION_DEPTH)
            documents = _documents_in_order(chunk_ids, article_of, service.store)
            run.extend(
                ir_measures.ScoredDoc(qid, doc_id, float(len(documents) - position))
                for position, doc_id in enumerate(documents)
            )
            if qid in answers:
                shown = set(chunk_ids[:PASSAGE_HIT_AT])
                twins = service.store.duplicates_of_many(chunk_ids[:PASSAGE_HIT_AT])
                for found in twins.values():  # a collapsed hit stands for its twins
                    shown.update(i for i, _, _ in found)
                hit_at_5[qid] = bool(answers[qid] & shown)
            done += 1
            if progress is not None:
                progress(done, total)
        results[mode] = _scores(qrels, run, hit_at_5)
        for name, qids in subsets.items():
            results[f"{mode}/{name}"] = _scores(
                [qrel for qrel in qrels if qrel.query_id in qids],
                [doc for doc in run if doc.query_id in qids],
                {qid: hit for qid, hit in hit_at_5.items() if qid in qids},
            )
    return results


def query_subsets(queries: dict[str, str]) -> dict[str, set[str]]:
    """The queries split by form, where a set has both: "questions" (ending in "?") and
    "keywords" (the rest); none otherwise. Fusion favours the two differently: a question
    carries its own words and many common ones, keywords only the words that matter."""
    questions = {qid for qid, text in queries.items() if text.rstrip().endswith("?")}
    keywords = set(queries) - questions
    return {"questions": questions, "keywords": keywords} if questions and keywords else {}


def _scores(qrels: list[Any], run: list[Any], hit_at_5: dict[str, bool]) -> dict[str, float]:
    """nDCG@10, Recall@100, MRR@10 and hit@10 of a run; passage hit@5 where answers are known."""
    import ir_measures
    from ir_measures import RR, R, Success, nDCG

    measures = [nDCG @ 10, R @ 100, RR @ 10, Success @ 10]
    scores = ir_measures.calc_aggregate(measures, qrels, run)
    found = {
        "ndcg@10": round(scores[nDCG @ 10], 4),
        "recall@100": round(scores[R @ 100], 4),
        "mrr@10": round(scores[RR @ 10], 4),
        "hit@10": round(scores[Success @ 10], 4),
    }
    if hit_at_5:
        found["passage_hit@5"] = round(sum(hit_at_5.values()) / len(hit_at_5), 4)
    return found


def open_service(
    index_dir: Path, embedder: Embedder, settings: Settings | None = None
) -> SearchService:
    """The search service over an evaluation index (with `settings`' store and search defaults)."""
    settings = (settings or Settings()).model_copy(update={"index_dir": index_dir})
    return SearchService.open(settings, embedder)
