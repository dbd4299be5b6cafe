"""The Milvus client for the Milvus store: connecting, calling, and what its modules share.

`connect` opens a MilvusClient (a Milvus Lite folder for a local path, else a server);
`call` turns a lost connection into `StoreUnavailable`; `filter_expression` writes a search's
filter as a Milvus expression, its strings quoted by `literal`. Used by every `index.milvus_*`
module.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from semsearch.index.errors import StoreUnavailable
from semsearch.index.stores import PassageFilter

__all__ = [
    "INSERT_BATCH",
    "MANIFEST_PROPERTY",
    "MAX_TOP_K",
    "METADATA_FIELDS",
    "QUERY_BATCH",
    "TAGS_FIELD",
    "VARCHAR_MAX",
    "VOCAB_SUFFIX",
    "add_bm25",
    "call",
    "connect",
    "create_unloaded",
    "filter_expression",
    "flush_and_load",
    "literal",
    "load_indexed",
    "valid_name",
]

MANIFEST_PROPERTY = "semsearch_manifest"
VOCAB_SUFFIX = "_vocab"  # beside each generation: the document frequency of every stem
INSERT_BATCH = 1000
QUERY_BATCH = 1000  # ids per `query` call, and rows per page when reading everything
MAX_TOP_K = 16384  # Milvus's limit on one search
VARCHAR_MAX = 65535
INDEX_WAIT_SECONDS = 3600  # the longest a build waits for a server to index a collection
INDEX_POLL_SECONDS = 0.5
# Each passage row's copy of its article's metadata (format 5 on); "published" is "" when none.
METADATA_FIELDS = ("section", "published", "author", "url")
TAGS_FIELD = "tags"  # format 6 on: the article's tags, one a line
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")
_LITERAL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})


def valid_name(name: str) -> bool:
    """Whether Milvus takes `name` for a collection or alias."""
    return _NAME.fullmatch(name) is not None


def _client_class() -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as error:
        raise StoreUnavailable(
            "SEMSEARCH_STORE=milvus needs pymilvus (and milvus-lite for a local file): "
            "pip install 'semsearch[milvus]'"
        ) from error
    return MilvusClient


def literal(value: str) -> str:
    """A Milvus filter string literal that stands for exactly `value`, whatever it holds.

    Double-quoted; backslashes, double quotes, line feeds and carriage returns are escaped (C
    escapes; unescaped, a line break ends the literal: "unterminated string literal"). Any
    other character stands for itself, control characters such as a tab, NUL or ESC included:
    Milvus takes no \\x, \\u, octal, \\a, \\b, \\f or \\v escapes (tried on Milvus Lite 3.2.2
    with pymilvus 3.0.2: "unknown escape sequence").
    """
    return '"' + value.translate(_LITERAL_ESCAPES) + '"'


def add_bm25(schema: Any, index: Any, source: str) -> None:
    """Give `schema` a sparse field `sparse` that a BM25 function fills from the text field
    `source`, and `index` its BM25 index (FTS5's k1 and b); Milvus 2.5 and later."""
    from pymilvus import DataType, Function, FunctionType

    from semsearch.index.bm25 import BM25_B, BM25_K1

    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name=f"{source}_bm25",
            function_type=FunctionType.BM25,
            input_field_names=[source],
            output_field_names=["sparse"],
        )
    )
    index.add_index(
        "sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},  # as SQLite FTS5
    )


def filter_expression(where: PassageFilter | None, metadata: bool = True) -> str:
    """A Milvus filter expression keeping the passages `where` keeps ("" keeps all); strings
    quoted by `literal`. `metadata`: whether the collection has the metadata fields (without
    them a section or date filter keeps nothing)."""
    if where is None or where.is_empty:
        return ""
    parts = []
    if where.article is not None:
        parts.append(f"article_id == {literal(where.article)}")
    if where.uses_metadata and not metadata:
        return "id < 0"  # no passage of an older format has a section or a date
    if where.sections:
        parts.append(f"section in [{', '.join(literal(s) for s in where.sections)}]")
    if where.after is not None or where.before is not None:
        parts.append('published != ""')  # an article without a date matches no bound
    if where.after is not None:
        parts.append(f"published >= {literal(where.after)}")  # ISO dates sort as text
    if where.before is not None:
        parts.append(f"published <= {literal(where.before)}")
    return " and ".join(parts)


def _is_local(uri: str) -> bool:
    return "://" not in uri


def connect(uri: str, token: str = "") -> Any:
    """A MilvusClient for `uri`; a local path opens (or creates) a Milvus Lite folder."""
    client_class = _client_class()
    if _is_local(uri):
        if not uri.endswith(".db"):
            raise StoreUnavailable(
                f"SEMSEARCH_MILVUS_URI={uri!r}: a Milvus Lite path must end in .db "
                "(such as var/milvus.db), or give http://host:19530 for a Milvus server"
            )
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    # Milvus Lite logs its own traceback when it cannot open a folder: the error below says it.
    lite_log = logging.getLogger("milvus_lite")
    level = lite_log.level
    lite_log.setLevel(logging.CRITICAL)
    try:
        return client_class(uri=uri, token=token) if token else client_class(uri=uri)
    except Exception as error:
        reason = str(error)
        if _is_local(uri) and ("lock" in reason.lower() or "Open local milvus failed" in reason):
            raise StoreUnavailable(
                f"Milvus Lite folder {uri} is in use by another process (a running "
                "`semsearch serve`?): stop it first, or serve the folder with "
                f"`milvus-lite server --data-dir {uri}` and set SEMSEARCH_MILVUS_URI to its "
                "http:// address"
            ) from None
        raise StoreUnavailable(f"cannot connect to Milvus at {uri}: {reason}") from None
    finally:
        lite_log.setLevel(level)


# Milvus's code for "collection not loaded": a server answers it for some seconds after a
# restart, while it loads the collections back (seen on 2.3.5: ~6 s after /healthz said OK).
_NOT_LOADED = 101


def _unreachable(error: Exception) -> bool:
    text = str(error).lower()
    return any(word in text for word in ("unavailable", "connect", "deadline", "timeout"))


def _not_loaded(error: Exception) -> bool:
    return getattr(error, "code", None) == _NOT_LOADED or "not loaded" in str(error).lower()


def create_unloaded(client: Any, name: str, schema: Any, index: Any) -> None:
    """Create collection `name` and its indexes without loading it (MilvusClient loads a
    collection it creates with indexes): its rows go in unloaded, and `load_indexed` loads it
    once they are all indexed. On a 2.3.5 server each load takes seconds of its timers."""
    call(client.create_collection, name, schema=schema)
    call(client.create_index, name, index)


def load_indexed(
    client: Any, collection: str, *, reload: bool = False, seconds: float = INDEX_WAIT_SECONDS
) -> None:
    """Wait until a server has built every index of `collection` over all its rows, then load
    it (`reload`: it was loaded before, so release it first), so that its searches use them;
    nothing to wait for on Milvus Lite.

    A collection loaded before its indexes are built is searched through a temporary index,
    and a search with a filter that keeps few passages (one article's) finds few or none of
    them: measured on 2.3.5, 100,000 vectors, every such search incomplete before the build,
    13 of 20 once built but not reloaded, none after.

    Raises:
        StoreUnavailable: the indexes were not built within `seconds`.
    """
    deadline = time.monotonic() + seconds
    server = False  # (Milvus Lite gives no row counts: nothing to wait for)
    for name in call(client.list_indexes, collection):
        while True:
            index = call(client.describe_index, collection, name)
            pending, indexed = index.get("pending_index_rows"), index.get("indexed_rows")
            if pending is None:
                break
            server = True
            if pending == 0 and indexed == index.get("total_rows"):
                break
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"Milvus did not build the index {name} of {collection} in {seconds:.0f} s "
                    f"({indexed} of {index.get('total_rows')} rows): try the build again"
                )
            time.sleep(INDEX_POLL_SECONDS)
    if reload and server:
        call(client.release_collection, collection)
    call(client.load_collection, collection)


def flush_and_load(client: Any, names: Sequence[str], *, loaded: Collection[str] = ()) -> None:
    """Flush the new collections `names`, then load each once its indexes are built
    (`load_indexed`; release first those in `loaded`), all at once: on a server each flush and
    each load waits on its timers for about two seconds."""
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        list(pool.map(lambda name: call(client.flush, name), names))
        list(pool.map(lambda name: load_indexed(client, name, reload=name in loaded), names))


def call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the Milvus client; a connection failure, or a server still loading a collection
    (after a restart), becomes StoreUnavailable: a 503 that says to retry, not an error."""
    try:
        return method(*args, **kwargs)
    except Exception as error:
        if _unreachable(error):
            raise StoreUnavailable(f"Milvus cannot be reached: {error}") from None
        if _not_loaded(error):
            raise StoreUnavailable(f"Milvus is not ready (loading collections): {error}") from None
        raise
