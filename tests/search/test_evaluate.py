"""The evaluation harness on a tiny BEIR folder whose metrics are worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semsearch.index.errors import CorpusError
from semsearch.search.cli import app
from semsearch.search.evaluate import ensure_index, evaluate, load_beir, open_service
from tests.conftest import FakeEmbedder

DOCS = [
    {"_id": "d1", "title": "Apples", "text": "Apples are red."},
    {"_id": "d2", "title": "Bananas", "text": "Bananas are yellow fruit from the tropics."},
    {"_id": "d3", "title": "Cars", "text": "Cars drive on long roads with four wheels, engines, "
     "seats and many other parts."},
]  # fmt: skip
QUERIES = [{"_id": "q1", "text": "yellow bananas"}, {"_id": "q2", "text": "red wheels"}]
QRELS = "query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td3\t1\nq2\td2\t1\n"


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in DOCS))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in QUERIES))
    (folder / "qrels" / "test.tsv").write_text(QRELS)
    answer = {"_id": "q1", "article": "d2", "paragraph": 1, "paragraph_prefix": "Bananas are yel"}
    (folder / "paragraphs.jsonl").write_text(json.dumps(answer))
    return folder


def test_lexical_metrics_match_hand_computation(beir: Path, tmp_path: Path) -> None:
    # q1 finds only d2 (relevant): every metric 1. q2 ranks d1 (short, "red") before d3
    # ("wheels"); d3 and d2 are relevant: DCG = 1/log2(3), IDCG = 1 + 1/log2(3), recall 1/2, RR 1/2.
    dataset = load_beir(beir)
    embedder = FakeEmbedder()
    ensure_index(dataset, tmp_path / "ix", embedder)
    service = open_service(tmp_path / "ix", embedder)
    scores = evaluate(service, dataset, ["lexical"])["lexical"]
    service.close()
    q2_ndcg = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert scores["ndcg@10"] == pytest.approx((1 + q2_ndcg) / 2, abs=1e-4)
    assert scores["recall@100"] == pytest.approx(0.75)
    assert scores["mrr@10"] == pytest.approx(0.75)
    assert scores["hit@10"] == 1.0  # each query has a relevant document in its first 10
    assert scores["passage_hit@5"] == 1.0


def test_index_is_reused_when_corpus_and_model_match(beir: Path, tmp_path: Path) -> None:
    dataset = load_beir(beir)
    assert ensure_index(dataset, tmp_path / "ix", FakeEmbedder()) is True
    assert ensure_index(dataset, tmp_path / "ix", FakeEmbedder()) is False
    assert ensure_index(dataset, tmp_path / "ix", FakeEmbedder(model_id="other")) is True


def test_missing_file_is_a_clear_error(beir: Path) -> None:
    (beir / "queries.jsonl").unlink()
    with pytest.raises(CorpusError, match=r"queries\.jsonl is missing"):
        load_beir(beir)


@pytest.mark.model
def test_eval_command_json(beir: Path) -> None:
    result = CliRunner().invoke(app, ["eval", str(beir), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert set(scores) == {"hybrid", "dense", "lexical"}
    assert set(scores["hybrid"]) == {"ndcg@10", "recall@100", "mrr@10", "hit@10", "passage_hit@5"}
    assert scores["hybrid"]["recall@100"] == 1.0  # three documents: all of them come back


@pytest.mark.milvus_bm25  # the hand computation is of the lexical scores
def test_eval_on_milvus_matches_the_hand_computation(
    beir: Path, tmp_path: Path, milvus_uri: str, milvus_alias: str
) -> None:
    from semsearch.index.milvus_store import MilvusStore
    from semsearch.search.settings import Settings

    dataset = load_beir(beir)
    embedder = FakeEmbedder()
    backend = MilvusStore(milvus_uri, alias=milvus_alias, index_type="flat")
    assert ensure_index(dataset, tmp_path / "ix", embedder, store=backend) is True
    assert ensure_index(dataset, tmp_path / "ix", embedder, store=backend) is False
    settings = Settings(
        store="milvus", milvus_uri=milvus_uri, milvus_collection=milvus_alias, milvus_index="flat"
    )
    service = open_service(tmp_path / "ix", embedder, settings)
    scores = evaluate(service, dataset, ["lexical", "dense"])
    service.close()
    backend.drop()
    q2_ndcg = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert scores["lexical"]["ndcg@10"] == pytest.approx((1 + q2_ndcg) / 2, abs=1e-4)
    assert scores["lexical"]["passage_hit@5"] == 1.0
    faiss_dataset_index = tmp_path / "faiss"
    ensure_index(dataset, faiss_dataset_index, embedder)
    reference = open_service(faiss_dataset_index, embedder)
    assert evaluate(reference, dataset, ["dense"])["dense"] == scores["dense"]
    reference.close()
