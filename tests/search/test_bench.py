"""`semsearch bench` on the seed article with a small synthetic vector set: every figure present."""

from __future__ import annotations

import pytest

from semsearch.search.bench import format_bench, run_bench
from semsearch.search.settings import Settings
from tests.conftest import SEEDS

pytestmark = pytest.mark.model


def test_bench_reports_every_figure() -> None:
    lines: list[str] = []
    figures = run_bench(SEEDS, Settings(), [2000], 10, lines.append)
    build = figures["build"]
    assert (build["articles"], build["passages"], build["backend"]) == (1, 18, "openvino")
    assert build["min_cosine_to_naive"] > 0.999
    assert build["rebuild_unchanged_up_to_date"] is True
    assert build["rebuild_forced_embedded"] == 0
    assert build["rebuild_1pct_embedded"] == 1
    for mode in ("hybrid", "dense", "lexical"):
        for clients in (1, 8):
            row = figures["queries"][f"{mode}_{clients}"]
            assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] and row["qps"] > 0
    # the server process with the model loaded: hundreds of MB (not KB or bytes)
    assert 50 < figures["queries"]["server_rss_mb"] < 8192
    stores = figures["stores"]
    assert stores["hybrid_top10_overlap"] > 0.5
    for store in ("faiss", "milvus"):
        for mode in ("hybrid", "dense", "lexical"):
            row = stores[f"{store}_{mode}"]
            assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    kinds = {(row["data"], row["index"]): row for row in figures["vectors"]}
    assert kinds[("clustered", "flat")]["recall@10"] == 1.0
    assert kinds[("clustered", "hnsw")]["recall@10"] >= 0.9
    assert kinds[("clustered", "ivf")]["recall@10"] >= 0.9
    # Real queries (the query texts embedded) are measured on the clustered data only.
    assert kinds[("clustered", "flat")]["recall@10_real_queries"] == 1.0
    assert 0 < kinds[("clustered", "ivf")]["recall@10_real_queries"] <= 1.0
    assert kinds[("uniform", "ivf")]["recall@10_real_queries"] is None
    assert any(line.startswith("hybrid") for line in format_bench(figures))


def test_bench_stores_compares_faiss_with_milvus_lite() -> None:
    from semsearch.search.bench_stores import format_stores, run_stores_bench

    lines: list[str] = []
    figures = run_stores_bench(SEEDS, Settings(milvus_index="flat"), 10, lines.append)
    stores = figures["stores"]
    assert stores["milvus_uri"] == "Milvus Lite (local folder)" and stores["passages"] == 18
    # Exact search on both; the sentence lift from 8-bit codes in FAISS and float16 rows in
    # Milvus (products ~5e-4 apart) may swap a near tie.
    assert stores["dense_top10_overlap"] >= 0.95
    assert stores["hybrid_top10_overlap"] >= 0.9 and stores["lexical_top10_overlap"] >= 0.8
    assert stores["milvus_legs_hybrid"] == ["dense", "lexical"]
    for key in ("faiss_hybrid", "milvus_hybrid", "milvus_lexical", "milvus_search_call"):
        assert 0 < stores[key]["p50_ms"] <= stores[key]["p95_ms"] <= stores[key]["p99_ms"]
    report = format_stores(stores)
    assert "top-10 overlap with faiss: hybrid" in report[0]
    assert any(line.startswith("milvus  search_call") for line in report)


def test_timed_together_runs_every_run_on_a_query_before_the_next_query() -> None:
    from semsearch.search.bench_tools import timed_together

    calls: list[tuple[str, str]] = []
    runs = {name: (lambda q, name=name: calls.append((name, q))) for name in ("a", "b")}
    figures = timed_together(runs, ["x", "y"], passes=2)
    assert calls == [("a", "x"), ("b", "x"), ("a", "y"), ("b", "y")] * 2
    assert set(figures) == {"a", "b"}
    assert all(0 <= f["p50_ms"] <= f["p95_ms"] <= f["p99_ms"] for f in figures.values())
