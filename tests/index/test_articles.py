"""Reading article files: titles, blocks, encodings, skipped files."""

from __future__ import annotations

from pathlib import Path

import pytest

from semsearch.index.articles import find_article_files, parse_article, read_article, read_corpus
from semsearch.index.errors import CorpusError
from tests.conftest import SEED_FILE, SEEDS


def read(path: Path, root: Path) -> tuple[object, list[str]]:
    warnings: list[str] = []
    return read_article(path, root, warnings.append), warnings


def test_seed_title_and_spans() -> None:
    article, warnings = read(SEED_FILE, SEEDS)
    source = SEED_FILE.read_text(encoding="utf-8")
    assert warnings == []
    assert article.id == "000_9d59a1cdc1672ff3.txt"
    assert article.title.startswith("US-brokered Russia-Ukraine talks close with no breakthrough")
    assert all(source[b.start : b.end] == b.text for b in article.blocks)


def test_title_is_first_non_empty_line_and_rest_of_block_is_kept() -> None:
    article = parse_article("a.txt", "\n\n  My title\nFirst line of body.\n\nSecond block.\n")
    assert article.title == "My title"
    assert [b.text for b in article.blocks] == ["First line of body.", "Second block."]


def test_windows_newlines_and_whitespace_only_separators() -> None:
    article = parse_article("a.txt", "Title\r\n\r\nOne.\r\n   \r\nTwo.\r\n")
    assert [b.text for b in article.blocks] == ["One.", "Two."]


def test_non_utf8_file_is_read_with_fallback_and_warning(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("Price\n\nA fee of \xa315m was paid.".encode("latin-1"))
    article, warnings = read(tmp_path / "latin.txt", tmp_path)
    assert article.blocks[0].text == "A fee of £15m was paid."
    assert warnings == ["latin.txt: not valid UTF-8, read as cp1252"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"  \n\n \t\n", "empty"), (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary")],
)
def test_empty_and_binary_files_are_skipped_with_warning(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    (tmp_path / "bad.txt").write_bytes(content)
    article, warnings = read(tmp_path / "bad.txt", tmp_path)
    assert article is None
    assert (
        len(warnings) == 1 and warnings[0].startswith("bad.txt: skipped") and reason in warnings[0]
    )


def test_corpus_is_recursive_sorted_and_only_txt(tmp_path: Path) -> None:
    for name in ["b/2.txt", "a.txt", "b/1.txt", "notes.md", "c/deep/3.txt"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"Title {name}\n\nBody text here.\n")
    ids = [a.id for a in read_corpus(tmp_path, lambda _: None)]
    assert ids == ["a.txt", "b/1.txt", "b/2.txt", "c/deep/3.txt"]


def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("T\n\nBody.\n")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    assert [p.name for p in find_article_files(tmp_path)] == ["a.txt"]


def test_missing_folder_is_a_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        find_article_files(tmp_path / "nope")
