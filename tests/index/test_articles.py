"""Reading article files: titles, blocks, encodings, skipped files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semsearch.index.articles import (
    CorpusTally,
    find_article_files,
    parse_article,
    read_article,
    read_corpus,
)
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


def test_corpus_is_recursive_sorted_and_only_of_the_formats_asked(tmp_path: Path) -> None:
    for name in ["b/2.txt", "a.txt", "b/1.txt", "notes.md", "c/deep/3.txt", "scan.pdf"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"Title {name}\n\nBody text here.\n")
    tally = CorpusTally()
    ids = [a.id for a in read_corpus(tmp_path, lambda _: None, formats=("txt",), tally=tally)]
    assert ids == ["a.txt", "b/1.txt", "b/2.txt", "c/deep/3.txt"]
    assert (tally.files, tally.ignored) == ({"txt": 4}, {".md": 1, ".pdf": 1})
    assert tally.ignored_files == [
        "notes.md (md, not in --formats txt)",
        "scan.pdf (not an article format)",
    ]
    every = [a.id for a in read_corpus(tmp_path, lambda _: None)]  # all formats by default
    assert every == ["a.txt", "b/1.txt", "b/2.txt", "c/deep/3.txt", "notes.md"]


def test_hidden_files_and_folders_are_passed_over(tmp_path: Path) -> None:
    """A notes folder kept in git, or opened in an editor, holds .git/, .obsidian/ and
    .DS_Store: none of it is an article, and none of it is counted as ignored."""
    for name in [".git/config", ".git/notes.txt", ".obsidian/app.txt", ".DS_Store", "a.txt"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("Title\n\nBody text here.\n")
    tally = CorpusTally()
    ids = [a.id for a in read_corpus(tmp_path, lambda _: None, tally=tally)]
    assert ids == ["a.txt"]
    assert (tally.files, tally.ignored) == ({"txt": 1}, {})


def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("T\n\nBody.\n")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    assert [p.name for p in find_article_files(tmp_path)] == ["a.txt"]


def test_missing_folder_is_a_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        find_article_files(tmp_path / "nope")


def corpus_ids(root: Path, follow_symlinks: bool = False) -> tuple[list[str], list[str]]:
    """The ids read from `root` and the warnings, with or without following symlinks out."""
    warnings: list[str] = []
    options = {"follow_symlinks": True} if follow_symlinks else {}  # the default: not followed
    ids = [a.id for a in read_corpus(root, warnings.append, **options)]
    return ids, warnings


def test_a_name_that_is_not_utf8_is_skipped_with_an_escaped_warning(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    (seeds / "sub").mkdir(parents=True)
    (seeds / "ok.txt").write_text("Fine\n\nBody text.\n")
    root = os.fsencode(seeds)
    for name in (b"caf\xe9.txt", b"sub/na\xefve.txt", b"d\xe9j\xe0/vu.txt"):
        os.makedirs(os.path.dirname(root + b"/" + name), exist_ok=True)
        with open(root + b"/" + name, "wb") as handle:
            handle.write(b"Title\n\nBody text.\n")
    ids, warnings = corpus_ids(seeds)
    assert ids == ["ok.txt"]
    assert warnings == [
        "d\\xe9j\\xe0: skipped, the folder name is not valid UTF-8: rename it",
        "caf\\xe9.txt: skipped, the file name is not valid UTF-8: rename it",
        "sub/na\\xefve.txt: skipped, the file name is not valid UTF-8: rename it",
    ]
    for warning in warnings:
        warning.encode("utf-8")  # no lone surrogate: it prints, logs and goes into JSON


def outside_and_inside_links(tmp_path: Path) -> Path:
    """seeds/ with a link to a file and one to a folder outside it, and one to a file inside."""
    seeds, elsewhere = tmp_path / "seeds", tmp_path / "elsewhere"
    (elsewhere / "deep").mkdir(parents=True)
    (elsewhere / "secret.txt").write_text("Secret\n\nOutside the seeds.\n")
    (elsewhere / "deep" / "more.txt").write_text("More\n\nAlso outside.\n")
    (elsewhere / "deep" / "again").symlink_to(elsewhere, target_is_directory=True)  # a loop
    (elsewhere / "deep" / "home").symlink_to(seeds, target_is_directory=True)  # back in
    seeds.mkdir()
    (seeds / "real.txt").write_text("Real\n\nInside the seeds.\n")
    (seeds / "file.txt").symlink_to(elsewhere / "secret.txt")
    (seeds / "folder").symlink_to(elsewhere, target_is_directory=True)
    (seeds / "alias.txt").symlink_to("real.txt")  # inside: indexed as before
    (seeds / "self").symlink_to(seeds, target_is_directory=True)  # inside: never walked
    return seeds


def test_symlinks_out_of_the_folder_are_skipped_with_a_warning(tmp_path: Path) -> None:
    ids, warnings = corpus_ids(outside_and_inside_links(tmp_path))
    assert ids == ["alias.txt", "real.txt"]
    assert warnings == [
        "folder: skipped, a symlink to a folder outside the seeds folder "
        "(use --follow-symlinks to index it)",
        "file.txt: skipped, a symlink to a file outside the seeds folder "
        "(use --follow-symlinks to index it)",
    ]


def test_follow_symlinks_indexes_them_walking_each_folder_once(tmp_path: Path) -> None:
    ids, warnings = corpus_ids(outside_and_inside_links(tmp_path), follow_symlinks=True)
    assert ids == ["alias.txt", "file.txt", "folder/deep/more.txt", "folder/secret.txt", "real.txt"]
    assert warnings == []


def test_a_seeds_folder_reached_through_a_symlink_is_inside_itself(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.txt").write_text("A\n\nBody.\n")
    (tmp_path / "real" / "b.txt").symlink_to(tmp_path / "real" / "a.txt")  # absolute, inside
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert corpus_ids(tmp_path / "link") == (["a.txt", "b.txt"], [])
