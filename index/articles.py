"""Read the articles of a folder: each file by its format's reader (`index/readers/`).

The public face of reading: `read_corpus` walks the folder and reads every file of the chosen
formats (txt, md, html, jsonl), counting the files it leaves aside in a `CorpusTally`; the
article model (`Article`, `Block`) and the plain-text parser are re-exported from the readers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from semsearch.index.readers import FORMATS, format_of, read_path
from semsearch.index.readers.files import (
    MAX_ARTICLE_BYTES,
    is_utf8,
    printable,
    walk_files,
)
from semsearch.index.readers.model import Article, Block, Warn
from semsearch.index.readers.text import article_from_text, parse_article

__all__ = [
    "FORMATS",
    "MAX_ARTICLE_BYTES",
    "Article",
    "Block",
    "CorpusTally",
    "article_from_text",
    "find_article_files",
    "parse_article",
    "read_article",
    "read_corpus",
]


@dataclass
class CorpusTally:
    """What a walk of the articles folder found beside the articles it yielded.

    `files` and `articles` count by format (a JSONL file holds many articles); `ignored` counts
    the files not read, by extension (".pdf"; "no extension"), for the formats left out by
    --formats as for files of no format; `ignored_files` says, for each, which file and why.
    """

    files: Counter[str] = field(default_factory=Counter)
    articles: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    ignored_files: list[str] = field(default_factory=list)

    def ignore(self, article_id: str, path: Path, formats: Sequence[str]) -> None:
        """Count a file that is not read, and say why."""
        extension = path.suffix or "no extension"
        self.ignored[extension] += 1
        name = format_of(path)
        if name is None:
            why = "not an article format"
        else:
            why = f"{name}, not in --formats {','.join(formats)}"
        self.ignored_files.append(f"{article_id} ({why})")


def find_article_files(
    root: Path,
    warn: Warn | None = None,
    *,
    follow_symlinks: bool = False,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Every file of one of `formats` under `root`, recursively, in a stable order; symlinks
    and odd names are handled as `index.readers.files.walk_files` says.

    Raises:
        CorpusError: `root` is missing or not a folder.
    """
    return [
        path
        for path in walk_files(root, warn, follow_symlinks=follow_symlinks)
        if format_of(path) in formats
    ]


def read_article(
    path: Path, root: Path, warn: Warn, *, follow_symlinks: bool = False
) -> Article | None:
    """Read the article of one file (the first, for a JSONL file); problems are reported
    through `warn`, never raised.

    Args:
        path: the file to read, of any format in `FORMATS`.
        root: the corpus root; the article id is the path relative to it.
        warn: called with one line for each file that is skipped or read with a fallback.
        follow_symlinks: also read a symlink to a file outside `root` (skipped otherwise).

    Returns:
        The article, or None when the file is empty, binary, unreadable, a symlink out of
        `root` or named in bytes that are not UTF-8.
    """
    articles = _read(path, root, warn, follow_symlinks)
    return articles[0] if articles else None


def _read(path: Path, root: Path, warn: Warn, follow_symlinks: bool) -> list[Article]:
    article_id = path.relative_to(root).as_posix()
    if not is_utf8(article_id):
        warn(f"{printable(article_id)}: skipped, the file name is not valid UTF-8: rename it")
        return []
    return read_path(path, article_id, root, warn, follow_symlinks=follow_symlinks)


def read_corpus(
    root: Path,
    warn: Warn,
    *,
    follow_symlinks: bool = False,
    formats: Sequence[str] = FORMATS,
    tally: CorpusTally | None = None,
) -> Iterator[Article]:
    """Yield each readable article under `root`, file by file in path order; skipped files
    (and JSONL lines) are reported through `warn`.

    Args:
        formats: the formats read (`FORMATS` by default); a file of another is ignored.
        tally: counts the files and articles read by format, and the files ignored.

    Symlinks to files or folders outside `root` are skipped with a warning unless
    `follow_symlinks`.
    """
    tally = tally if tally is not None else CorpusTally()
    for path in walk_files(root, warn, follow_symlinks=follow_symlinks):
        name = format_of(path)
        if name is None or name not in formats:
            article_id = path.relative_to(root).as_posix()
            tally.ignore(printable(article_id), path, formats)
            continue
        articles = _read(path, root, warn, follow_symlinks)
        if articles:
            tally.files[name] += 1
            tally.articles[name] += len(articles)
        yield from articles
