"""A generation's manifest: the format versions this semsearch reads, and the compatibility check.

Every store records a manifest with each generation (a file beside the FAISS store's files, a
collection property in Milvus): the model and dimension it was built with, the format version,
counts and, for files, their checksums.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semsearch.index.errors import IndexIncompatible

__all__ = ["FORMAT_VERSION", "READABLE_VERSIONS", "check_compatible"]

# 3 added articles_fts, 4 the sentence vectors, 5 the articles' section, date, author and url,
# 6 their tags, 7 (FAISS) common words' stored rows, sentence vectors as 8-bit codes and
# float16 vectors.npy, which an older semsearch would misread; 2 to 6 are still read (without
# those signals: their articles read as having no metadata, or no tags)
FORMAT_VERSION = 7
READABLE_VERSIONS = (2, 3, 4, 5, 6, 7)


def check_compatible(
    manifest: dict[str, Any], index_dir: Path | str, model_id: str | None, dimension: int | None
) -> None:
    """Raise IndexIncompatible unless this semsearch reads the manifest's format and, when
    given, the model and dimension match; `index_dir` names the index in the message."""
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS:
        raise IndexIncompatible(
            f"index at {index_dir} has format version {version}, this semsearch reads "
            f"{' or '.join(map(str, READABLE_VERSIONS))}: rebuild it with `semsearch index`"
        )
    built = manifest.get("model", {})
    if model_id is not None and built.get("id") != model_id:
        raise IndexIncompatible(
            f"index at {index_dir} was built with model {built.get('id')!r} but the configured "
            f"model is {model_id!r}: rebuild with `semsearch index`, or set SEMSEARCH_MODEL to "
            "the model it was built with"
        )
    if dimension is not None and built.get("dimension") != dimension:
        raise IndexIncompatible(
            f"index at {index_dir} holds {built.get('dimension')}-d vectors but the model gives "
            f"{dimension}-d: rebuild it with `semsearch index`"
        )
