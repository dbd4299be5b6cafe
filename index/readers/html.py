"""A saved web page (.html, .htm): the article's main text and metadata, by trafilatura.

trafilatura keeps the article and drops the page furniture (navigation, cookie banner, newsletter
box, related links, footer, reader comments). Its XML output gives the structure: <head> is a
heading (<h2>, <h3>...: a "heading" block, context for the paragraphs under it), <p> a paragraph,
<list> and <table> one block each (a list joins the paragraph before it when that one ends with
a colon). The title is the article's own (og:title, the <h1>, or the <title> without the site's
name), else the file name; the date, author, canonical URL and article tags (`article:tag`)
come from the page's metadata.

Block spans are offsets into the extracted text: the blocks joined by blank lines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from semsearch.index.readers.files import read_bytes
from semsearch.index.readers.model import (
    Article,
    Role,
    Source,
    Warn,
    assemble,
    iso_date,
    join_lead_ins,
    tag_list,
)

__all__ = ["read_html"]

# The date in the page's metadata, or none: trafilatura's extensive search would take a year
# from a footer's copyright line for the publication date.
_DATE_PARAMS = {"extensive_search": False, "original_date": True}
# Loggers that report, at ERROR level, what the reader reports itself as one warning.
_CHATTY = ("trafilatura", "htmldate", "courlan", "justext", "readability")


def read_html(source: Source, warn: Warn) -> list[Article]:
    """The article of a web page (none, with a warning, when no article text is found)."""
    data = read_bytes(source.path, source.id, warn)
    if data is None:
        return []
    import trafilatura  # a second to import: only when there is a page to read
    from lxml import etree  # type: ignore[import-untyped]

    with _quiet():
        xml = trafilatura.extract(
            data,
            output_format="xml",
            with_metadata=True,
            include_comments=False,
            include_formatting=True,
            include_tables=True,
            include_images=False,
            date_extraction_params=_DATE_PARAMS,
        )
    if not xml:
        warn(f"{source.id}: skipped, no article text found in the page")
        return []
    doc = etree.fromstring(xml.encode("utf-8"))
    main = doc.find("main")
    title = _one_line(doc.get("title") or "")
    parts = list(_parts(main)) if main is not None else []
    if not title:
        first_h1 = next((text for text, role, tag in parts if tag == "h1"), "")
        title = first_h1 or source.path.stem
    blocks = assemble(parts, title)
    if not blocks:
        warn(f"{source.id}: skipped, no article text found in the page")
        return []
    return [
        Article(
            id=source.id,
            path=source.path,
            title=title,
            blocks=blocks,
            section=source.section,
            published=iso_date(doc.get("date"), source.id, warn),
            author=_one_line(doc.get("author") or ""),
            url=(doc.get("url") or "").strip(),
            tags=tag_list((doc.get("tags") or "").split(";")),  # (trafilatura joins them so)
        )
    ]


def _parts(main: Any) -> Iterator[tuple[str, Role, str]]:
    """(text, role, tag) for each block of trafilatura's <main>: the tag is "h1".."h6" for a
    heading, else the element's own."""
    return join_lead_ins(_children(main), ("list", "table"))


def _children(element: Any) -> Iterator[tuple[str, Role, str]]:
    """The blocks of an element that holds blocks (<main>, a <quote> of paragraphs)."""
    if (element.text or "").strip():
        yield _lines(element.text), "paragraph", "p"
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "head":
            rend = child.get("rend") or "h2"
            yield _one_line(_inline(child)), "heading", rend if rend.startswith("h") else "h2"
        elif tag == "list":
            yield "\n".join(_items(child)), "paragraph", "list"
        elif tag == "table":
            yield "\n".join(_rows(child)), "paragraph", "table"
        elif tag == "quote" and child.find("p") is not None:
            yield from _children(child)
        elif tag in ("graphic", "lb", ""):
            pass
        else:  # p, code, quote, and anything else that holds text
            yield _lines(_inline(child)), "paragraph", "p"
        if (child.tail or "").strip():
            yield _lines(child.tail), "paragraph", "p"


def _items(element: Any, depth: int = 0) -> Iterator[str]:
    """A list's items, one line each (`- item`, `1. item`); a nested list's items follow their
    item, indented."""
    numbered = element.get("rend") == "ol"
    for number, item in enumerate(element.iterfind("item"), start=1):
        nested = item.findall("list")
        for inner in nested:
            item.remove(inner)
        text = _one_line(_inline(item))
        if text:
            yield "  " * depth + (f"{number}. " if numbered else "- ") + text
        for inner in nested:
            yield from _items(inner, depth + 1)


def _rows(table: Any) -> Iterator[str]:
    """A table's rows, one line each, cells separated by " | "."""
    for row in table.iter("row"):
        cells = [_one_line(_inline(cell)) for cell in row.iterfind("cell")]
        if any(cells):
            yield " | ".join(cells)


def _inline(element: Any) -> str:
    """An element's text with its inline markup dropped; a line break (<lb/>) kept."""
    parts = [element.text or ""]
    for child in element:
        parts.append("\n" if child.tag == "lb" else _inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _lines(text: str) -> str:
    """Each line's whitespace collapsed; blank lines dropped."""
    return "\n".join(line for line in (_one_line(part) for part in text.split("\n")) if line)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the extractors' own logging (an empty page is an ERROR to lxml) while reading:
    the reader says what went wrong in one warning."""
    loggers = [logging.getLogger(name) for name in _CHATTY]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
