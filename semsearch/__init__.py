"""semsearch: paragraph-level semantic search over a folder of articles.

The one name the project takes when installed. Its three layers, each a folder of the
repository (linked here), import only downwards:

    semsearch.api      HTTP: routes, schemas, the search page, metrics, admin
    semsearch.search   searching, serving with hot swap, rebuilding, the CLI, evaluation
    semsearch.index    reading, chunking, embedding, and the stores behind `index.stores`

See docs/architecture.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("semsearch")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "unknown"
