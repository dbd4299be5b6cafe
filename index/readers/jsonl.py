"""JSON Lines (.jsonl): one article a line, such as an export from a CMS.

Each line is an object with `text` (required: paragraphs separated by blank lines) and, optional,
`id`, `title`, `url`, `published`, `author`, `section`, `tags` (a list of strings, or one string
with commas between them). The article id is the file's id, `#` and
the line's `id` (`export.jsonl#a17`), else its line number (`export.jsonl#3`). A bad line (not
JSON, not an object, no text) and a line whose id an earlier line has are skipped with a warning
naming `file:line`; the rest of the file is read. Blank lines are passed over.

The file is read a line at a time: the `MAX_ARTICLE_BYTES` limit applies to each line, not to
the file. Block spans are offsets into the line's `text` (its line ends made "\\n").
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import IO, Any

from semsearch.index.readers.files import BINARY_SNIFF_BYTES, MAX_ARTICLE_BYTES, looks_binary
from semsearch.index.readers.model import (
    Article,
    Source,
    Warn,
    iso_date,
    metadata_text,
    tag_list,
)
from semsearch.index.readers.text import article_from_text

__all__ = ["read_jsonl"]

_OPTIONAL = ("title", "url", "published", "author", "section")


class _BadLine(ValueError):
    """Why a line is skipped (the message follows "skipped, ")."""


def read_jsonl(source: Source, warn: Warn) -> list[Article]:
    """The articles of a JSONL file, one a line; bad lines are skipped with a warning."""
    try:
        with open(source.path, "rb") as handle:
            if looks_binary(handle.read(BINARY_SNIFF_BYTES)):
                warn(f"{source.id}: skipped, looks like a binary file (NUL bytes)")
                return []
            handle.seek(0)
            return _read_lines(handle, source, warn)
    except OSError as error:
        warn(f"{source.id}: skipped, cannot be read ({error.strerror or error})")
        return []


def _read_lines(handle: IO[bytes], source: Source, warn: Warn) -> list[Article]:
    articles: list[Article] = []
    lines_of: dict[str, int] = {}  # article id -> the line it came from
    number = 0
    blank = True
    while True:
        raw = handle.readline(MAX_ARTICLE_BYTES + 1)
        if not raw:
            break
        number += 1
        where = f"{source.id}:{number}"
        if len(raw) > MAX_ARTICLE_BYTES and not raw.endswith(b"\n"):
            _skip_rest_of_line(handle)
            limit = MAX_ARTICLE_BYTES // 2**20
            warn(f"{where}: skipped, over the {limit} MiB limit for one article: split it")
            blank = False
            continue
        if not raw.strip():
            continue
        blank = False
        try:
            article = _article(raw, number, source, warn)
        except _BadLine as problem:
            warn(f"{where}: skipped, {problem}")
            continue
        if article.id in lines_of:
            line = lines_of[article.id]
            warn(
                f"{where}: skipped, its id {article.id.rpartition('#')[2]!r} is that of line "
                f"{line}: give each article its own id"
            )
            continue
        lines_of[article.id] = number
        articles.append(article)
    if blank:
        warn(f"{source.id}: skipped, the file is empty")
    return articles


def _skip_rest_of_line(handle: IO[bytes]) -> None:
    while True:
        chunk = handle.readline(MAX_ARTICLE_BYTES)
        if not chunk or chunk.endswith(b"\n"):
            return


def _article(raw: bytes, number: int, source: Source, warn: Warn) -> Article:
    """The article on one line.

    Raises:
        _BadLine: the line is not valid UTF-8 or JSON, not an object, or lacks a text.
    """
    try:
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise _BadLine("not valid UTF-8: save the file as UTF-8") from None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise _BadLine(f"not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise _BadLine('not a JSON object (each line needs {"text": "..."})')
    text = record.get("text")
    if not isinstance(text, str):
        problem = 'no "text" field' if text is None else '"text" is not a string'
        raise _BadLine(f'{problem} (each line needs {{"text": "..."}})')
    for name in _OPTIONAL:
        if not isinstance(record.get(name), (str, type(None))):
            raise _BadLine(f'"{name}" is not a string')
    tags = record.get("tags")
    if not isinstance(tags, (str, list, type(None))) or (
        isinstance(tags, list) and not all(isinstance(tag, str) for tag in tags)
    ):
        raise _BadLine('"tags" is not a list of strings (or one string, commas between tags)')
    suffix = _id(record.get("id"), number)
    article = article_from_text(f"{source.id}#{suffix}", record.get("title") or "", text)
    if not article.blocks:
        raise _BadLine('"text" is empty')
    where = f"{source.id}:{number}"
    return replace(
        article,
        path=source.path,
        section=metadata_text(record.get("section")) or source.section,
        published=iso_date(record.get("published"), where, warn),
        author=metadata_text(record.get("author")),
        url=metadata_text(record.get("url")),
        tags=tag_list(tags),
    )


def _id(value: Any, number: int) -> str:
    """The line's own id, else its line number.

    Raises:
        _BadLine: the id is neither a string nor a whole number.
    """
    if value is None:
        return str(number)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _BadLine('"id" is not a string or a whole number')
    text = " ".join(str(value).split())
    if not text:
        raise _BadLine('"id" is empty')
    return text
