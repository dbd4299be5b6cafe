"""Read articles from disk: title on the first line, blocks separated by blank lines."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from semsearch.index.errors import CorpusError

__all__ = [
    "MAX_ARTICLE_BYTES",
    "Article",
    "Block",
    "article_from_text",
    "find_article_files",
    "parse_article",
    "read_article",
    "read_corpus",
]

# Blocks are separated by one or more blank (or whitespace-only) lines.
_BLOCK_SEPARATOR = re.compile(r"\n[ \t\r\f\v]*\n")
# How much of a file is inspected for NUL bytes to call it binary.
_BINARY_SNIFF_BYTES = 8192
# A bigger file is no article (a log, a dump): it is skipped with a warning, never read whole.
MAX_ARTICLE_BYTES = 10 * 1024 * 1024
# Tried in order; latin-1 decodes any byte string, so reading never fails.
_FALLBACK_ENCODINGS = ("cp1252", "latin-1")
# Why a symlink out of the articles folder is skipped, and how to index it anyway.
_LINK_OUT = "a symlink to a {kind} outside the seeds folder (use --follow-symlinks to index it)"

Warn = Callable[[str], None]


@dataclass(frozen=True)
class Block:
    """A run of text between blank lines, with its character span in the source.

    `role` is what a reader that knows the document's structure says the block is: "heading"
    (an <h2>, a Markdown heading: context for the paragraphs under it) or "paragraph"; "" leaves
    it to the chunker's rules for plain text (short lines without punctuation are headings).
    """

    text: str
    start: int
    end: int
    role: Literal["", "heading", "paragraph"] = ""


@dataclass(frozen=True)
class Article:
    """One article: its id (path relative to the corpus root), title, body blocks and metadata.

    Metadata: `section` (given by the source, else the article's top folder, "" at the root),
    `published` (an ISO date, YYYY-MM-DD, or None), `author` and `url` ("" when unknown).
    """

    id: str
    path: Path
    title: str
    blocks: tuple[Block, ...]
    encoding: str = "utf-8"
    section: str = ""
    published: str | None = None
    author: str = ""
    url: str = ""


def parse_article(article_id: str, text: str, path: Path | None = None) -> Article | None:
    """Split decoded text into a title and body blocks.

    Args:
        article_id: the id to give the article.
        text: the whole file, decoded.
        path: where it came from, kept for provenance.

    Returns:
        The article, or None when the text holds nothing but whitespace.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = list(_split_blocks(text))
    if not blocks:
        return None
    first = blocks[0]
    title_line, _, rest = first.text.partition("\n")
    title = " ".join(title_line.split())
    body: list[Block] = []
    if rest.strip():
        offset = first.start + len(title_line) + 1
        body.extend(_split_blocks(rest, offset))
    body.extend(blocks[1:])
    return Article(id=article_id, path=path or Path(article_id), title=title, blocks=tuple(body))


def article_from_text(article_id: str, title: str, text: str) -> Article:
    """An article from a title and a body given apart (a BEIR document, say).

    Spans are offsets into `text`. An empty title leaves the body's first line as body text.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    title = " ".join(title.split())
    return Article(
        id=article_id, path=Path(article_id), title=title, blocks=tuple(_split_blocks(text))
    )


def _split_blocks(text: str, offset: int = 0) -> Iterator[Block]:
    position = 0
    for match in [*_BLOCK_SEPARATOR.finditer(text), None]:
        end = match.start() if match else len(text)
        raw = text[position:end]
        stripped = raw.strip()
        if stripped:
            start = position + raw.index(stripped[0])
            yield Block(stripped, offset + start, offset + start + len(stripped))
        if match:
            position = match.end()


def _decode(data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    for encoding in _FALLBACK_ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def read_article(
    path: Path, root: Path, warn: Warn, *, follow_symlinks: bool = False
) -> Article | None:
    """Read one article file; problems are reported through `warn`, never raised.

    Args:
        path: the file to read.
        root: the corpus root; the article id is the path relative to it.
        warn: called with one line for each file that is skipped or read with a fallback.
        follow_symlinks: also read a symlink to a file outside `root` (skipped otherwise).

    Returns:
        The article, or None when the file is empty, binary, unreadable, a symlink out of
        `root` or named in bytes that are not UTF-8.
    """
    article_id = path.relative_to(root).as_posix()
    if not _is_utf8(article_id):
        warn(f"{_printable(article_id)}: skipped, the file name is not valid UTF-8: rename it")
        return None
    try:
        info = path.stat()  # follows a symlink; a link loop or a dangling link fails here
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            warn(f"{article_id}: skipped, not a regular file")
            return None
        if not follow_symlinks and path.is_symlink() and not _inside(path, root):
            warn(f"{article_id}: skipped, {_LINK_OUT.format(kind='file')}")
            return None
        if info.st_size > MAX_ARTICLE_BYTES:
            warn(_too_big(article_id, info.st_size))
            return None
        with open(path, "rb") as handle:
            data = handle.read(MAX_ARTICLE_BYTES + 1)
    except OSError as error:
        warn(f"{article_id}: skipped, cannot be read ({error.strerror or error})")
        return None
    if len(data) > MAX_ARTICLE_BYTES:  # it grew after the size check
        warn(_too_big(article_id, len(data)))
        return None
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        warn(f"{article_id}: skipped, looks like a binary file (NUL bytes)")
        return None
    text, encoding = _decode(data)
    if encoding != "utf-8":
        warn(f"{article_id}: not valid UTF-8, read as {encoding}")
    article = parse_article(article_id, text, path)
    if article is None:
        warn(f"{article_id}: skipped, the file is empty")
        return None
    if encoding != "utf-8":
        article = Article(article.id, article.path, article.title, article.blocks, encoding)
    return article


def _too_big(article_id: str, size: int) -> str:
    return (
        f"{article_id}: skipped, {size / 2**20:.1f} MiB is over the "
        f"{MAX_ARTICLE_BYTES // 2**20} MiB limit for one article: split it into several files"
    )


def find_article_files(
    root: Path, warn: Warn | None = None, *, follow_symlinks: bool = False
) -> list[Path]:
    """Every `.txt` file under `root`, recursively, in a stable order.

    A symlinked folder is followed only with `follow_symlinks`, and only when it leads out of
    `root` to a folder not walked yet, so a link loop cannot trap the walk. Without it, a link
    to a folder outside `root` is reported through `warn`; one to a folder inside is passed
    over in silence (its files are found where they are). A folder named in bytes that are not
    UTF-8 is skipped with a warning.

    Raises:
        CorpusError: `root` is missing or not a folder.
    """
    if not root.exists():
        raise CorpusError(f"articles folder {root} does not exist: pass --seeds DIR")
    if not root.is_dir():
        raise CorpusError(
            f"{root} is not a folder: pass --seeds DIR with a folder of .txt articles"
        )
    walked = {_identity(root)}
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root, followlinks=follow_symlinks):
        subfolders[:] = [
            name
            for name in sorted(subfolders)
            if _walk_into(Path(folder, name), root, walked, warn or _ignore, follow_symlinks)
        ]
        found.extend(Path(folder, name) for name in sorted(files) if name.endswith(".txt"))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _walk_into(
    folder: Path, root: Path, walked: set[tuple[int, int]], warn: Warn, follow_symlinks: bool
) -> bool:
    """Whether the walk goes into `folder` (a subfolder of `root`); says why not when it matters.

    `walked` holds the (device, inode) of every folder walked so far, and gets this one's.
    """
    name = folder.relative_to(root).as_posix()
    if not _is_utf8(name):
        warn(f"{_printable(name)}: skipped, the folder name is not valid UTF-8: rename it")
        return False
    if folder.is_symlink():
        if _inside(folder, root):
            return False  # its files are found where the link points
        if not follow_symlinks:
            warn(f"{name}: skipped, {_LINK_OUT.format(kind='folder')}")
            return False
    try:
        identity = _identity(folder)
    except OSError:
        return False  # gone, or a dangling link: nothing to walk
    if identity in walked:
        return False  # reached again through a link: walking it twice could loop forever
    walked.add(identity)
    return True


def _identity(folder: Path) -> tuple[int, int]:
    info = folder.stat()
    return info.st_dev, info.st_ino


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, its symlinks resolved, lies within `root` (its symlinks resolved too)."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def _is_utf8(name: str) -> bool:
    """Whether `name` came from bytes that are valid UTF-8 (no surrogate escapes in it)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(name: str) -> str:
    """`name` with each byte that is not valid UTF-8 written as an escape, `caf\\xe9.txt`.

    The result encodes to UTF-8 (no lone surrogates), so it can be printed, logged and stored.
    """
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no file name decodes to
        raw = name.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def _ignore(message: str) -> None:
    """A `Warn` that drops the message."""


def read_corpus(root: Path, warn: Warn, *, follow_symlinks: bool = False) -> Iterator[Article]:
    """Yield each readable article under `root`; skipped files are reported through `warn`.

    Symlinks to files or folders outside `root` are skipped with a warning unless
    `follow_symlinks`.
    """
    for path in find_article_files(root, warn, follow_symlinks=follow_symlinks):
        article = read_article(path, root, warn, follow_symlinks=follow_symlinks)
        if article is not None:
            yield article
