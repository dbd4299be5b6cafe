"""`semsearch bench --scale` end to end on a tiny archive: every figure present and sane."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from semsearch.search.bench_scale import format_scale_bench, run_scale_bench
from semsearch.search.synthetic_corpus import read_sources, write_corpus
from semsearch.search.synthetic_embedder import SyntheticEmbedder
from tests.conftest import ROOT, SEED_FILE


def _small_corpus(folder: Path) -> Path:
    """Two sections: the seed article, and the fixture articles (Markdown, HTML, JSONL)."""
    (folder / "news").mkdir(parents=True)
    shutil.copy(SEED_FILE, folder / "news" / SEED_FILE.name)
    shutil.copytree(ROOT / "tests" / "fixtures" / "articles", folder / "life")
    return folder


def test_synthetic_corpus_is_deterministic_and_sized(tmp_path: Path) -> None:
    sources, sizes = read_sources(_small_corpus(tmp_path / "bbc"))
    assert len({source.section for source in sources}) >= 2  # news, and the fixtures' own
    first = write_corpus(sources, sizes, tmp_path / "one", 95)
    second = write_corpus(sources, sizes, tmp_path / "two", 95)
    assert (first.paragraphs, first.articles) == (95, second.articles)
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.txt"))
    assert one == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.txt"))
    text = (tmp_path / "one" / one[0]).read_text(encoding="utf-8")
    title, _, body = text.partition("\n\n")
    assert title in {source.title for source in sources} and body.count("\n\n") >= 5


def test_synthetic_vectors_cluster_and_keep_sentences_near_their_passage() -> None:
    first = "The minister said the talks would resume next week in Geneva."
    second = "Officials from both sides were expected to attend the meeting."
    elsewhere = "The striker scored twice as the home side won the cup final."
    embedder = SyntheticEmbedder({first: 3, second: 3, elsewhere: 200})
    passage, one, two, other = embedder.embed_batch(
        [f"Talks\n{first} {second}", first, second, elsewhere]
    )
    assert passage.shape == (384,) and abs(float(np.linalg.norm(passage)) - 1) < 1e-5
    assert float(passage @ one) > 0.6 and float(passage @ two) > 0.6
    assert 0.15 < float(one @ two) < 0.5  # one topic, their own noise
    assert abs(float(passage @ other)) < 0.2
    again = SyntheticEmbedder({first: 3}).embed_query(first)
    assert np.array_equal(again, one)


def test_scale_bench_reports_every_figure(tmp_path: Path) -> None:
    lines: list[str] = []
    figures = run_scale_bench(_small_corpus(tmp_path / "bbc"), 300, 8, lines.append)
    build, disk = figures["build"], figures["disk"]
    assert figures["corpus"]["paragraphs"] == 300
    assert 250 <= build["passages"] <= 330 and build["sentences"] >= build["passages"]
    assert build["vector_index"] == "flat"  # exact search at this size
    assert 0 < build["seconds"] <= build["wall_seconds"]
    assert 50 < build["peak_rss_mb"] < 8192
    assert disk["generation_mb"] > 0 and {"store.sqlite", "manifest.json"} <= set(disk["files_mb"])
    for mode in ("hybrid", "dense", "lexical"):
        row = figures["in_process"][mode]
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        for clients in (1, 8):
            row = figures["http"][f"{mode}_{clients}"]
            assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] and row["qps"] > 0
    assert figures["in_process"]["hybrid_again"]["p50_ms"] > 0
    assert 50 < figures["http"]["server_rss_mb"] < 8192
    report = format_scale_bench(figures)
    assert any("synthetic" in line for line in report)
    assert any(line.startswith("hybrid") and "HTTP x8" in line for line in report)
