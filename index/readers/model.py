"""What every reader makes: `Article`s of `Block`s, and the helpers the readers share.

Block offsets (`start`, `end`) are character offsets into the text the article shows: for a
.txt file, the decoded file itself; for HTML, Markdown and a JSONL line, the text the reader
extracted (for HTML and Markdown, the blocks joined by blank lines, as `assemble` lays them out;
for JSONL, the line's `text` field).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "JOINER",
    "Article",
    "Block",
    "Role",
    "Source",
    "Warn",
    "assemble",
    "iso_date",
    "join_lead_ins",
    "metadata_text",
    "tag_list",
]

Warn = Callable[[str], None]
Role = Literal["", "heading", "paragraph"]
# What separates two blocks in the text a reader extracts (HTML, Markdown).
JOINER = "\n\n"
# An article's tags are kept up to this many, each up to this long.
MAX_TAGS = 50
MAX_TAG_CHARS = 100


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
    role: Role = ""


@dataclass(frozen=True)
class Article:
    """One article: its id (path relative to the corpus root), title, body blocks and metadata.

    Metadata: `section` (given by the source, else the article's top folder, "" at the root),
    `published` (an ISO date, YYYY-MM-DD, or None), `author` and `url` ("" when unknown), and
    `tags` (front matter, JSONL, a page's article tags; none when unknown).
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
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """Where a reader's articles come from: the file, its id (its path relative to the corpus
    root, in warnings and as the article id) and the section its folder gives."""

    path: Path
    id: str

    @property
    def section(self) -> str:
        """The top folder of the file under the corpus root; "" for a file at the root."""
        folder, slash, _ = self.id.partition("/")
        return folder if slash else ""


def assemble(parts: Iterable[tuple[str, Role, str]], title: str) -> tuple[Block, ...]:
    """Blocks for (text, role, tag) parts laid out one after another, separated by `JOINER`:
    each block's span is its place in that text. Empty texts are left out, and so is an `h1`
    that repeats the title (it is shown as the title already)."""
    blocks: list[Block] = []
    position = 0
    for text, role, tag in parts:
        if not text or (tag == "h1" and text.casefold() == title.casefold()):
            continue
        if blocks:
            position += len(JOINER)
        blocks.append(Block(text, position, position + len(text), role))
        position += len(text)
    return tuple(blocks)


def metadata_text(value: object) -> str:
    """A metadata value (front matter, JSON) as one line of text: a list is joined with commas;
    None is ""."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(metadata_text(item) for item in value if item is not None)
    return " ".join(str(value).split())


def join_lead_ins(
    parts: Iterable[tuple[str, Role, str]], joined: tuple[str, ...]
) -> Iterator[tuple[str, Role, str]]:
    """(text, role, tag) blocks, the empty ones left out, and each block whose tag is in
    `joined` (a list, a table) joined to the paragraph before it when that one ends with a
    colon ("You need:"): the two are one passage, as a reader reads them."""
    previous: tuple[str, Role, str] | None = None
    for text, role, tag in parts:
        if not text:
            continue
        if tag in joined and previous and previous[2] == "p" and previous[0].endswith(":"):
            previous = (f"{previous[0]}\n{text}", "paragraph", "p")
            continue
        if previous is not None:
            yield previous
        previous = (text, role, tag)
    if previous is not None:
        yield previous


def tag_list(value: object) -> tuple[str, ...]:
    """Tags from metadata: a list, or text with commas between them; each one line, each once,
    at most MAX_TAGS of at most MAX_TAG_CHARS characters."""
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    found: dict[str, None] = {}
    for item in items:
        tag = " ".join(str(item).split())[:MAX_TAG_CHARS] if item is not None else ""
        if tag:
            found.setdefault(tag, None)
    return tuple(found)[:MAX_TAGS]


def iso_date(value: object, where: str, warn: Warn) -> str | None:
    """`value` (a date, a datetime, or text such as 2024-03-05 or 2024-03-05T09:30:00Z) as
    YYYY-MM-DD; None when absent, and None with a warning naming `where` when not understood."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    found = _parse_date(text)
    if found is None:
        shown = text if len(text) <= 40 else text[:37] + "..."
        warn(f"{where}: published date {shown!r} not understood, left empty: use YYYY-MM-DD")
    return found


def _parse_date(text: str) -> str | None:
    """YYYY-MM-DD from an ISO date or datetime, or None."""
    date, separator, clock = text[:10], text[10:11], text[11:]
    if separator and (separator not in "Tt " or not _time_ok(clock)):
        return None
    try:
        return dt.date.fromisoformat(date).isoformat()
    except ValueError:
        return None


def _time_ok(text: str) -> bool:
    """Whether `text` is the time part of an ISO datetime (hh:mm[:ss[.fff]] and a zone)."""
    clock = text.rstrip("Zz")
    for sign in "+-":
        if sign in clock:
            clock = clock.partition(sign)[0]
    clock = clock.partition(".")[0]
    try:
        dt.time.fromisoformat(clock)
    except ValueError:
        return False
    return True
