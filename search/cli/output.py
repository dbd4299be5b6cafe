"""What the commands share on the way out: the consoles, errors as one line, progress, JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import TracebackType
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from semsearch.index.errors import IndexNotFound, SemsearchError
from semsearch.search.cli.options import index_command_line
from semsearch.search.feedback import Progress as Reporter
from semsearch.search.settings import Settings

__all__ = [
    "Bars",
    "article_line",
    "err",
    "errors",
    "explain_missing_index",
    "out",
    "plural",
    "print_json",
    "status",
    "warner",
    "write_json",
]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def errors() -> Iterator[None]:
    """Turn semsearch errors into one line on stderr and exit code 2."""
    try:
        yield
    except SemsearchError as error:
        err.print(f"semsearch: error: {error}", markup=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("semsearch: interrupted", markup=False)
        raise typer.Exit(130) from None


@contextmanager
def explain_missing_index(settings: Settings) -> Iterator[None]:
    """Name the command to run when there is no index yet (with the folder flags it needs)."""
    try:
        yield
    except IndexNotFound:
        where = f"at {settings.index_dir}"
        if settings.store == "milvus":
            where = f"in Milvus {settings.milvus_uri} (alias {settings.milvus_collection})"
        command = index_command_line(settings)
        raise SemsearchError(f"no index {where}: run `{command}` first") from None


def article_line(
    section: str, published: str | None, author: str, tags: tuple[str, ...] = ()
) -> str:
    """An article's metadata in one short line, only the parts it has:
    `business · 2005-03-01 · Jane Doe · tags: markets, oil` ("" when it has none)."""
    labels = f"tags: {', '.join(tags)}" if tags else ""
    return " · ".join(part for part in (section, published or "", author, labels) if part)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def status(message: str, quiet: bool = False) -> AbstractContextManager[object]:
    """A spinner with `message` on stderr while a slow step runs (on a terminal, unless quiet)."""
    if quiet or not err.is_terminal:
        return nullcontext()
    return err.status(message)


def warner(quiet: bool = False) -> Callable[[str], None]:
    """Print each warning as one line on stderr (none when quiet)."""

    def warn(message: str) -> None:
        if not quiet:
            err.print(f"warning: {message}", markup=False)

    return warn


class Bars:
    """Progress bars on stderr (a terminal only), shown from the first task until closed.

    Use it as a context manager; `task` starts a bar and returns its progress callback.
    """

    def __init__(self, quiet: bool = False) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            disable=quiet or not err.is_terminal,
            transient=True,
        )
        self._started = False

    def task(self, description: str) -> Reporter:
        """A new bar; the callback takes how many of how many are done."""
        if not self._started:
            self._progress.start()
            self._started = True
        task = self._progress.add_task(description, total=None)
        return lambda done, total: self._progress.update(task, completed=done, total=total)

    def __enter__(self) -> Bars:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._started:
            self._progress.stop()


def print_json(document: Any, ensure_ascii: bool = True) -> None:
    """One JSON document on stdout, indented."""
    sys.stdout.write(json.dumps(document, ensure_ascii=ensure_ascii, indent=2) + "\n")


def write_json(path: Path, document: Any) -> None:
    """One JSON document into a file (its folder made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
