"""Markdown (.md, .markdown): front matter by python-frontmatter, the body by markdown-it-py.

The front matter gives the metadata (title, date or published, author, url, section, tags or
keywords) and is never a passage. In the body, a heading is a "heading" block (context
for the paragraphs under it), a paragraph a "paragraph" block; a list is one block, its items
one line each (`- item`, `1. item`), joined to the paragraph before it when that one ends with
a colon ("You need:"); a table is one block, a row a line; code is a block of its own; raw HTML
is left out. Inline markup is dropped (the text of links and emphasis is kept).

The title: the front matter's, else the first `#` heading (then not a block), else the file
name. Block spans are offsets into the extracted text: the blocks joined by blank lines.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from semsearch.index.readers.files import decode, read_bytes
from semsearch.index.readers.model import (
    Article,
    Role,
    Source,
    Warn,
    assemble,
    iso_date,
    join_lead_ins,
    metadata_text,
    tag_list,
)

__all__ = ["parse_markdown", "read_markdown"]

_LISTS = ("bullet_list_open", "ordered_list_open")


def read_markdown(source: Source, warn: Warn) -> list[Article]:
    """The article of a Markdown file (none, with a warning, when it holds no text)."""
    data = read_bytes(source.path, source.id, warn)
    if data is None:
        return []
    text, encoding = decode(data, source.id, warn)
    article = parse_markdown(source, text, warn)
    if article is None:
        warn(f"{source.id}: skipped, no text in the file (front matter aside)")
        return []
    return [replace(article, encoding=encoding)]


def parse_markdown(source: Source, text: str, warn: Warn) -> Article | None:
    """An article from Markdown text with optional front matter; None when it holds no text."""
    metadata, body = _front_matter(text.replace("\r\n", "\n").replace("\r", "\n"), source, warn)
    parts = list(_parts(body))
    title = metadata_text(metadata.get("title"))
    if not title and parts and parts[0][2] == "h1":
        title = parts.pop(0)[0]
    title = title or source.path.stem
    blocks = assemble(parts, title)
    if not blocks:
        return None
    published = metadata.get("date", metadata.get("published"))
    return Article(
        id=source.id,
        path=source.path,
        title=title,
        blocks=blocks,
        section=metadata_text(metadata.get("section")) or source.section,
        published=iso_date(published, source.id, warn),
        author=metadata_text(metadata.get("author", metadata.get("authors"))),
        url=metadata_text(metadata.get("url")),
        tags=tag_list(metadata.get("tags", metadata.get("keywords"))),
    )


def _front_matter(text: str, source: Source, warn: Warn) -> tuple[Mapping[str, Any], str]:
    """The front matter (a mapping; empty when there is none) and the Markdown after it."""
    import frontmatter
    import yaml  # type: ignore[import-untyped]

    try:
        post = frontmatter.loads(text)
    except (yaml.YAMLError, ValueError, TypeError) as error:
        problem = " ".join(str(error).split())[:80]
        warn(f"{source.id}: front matter left out, not valid YAML ({problem}): fix it")
        handler = frontmatter.YAMLHandler()
        if handler.detect(text):
            try:
                return {}, handler.split(text)[1]
            except ValueError:
                pass
        return {}, text
    metadata = post.metadata if isinstance(post.metadata, Mapping) else {}
    return metadata, post.content


def _parts(body: str) -> Iterator[tuple[str, Role, str]]:
    """(text, role, tag) for each block of the Markdown body: the tag is "h1".."h6" for a
    heading, "p" for a paragraph, else "list", "table" or "code"."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    return join_lead_ins(_blocks(tokens), ("list",))


def _blocks(tokens: Sequence[Any]) -> Iterator[tuple[str, Role, str]]:
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open":
            yield _one_line(_inline(tokens[index + 1])), "heading", token.tag
            index += 3
        elif token.type == "paragraph_open":
            yield _lines(_inline(tokens[index + 1])), "paragraph", "p"
            index += 3
        elif token.type in _LISTS or token.type == "table_open":
            end = _closing(tokens, index)
            if token.type == "table_open":
                yield "\n".join(_rows(tokens[index:end])), "paragraph", "table"
            else:
                yield "\n".join(_items(tokens[index:end])), "paragraph", "list"
            index = end + 1
        elif token.type in ("fence", "code_block"):
            yield token.content.strip("\n"), "paragraph", "code"
            index += 1
        else:  # blockquote marks (its paragraphs come next), rules, raw HTML
            index += 1


def _closing(tokens: Sequence[Any], start: int) -> int:
    """The index of the token that closes the one at `start` (same level, nesting -1)."""
    level = tokens[start].level
    for index in range(start + 1, len(tokens)):
        if tokens[index].level == level and tokens[index].nesting == -1:
            return index
    return len(tokens) - 1


def _items(tokens: Sequence[Any]) -> Iterator[str]:
    """A list's items, one line each (`- item`, `1. item`); a nested list's items indented."""
    depth = -1
    indent = ""
    words: list[str] = []
    for token in tokens:
        if token.type in _LISTS:
            depth += 1
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif token.type == "list_item_open":
            if words:
                yield indent + " ".join(words)
            marker = f"{token.info}{token.markup}" if token.info else "-"
            indent, words = "  " * depth + marker + " ", []
        elif token.type == "inline":
            words.append(_one_line(_inline(token)))
        elif token.type in ("fence", "code_block"):
            words.append(_one_line(token.content))
    if words:
        yield indent + " ".join(words)


def _rows(tokens: Sequence[Any]) -> Iterator[str]:
    """A table's rows, one line each, cells separated by " | "."""
    cells: list[str] = []
    for token in tokens:
        if token.type == "tr_open":
            cells = []
        elif token.type == "inline":
            cells.append(_one_line(_inline(token)))
        elif token.type == "tr_close" and any(cells):
            yield " | ".join(cells)


def _inline(token: Any) -> str:
    """The text of an inline token: markup dropped, a hard break kept as a new line."""
    parts: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
    return "".join(parts)


def _lines(text: str) -> str:
    """Each line's whitespace collapsed; blank lines dropped."""
    return "\n".join(line for line in (_one_line(part) for part in text.split("\n")) if line)


def _one_line(text: str) -> str:
    return " ".join(text.split())
