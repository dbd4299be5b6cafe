"""`semsearch index`: build (or rebuild) the index from a folder of articles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from semsearch.search.cli.options import IndexOption, ModelOption, index_flags, settings_from
from semsearch.search.cli.output import Bars, errors, out, plural, status, warner
from semsearch.search.settings import Settings

if TYPE_CHECKING:
    from semsearch.index.builder import BuildReport
    from semsearch.search.indexing import Built, VectorsRebuilt

__all__ = ["index_command"]

# A skipped line of a JSONL file, not a file: `export.jsonl:3: skipped, not valid JSON (...)`.
_SKIPPED_LINE = re.compile(r".*\.jsonl:\d+: skipped, ", re.IGNORECASE)


def index_command(
    seeds: Annotated[
        Path | None,
        typer.Option("--seeds", help="articles folder [env SEMSEARCH_SEEDS_DIR]"),
    ] = None,
    index_dir: IndexOption = None,
    model: ModelOption = None,
    reindex_vectors: Annotated[
        bool,
        typer.Option(
            "--reindex-vectors",
            help="rebuild only the FAISS index from the stored vectors (after changing "
            "SEMSEARCH_FAISS_INDEX or HNSW settings); nothing is re-read or re-embedded",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="build a new generation even when nothing changed since the last"
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="[ADDRESS]",
            help="embed with Ray Data workers: on a local Ray started for this build, or on the "
            "cluster at ADDRESS (host:port of its head node)",
        ),
    ] = None,
    formats: Annotated[
        str | None,
        typer.Option(
            "--formats",
            metavar="LIST",
            help="the article formats to read, comma-separated: txt, md, html, jsonl (default: "
            "all); files of the others are counted as ignored [env SEMSEARCH_FORMATS]",
        ),
    ] = None,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="also index files and folders that symlinks in the articles folder point to "
            "outside it (skipped with a warning otherwise) [env SEMSEARCH_FOLLOW_SYMLINKS]",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only errors")] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="also list skipped and ignored files, and removed generations"
        ),
    ] = False,
) -> None:
    """Build (or rebuild) the index from a folder of articles.

    When the articles, model and settings are those the live index was built from, nothing is
    rebuilt (use --force to rebuild anyway); otherwise only new or changed passages are embedded.
    """
    from semsearch.search.feedback import Feedback
    from semsearch.search.indexing import build, rebuild_vectors

    with errors():
        settings = settings_from(
            seeds_dir=seeds,
            index_dir=index_dir,
            model=model,
            follow_symlinks=follow_symlinks or None,  # not given: SEMSEARCH_FOLLOW_SYMLINKS
            formats=formats,
        )
        if reindex_vectors:
            rebuilt = rebuild_vectors(settings)
            if not quiet:
                _print_vectors_rebuilt(rebuilt)
            return
        with Bars(quiet) as bars:
            feedback = Feedback(
                warn=warner(quiet), status=lambda line: status(line, quiet), task=bars.task
            )
            built = build(settings, force=force, ray_address=ray_address, feedback=feedback)
        if not quiet:
            _print_built(built, settings, verbose)


def _print_vectors_rebuilt(rebuilt: VectorsRebuilt) -> None:
    manifest = rebuilt.manifest
    out.print(
        f"Rebuilt the {manifest['faiss']['type']} vector index of "
        f"{plural(manifest['counts']['passages'], 'passage')} from stored vectors: "
        f"{rebuilt.where}",
        markup=False,
    )


def _print_built(built: Built, settings: Settings, verbose: bool) -> None:
    report = built.report
    if report.up_to_date:
        out.print(
            f"Up to date: {built.where} was built from the "
            f"same {plural(report.articles, 'article')}, model and settings "
            f"({plural(report.passages, 'passage')}); nothing to do. "
            "Use --force to rebuild anyway."
            + (f" Ignored: {_ignored(report)}." if report.ignored else ""),
            markup=False,
        )
        if verbose:
            for line in report.ignored_files:
                out.print(f"ignored: {line}", markup=False)
        return
    out.print(_summary_table(report, settings.model, built.where))
    if verbose:
        for name in report.skipped:
            out.print(f"skipped: {name}", markup=False)
        for line in report.ignored_files:
            out.print(f"ignored: {line}", markup=False)
        for name in report.removed_generations:
            out.print(f"removed old generation: {name}", markup=False)
    flags = "".join(" " + word for word in index_flags(settings))  # search and serve take --index
    out.print(
        f'Next: semsearch search "your question"{flags}  or  semsearch serve{flags}',
        markup=False,
    )


def _summary_table(report: BuildReport, model: str, where: str) -> Table:
    """The figures of a finished build, one per row."""
    table = Table(
        title=f"Indexed {where}",
        title_justify="left",
        box=None,
        show_header=False,
        pad_edge=False,
        padding=(0, 3, 0, 0),
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    lines = [name for name in report.skipped if _SKIPPED_LINE.match(name)]
    rows = [
        ("articles", report.articles),
        ("by format", _by_format(report)),
        ("passages", report.passages),
        ("sentence vectors", report.sentences),
        ("embedded now", report.embedded),
        ("reused from cache", report.reused),
        ("files skipped", len(report.skipped) - len(lines)),
        *([("JSONL lines skipped", len(lines))] if lines else []),
        ("files ignored", _ignored(report) or 0),
        ("near-duplicate passages", report.duplicates),
        ("time", f"{report.seconds:.1f} s"),
        ("model", model),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def _by_format(report: BuildReport) -> str:
    """Articles by format, `2 txt, 1 md, 3 jsonl (1 file)`: a file's count where it differs."""
    shown = []
    for name, count in report.formats.items():
        files = report.format_files.get(name, count)
        shown.append(f"{count} {name}" + (f" ({plural(files, 'file')})" if files != count else ""))
    return ", ".join(shown) or "none"


def _ignored(report: BuildReport) -> str:
    """Files not read, by extension: `2 .pdf, 1 .docx` (-v names them)."""
    return ", ".join(f"{count} {extension}" for extension, count in report.ignored.items())
