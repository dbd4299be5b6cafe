"""Article readers, one module a format, picked by the file's extension.

    txt    .txt              text.py      title on the first line, blocks between blank lines
    md     .md .markdown     markdown.py  front matter + Markdown (markdown-it-py)
    html   .html .htm        html.py      a saved web page's article (trafilatura)
    jsonl  .jsonl            jsonl.py     one article a line

A reader takes a `Source` (the file and its id) and a `Warn`, and returns the file's articles
(none when it is skipped, with a warning saying why). To add a format: write its module, add it
to `_READERS` and its extensions to `_EXTENSIONS` (docs/architecture.md, "Article formats").
`files.py` keeps every format safe to read (symlinks, FIFOs, size, binary files).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from semsearch.index.errors import CorpusError
from semsearch.index.readers.files import check_file
from semsearch.index.readers.html import read_html
from semsearch.index.readers.jsonl import read_jsonl
from semsearch.index.readers.markdown import read_markdown
from semsearch.index.readers.model import Article, Source, Warn
from semsearch.index.readers.text import read_text

__all__ = ["EXTENSIONS", "FORMATS", "format_of", "parse_formats", "read_path"]

Reader = Callable[[Source, Warn], list[Article]]

_READERS: dict[str, Reader] = {
    "txt": read_text,
    "md": read_markdown,
    "html": read_html,
    "jsonl": read_jsonl,
}
_EXTENSIONS = {
    "txt": (".txt",),
    "md": (".md", ".markdown"),
    "html": (".html", ".htm"),
    "jsonl": (".jsonl",),
}
# The formats, in the order summaries list them.
FORMATS: tuple[str, ...] = tuple(_READERS)
# Extension (lower case, with its dot) -> format.
EXTENSIONS = {ext: name for name, exts in _EXTENSIONS.items() for ext in exts}
# Other names a format may be given by in --formats.
_ALIASES = {"markdown": "md", "htm": "html", "text": "txt"}


def format_of(path: Path) -> str | None:
    """The format of a file, by its extension; None for any other file.

    Extensions are matched in lower case only, as .txt always was: `README.TXT` beside a
    corpus stays out of it (it is counted as ignored).
    """
    return EXTENSIONS.get(path.suffix)


def parse_formats(text: str | Iterable[str]) -> tuple[str, ...]:
    """The formats named in `text` ("txt,md,html,jsonl"; blanks and case do not matter), in
    `FORMATS` order.

    Raises:
        CorpusError: a name is not a format, or none is given.
    """
    names = text.split(",") if isinstance(text, str) else list(text)
    chosen = set()
    for name in names:
        word = name.strip().lower().lstrip(".")
        if not word:
            continue
        word = _ALIASES.get(word, word)
        if word not in _READERS:
            raise CorpusError(
                f"unknown format {name.strip()!r} in --formats: use {', '.join(FORMATS)}"
            )
        chosen.add(word)
    if not chosen:
        raise CorpusError(f"no format in --formats: use {', '.join(FORMATS)}")
    return tuple(name for name in FORMATS if name in chosen)


def read_path(
    path: Path, article_id: str, root: Path, warn: Warn, *, follow_symlinks: bool = False
) -> list[Article]:
    """The articles of one file, read by its format's reader; problems go through `warn`.

    Args:
        path: the file, of a format in `FORMATS`.
        article_id: its path relative to `root` (the id of its article, or their prefix).
        root: the articles folder (a symlink out of it is skipped unless `follow_symlinks`).
        warn: called with one line for each file (or JSONL line) skipped or read oddly.

    Raises:
        ValueError: the file's extension is no format's.
    """
    name = format_of(path)
    if name is None:
        raise ValueError(f"{article_id}: not a file of an article format")
    if not check_file(path, root, article_id, warn, follow_symlinks=follow_symlinks):
        return []
    return _READERS[name](Source(path, article_id), warn)
