"""Plain text (.txt): the title on the first line, blocks separated by blank lines.

Block spans are offsets into the decoded file; the chunker's rules for plain text decide which
blocks are headings (the blocks' role is "").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from semsearch.index.readers.files import decode, read_bytes
from semsearch.index.readers.model import Article, Block, Source, Warn

__all__ = ["article_from_text", "parse_article", "read_text", "split_blocks"]

# Blocks are separated by one or more blank (or whitespace-only) lines.
_BLOCK_SEPARATOR = re.compile(r"\n[ \t\r\f\v]*\n")


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
    blocks = list(split_blocks(text))
    if not blocks:
        return None
    first = blocks[0]
    title_line, _, rest = first.text.partition("\n")
    title = " ".join(title_line.split())
    body: list[Block] = []
    if rest.strip():
        offset = first.start + len(title_line) + 1
        body.extend(split_blocks(rest, offset))
    body.extend(blocks[1:])
    return Article(id=article_id, path=path or Path(article_id), title=title, blocks=tuple(body))


def article_from_text(article_id: str, title: str, text: str) -> Article:
    """An article from a title and a body given apart (a BEIR document, say).

    Spans are offsets into `text`. An empty title leaves the body's first line as body text.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    title = " ".join(title.split())
    return Article(
        id=article_id, path=Path(article_id), title=title, blocks=tuple(split_blocks(text))
    )


def split_blocks(text: str, offset: int = 0) -> Iterator[Block]:
    """The blocks of `text` between blank lines, stripped, with their spans (plus `offset`)."""
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


def read_text(source: Source, warn: Warn) -> list[Article]:
    """The article of a .txt file (none when it is empty, binary, too big or unreadable)."""
    data = read_bytes(source.path, source.id, warn)
    if data is None:
        return []
    text, encoding = decode(data, source.id, warn)
    article = parse_article(source.id, text, source.path)
    if article is None:
        warn(f"{source.id}: skipped, the file is empty")
        return []
    return [replace(article, encoding=encoding, section=source.section)]
