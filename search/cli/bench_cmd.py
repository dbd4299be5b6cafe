"""`semsearch bench`: time building, rebuilding, serving queries and vector search."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semsearch.search.cli.options import ModelOption, settings_from, whole_numbers
from semsearch.search.cli.output import err, errors, out, write_json

__all__ = ["bench_command"]


def bench_command(
    corpus: Annotated[
        Path, typer.Option("--corpus", help="folder of articles to build and query")
    ] = Path("seeds"),
    vector_sizes: Annotated[
        str, typer.Option("--vector-sizes", help="synthetic passage counts, comma-separated")
    ] = "100000",
    queries: Annotated[int, typer.Option("--queries", min=10, help="distinct queries")] = 200,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="also write the figures to this file")
    ] = None,
    model: ModelOption = None,
    scale: Annotated[
        int | None,
        typer.Option(
            "--scale",
            min=1,
            help="instead: an archive of this many passages recombined from the corpus's "
            "sentences, with synthetic vectors (no model): build, disk, query and HTTP figures",
        ),
    ] = None,
    stores: Annotated[
        bool,
        typer.Option(
            "--stores",
            help="instead: the FAISS store beside the Milvus store (SEMSEARCH_MILVUS_URI when it "
            "is a server, else Milvus Lite): latency of each mode and top-10 overlap",
        ),
    ] = False,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            help="with --scale: write cProfile stats of the build and of "
            "the hybrid and lexical queries to this folder",
        ),
    ] = None,
) -> None:
    """Benchmark building, rebuilding, serving queries and vector search; print the figures."""
    from semsearch.search.bench import format_bench, run_bench

    if scale is not None:
        from semsearch.search.bench_scale import format_scale_bench, run_scale_bench

        with errors():
            figures = run_scale_bench(
                corpus, scale, queries, lambda line: err.print(line, markup=False), profile
            )
        if json_file is not None:
            write_json(json_file, figures)
        for line in format_scale_bench(figures):
            out.print(line, markup=False)
        return
    if stores:
        from semsearch.search.bench_stores import format_stores, run_stores_bench

        with errors():
            compared = run_stores_bench(
                corpus,
                settings_from(model=model),
                queries,
                lambda line: err.print(line, markup=False),
            )
        if json_file is not None:
            write_json(json_file, compared)
        for line in format_stores(compared["stores"]):
            out.print(line, markup=False)
        return
    with errors():
        settings = settings_from(model=model)
        sizes = whole_numbers(vector_sizes, "--vector-sizes")
        figures = run_bench(
            corpus, settings, sizes, queries, lambda line: err.print(line, markup=False)
        )
    if json_file is not None:
        write_json(json_file, figures)
    for line in format_bench(figures):
        out.print(line, markup=False)
