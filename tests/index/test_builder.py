"""Building: the embedding cache, warnings and skips, and failures that leave the live index."""

from __future__ import annotations

from pathlib import Path

import pytest

import semsearch.index.build_inputs
import semsearch.index.builder
from semsearch.index.builder import build_index
from semsearch.index.errors import CorpusError
from semsearch.index.faiss_generation import FaissGeneration
from semsearch.index.stores import VectorIndexSpec
from tests.conftest import SEEDS, FakeEmbedder


def test_second_build_embeds_nothing(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    first = build_index(SEEDS, tmp_path, fake_embedder)
    second = build_index(SEEDS, tmp_path, fake_embedder)
    assert (first.embedded, first.reused, first.sentences) == (18, 0, 20)
    assert (second.embedded, second.reused, second.texts_embedded) == (0, 18, 0)
    # passages and their sentences, each embedded once
    assert sum(fake_embedder.calls) == first.texts_embedded == 18 + 20


def test_edited_paragraph_is_the_only_one_embedded(copy_seeds: Path, tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    build_index(copy_seeds, tmp_path / "index", embedder)
    seed = next(copy_seeds.glob("*.txt"))
    seed.write_text(seed.read_text().replace("wounded 27 people", "wounded 28 people"))
    report = build_index(copy_seeds, tmp_path / "index", embedder)
    assert (report.embedded, report.reused) == (1, 17)
    assert report.texts_embedded == 2  # the paragraph and its one changed sentence


def test_unchanged_corpus_is_up_to_date(copy_seeds: Path, tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    first = build_index(copy_seeds, tmp_path, embedder, skip_unchanged=True)
    again = build_index(copy_seeds, tmp_path, embedder, skip_unchanged=True)
    assert (first.up_to_date, again.up_to_date) == (False, True)
    assert (again.generation, again.passages, again.embedded) == ("gen-1", 18, 0)
    assert sorted(p.name for p in tmp_path.glob("gen-*")) == ["gen-1"]
    # another model, or other vector index settings, are not the same inputs
    other = build_index(copy_seeds, tmp_path, FakeEmbedder(model_id="two"), skip_unchanged=True)
    assert not other.up_to_date and other.generation == "gen-2"
    flat = build_index(
        copy_seeds, tmp_path, embedder, skip_unchanged=True, vector_index=VectorIndexSpec("flat")
    )
    assert not flat.up_to_date
    seed = next(copy_seeds.glob("*.txt"))
    seed.write_text(seed.read_text().replace("wounded 27 people", "wounded 28 people"))
    edited = build_index(copy_seeds, tmp_path, embedder, skip_unchanged=True)
    assert not edited.up_to_date and edited.embedded == 1


def test_damaged_live_generation_is_rebuilt_not_skipped(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    build_index(SEEDS, tmp_path, embedder, skip_unchanged=True)
    with (tmp_path / "gen-1" / "vectors.npy").open("r+b") as handle:
        handle.seek(200)
        byte = handle.read(1)[0]
        handle.seek(200)
        handle.write(bytes([byte ^ 0xFF]))
    report = build_index(SEEDS, tmp_path, embedder, skip_unchanged=True)
    assert not report.up_to_date and report.generation == "gen-2"
    FaissGeneration.open(tmp_path).close()


def test_unchanged_articles_are_not_chunked_again(
    copy_seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    (copy_seeds / "second.txt").write_text("Second article\n\nIt has one paragraph of words.\n")
    embedder = FakeEmbedder()
    first = build_index(copy_seeds, tmp_path, embedder)
    chunked: list[str] = []
    real = semsearch.index.build_inputs.chunk_articles

    def counting(articles, **kwargs):
        articles = list(articles)
        chunked.extend(article.id for article in articles)
        return real(articles, **kwargs)

    monkeypatch.setattr(semsearch.index.build_inputs, "chunk_articles", counting)
    assert build_index(copy_seeds, tmp_path, embedder).passages == first.passages
    assert chunked == []
    (copy_seeds / "second.txt").write_text("Second article\n\nIt has other words now.\n")
    report = build_index(copy_seeds, tmp_path, embedder)
    assert chunked == ["second.txt"] and report.passages == first.passages
    store = FaissGeneration.open(tmp_path)
    assert store.article("second.txt").passages[0].text == "It has other words now."
    assert len(store.article(next(copy_seeds.glob("0*.txt")).name).passages) == 18
    store.close()


def test_cache_is_per_model(tmp_path: Path) -> None:
    build_index(SEEDS, tmp_path, FakeEmbedder(model_id="one"))
    report = build_index(SEEDS, tmp_path, FakeEmbedder(model_id="two"))
    assert report.embedded == 18


def test_a_cache_in_the_earlier_layout_is_moved_and_still_saves_embedding(
    tmp_path: Path,
) -> None:
    """Vectors cached in the WITHOUT ROWID `embeddings` table of earlier versions are kept."""
    import sqlite3

    from semsearch.index.embedding_cache import CACHE, EmbeddingCache

    embedder = FakeEmbedder()
    build_index(SEEDS, tmp_path, embedder)
    cache = sqlite3.connect(tmp_path / CACHE)
    with cache:
        cache.execute(
            "CREATE TABLE embeddings (model TEXT NOT NULL, hash TEXT NOT NULL, "
            "vector BLOB NOT NULL, PRIMARY KEY (model, hash)) WITHOUT ROWID"
        )
        cache.execute("INSERT INTO embeddings SELECT model, hash, vector FROM vectors")
        kept = cache.execute("SELECT count(*) FROM vectors").fetchone()[0]
        cache.execute("DROP TABLE vectors")
    cache.close()
    EmbeddingCache.beside(tmp_path).close()
    cache = sqlite3.connect(tmp_path / CACHE)
    tables = {row[0] for row in cache.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    moved = cache.execute("SELECT count(*) FROM vectors").fetchone()[0]
    cache.close()
    assert "embeddings" not in tables and moved == kept == 18 + 20  # passages and sentences
    report = build_index(SEEDS, tmp_path, embedder)
    assert report.passages == 18 and report.embedded == 0


def test_bad_files_are_reported_and_good_ones_indexed(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Good title\n\nA perfectly good paragraph of text.\n")
    (corpus / "empty.txt").write_text("")
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02")
    (corpus / "latin.txt").write_bytes(b"Caf\xe9 news\n\nThe caf\xe9 opened its doors today.\n")
    warnings: list[str] = []
    report = build_index(corpus, tmp_path / "index", FakeEmbedder(), warn=warnings.append)
    assert (report.articles, report.passages) == (2, 2)
    assert sorted(report.skipped) == [
        "binary.txt: skipped, looks like a binary file (NUL bytes)",
        "empty.txt: skipped, the file is empty",
    ]
    assert "latin.txt: not valid UTF-8, read as cp1252" in warnings
    store = FaissGeneration.open(tmp_path / "index")
    assert store.article("latin.txt").title == "Café news"
    store.close()


def test_folder_without_articles_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"no readable \.txt article"):
        build_index(tmp_path, tmp_path / "index", FakeEmbedder())


class ExplodingEmbedder(FakeEmbedder):
    def embed_batch(self, texts):
        raise RuntimeError("killed mid-embedding")


def test_failed_build_leaves_live_generation(fake_index: Path, copy_seeds: Path) -> None:
    seed = next(copy_seeds.glob("*.txt"))
    seed.write_text(seed.read_text() + "\n\nA brand new paragraph that needs embedding now.\n")
    with pytest.raises(RuntimeError):
        build_index(copy_seeds, fake_index, ExplodingEmbedder())
    store = FaissGeneration.open(fake_index)
    assert store.generation == "gen-1"
    assert store.manifest["counts"]["passages"] == 18
    store.close()


def test_interrupted_write_is_cleaned_by_next_build(fake_index: Path) -> None:
    leftover = fake_index / ".tmp-gen-2"
    leftover.mkdir()
    (leftover / "store.sqlite").write_bytes(b"half written")
    report = build_index(SEEDS, fake_index, FakeEmbedder())
    assert report.generation == "gen-2"
    assert not leftover.exists()


def test_texts_are_embedded_longest_first_across_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setattr(semsearch.index.build_inputs, "EMBED_CALL_SIZE", 7)
    lengths: list[int] = []

    class Recording(FakeEmbedder):
        def embed_batch(self, texts):
            lengths.extend(len(text) for text in texts)
            return super().embed_batch(texts)

    embedder = Recording()
    report = build_index(SEEDS, tmp_path, embedder)
    # 18 passages and 20 sentences, in calls of 7: five full calls and the last 3.
    assert embedder.calls == [7, 7, 7, 7, 7, 3] and report.texts_embedded == 38
    assert lengths == sorted(lengths, reverse=True)
