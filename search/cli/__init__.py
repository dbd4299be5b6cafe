"""The `semsearch` command line: index, search, similar, serve, eval, bench, info.

Each command parses its options, calls one library function of `semsearch.search` and prints
what it returns; the shared options are in `options`, the consoles, errors and progress bars
in `output`.
"""

from __future__ import annotations

import sys
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, TextIO

import typer

from semsearch.search.cli.bench_cmd import bench_command
from semsearch.search.cli.eval_cmd import eval_command
from semsearch.search.cli.index_cmd import index_command
from semsearch.search.cli.info_cmd import info_command
from semsearch.search.cli.options import optional_ray_address
from semsearch.search.cli.output import out
from semsearch.search.cli.search_cmd import search_command
from semsearch.search.cli.serve_cmd import serve_command
from semsearch.search.cli.similar_cmd import similar_command

__all__ = ["app", "main", "optional_ray_address"]

app = typer.Typer(
    help="Paragraph-level semantic search over a folder of articles.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        try:
            out.print(f"semsearch {version('semsearch')}")
        except PackageNotFoundError:
            out.print("semsearch (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="show version"),
    ] = False,
) -> None:
    """Paragraph-level semantic search over a folder of articles."""


app.command("index")(index_command)
app.command("search")(search_command)
app.command("similar")(similar_command)
app.command("serve")(serve_command)
app.command("eval")(eval_command)
app.command("bench")(bench_command)
app.command("info")(info_command)


def main() -> None:
    """Entry point of the `semsearch` console script."""
    warnings.showwarning = _warning_line
    app(args=optional_ray_address(sys.argv[1:]), prog_name="semsearch")


def _warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A warning (such as a deprecated setting's) as one line, without the library's source."""
    print(f"semsearch: warning: {message}", file=file or sys.stderr)
