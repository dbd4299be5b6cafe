"""Finding and opening article files safely, whatever their format.

The walk skips folders named in bytes that are not UTF-8 and symlinks out of the articles folder
(unless followed), and never loops; opening a file skips what is not a regular file (a FIFO would
block), a symlink out of the folder, a file over `MAX_ARTICLE_BYTES` and a binary file (NUL
bytes). Every problem is one line through `warn`, never an exception.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from semsearch.index.errors import CorpusError
from semsearch.index.readers.model import Warn

__all__ = [
    "BINARY_SNIFF_BYTES",
    "MAX_ARTICLE_BYTES",
    "check_file",
    "decode",
    "ignore",
    "is_utf8",
    "looks_binary",
    "printable",
    "read_bytes",
    "walk_files",
]

# How much of a file is inspected for NUL bytes to call it binary.
BINARY_SNIFF_BYTES = 8192
# A bigger file is no article (a log, a dump): it is skipped with a warning, never read whole.
# (A JSONL file holds many articles: there the limit is on each line.)
MAX_ARTICLE_BYTES = 10 * 1024 * 1024
# Tried in order; latin-1 decodes any byte string, so reading never fails.
_FALLBACK_ENCODINGS = ("cp1252", "latin-1")
# Why a symlink out of the articles folder is skipped, and how to index it anyway.
_LINK_OUT = "a symlink to a {kind} outside the seeds folder (use --follow-symlinks to index it)"


def ignore(message: str) -> None:
    """A `Warn` that drops the message."""


def walk_files(
    root: Path, warn: Warn | None = None, *, follow_symlinks: bool = False
) -> list[Path]:
    """Every file under `root`, recursively, in a stable order (by path relative to `root`).

    A symlinked folder is followed only with `follow_symlinks`, and only when it leads out of
    `root` to a folder not walked yet, so a link loop cannot trap the walk. Without it, a link
    to a folder outside `root` is reported through `warn`; one to a folder inside is passed
    over in silence (its files are found where they are). A folder named in bytes that are not
    UTF-8 is skipped with a warning. Hidden files and folders (a name starting with ".": `.git`,
    `.obsidian`, `.DS_Store`) are passed over in silence, as `git` and editors keep them.

    Raises:
        CorpusError: `root` is missing or not a folder.
    """
    if not root.exists():
        raise CorpusError(f"articles folder {root} does not exist: pass --seeds DIR")
    if not root.is_dir():
        raise CorpusError(f"{root} is not a folder: pass --seeds DIR with a folder of articles")
    walked = {_identity(root)}
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root, followlinks=follow_symlinks):
        subfolders[:] = [
            name
            for name in sorted(subfolders)
            if not name.startswith(".")
            and _walk_into(Path(folder, name), root, walked, warn or ignore, follow_symlinks)
        ]
        found.extend(Path(folder, name) for name in sorted(files) if not name.startswith("."))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _walk_into(
    folder: Path, root: Path, walked: set[tuple[int, int]], warn: Warn, follow_symlinks: bool
) -> bool:
    """Whether the walk goes into `folder` (a subfolder of `root`); says why not when it matters.

    `walked` holds the (device, inode) of every folder walked so far, and gets this one's.
    """
    name = folder.relative_to(root).as_posix()
    if not is_utf8(name):
        warn(f"{printable(name)}: skipped, the folder name is not valid UTF-8: rename it")
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


def check_file(
    path: Path, root: Path, article_id: str, warn: Warn, *, follow_symlinks: bool = False
) -> bool:
    """Whether `path` may be opened as an article: a regular file (not a FIFO or a device), not
    a symlink out of `root` unless `follow_symlinks`; says why not through `warn`."""
    try:
        info = path.stat()  # follows a symlink; a link loop or a dangling link fails here
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            warn(f"{article_id}: skipped, not a regular file")
            return False
        if not follow_symlinks and path.is_symlink() and not _inside(path, root):
            warn(f"{article_id}: skipped, {_LINK_OUT.format(kind='file')}")
            return False
    except OSError as error:
        warn(f"{article_id}: skipped, cannot be read ({error.strerror or error})")
        return False
    return True


def read_bytes(path: Path, article_id: str, warn: Warn) -> bytes | None:
    """The whole file, or None (with a warning) when it is over `MAX_ARTICLE_BYTES`, binary or
    unreadable."""
    try:
        size = path.stat().st_size
        if size > MAX_ARTICLE_BYTES:
            warn(_too_big(article_id, size))
            return None
        with open(path, "rb") as handle:
            data = handle.read(MAX_ARTICLE_BYTES + 1)
    except OSError as error:
        warn(f"{article_id}: skipped, cannot be read ({error.strerror or error})")
        return None
    if len(data) > MAX_ARTICLE_BYTES:  # it grew after the size check
        warn(_too_big(article_id, len(data)))
        return None
    if looks_binary(data):
        warn(f"{article_id}: skipped, looks like a binary file (NUL bytes)")
        return None
    return data


def looks_binary(data: bytes) -> bool:
    """Whether the start of a file holds NUL bytes (no text format has them)."""
    return b"\x00" in data[:BINARY_SNIFF_BYTES]


def _too_big(article_id: str, size: int) -> str:
    return (
        f"{article_id}: skipped, {size / 2**20:.1f} MiB is over the "
        f"{MAX_ARTICLE_BYTES // 2**20} MiB limit for one article: split it into several files"
    )


def decode(data: bytes, article_id: str, warn: Warn) -> tuple[str, str]:
    """The text and the encoding it was read with: UTF-8 (a BOM dropped), else cp1252 or
    latin-1 with a warning."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    for encoding in _FALLBACK_ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        warn(f"{article_id}: not valid UTF-8, read as {encoding}")
        return text, encoding
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def _identity(folder: Path) -> tuple[int, int]:
    info = folder.stat()
    return info.st_dev, info.st_ino


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, its symlinks resolved, lies within `root` (its symlinks resolved too)."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def is_utf8(name: str) -> bool:
    """Whether `name` came from bytes that are valid UTF-8 (no surrogate escapes in it)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(name: str) -> str:
    """`name` with each byte that is not valid UTF-8 written as an escape, `caf\\xe9.txt`.

    The result encodes to UTF-8 (no lone surrogates), so it can be printed, logged and stored.
    """
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no file name decodes to
        raw = name.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")
