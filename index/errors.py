"""The exception tree shared by every layer of semsearch.

    SemsearchError                 base class: the CLI prints it as one line, exit code 2
    ├── CorpusError                the articles folder is missing or holds no article
    ├── BuildRunning               another build of the same index folder holds the build lock
    ├── ModelError                 the embedding model cannot be loaded
    ├── StoreUnavailable           the configured store (Milvus) cannot be reached or used
    └── IndexError_                problems with the on-disk index
        ├── IndexNotFound          nothing built yet: run `semsearch index`
        ├── IndexIncompatible      built with another model, dimension or format version
        └── IndexCorrupt           a file fails its checksum or cannot be read

`search.errors.InvalidQuery` extends the tree for bad queries.
"""

from __future__ import annotations

__all__ = [
    "BuildRunning",
    "CorpusError",
    "IndexCorrupt",
    "IndexError_",
    "IndexIncompatible",
    "IndexNotFound",
    "ModelError",
    "SemsearchError",
    "StoreUnavailable",
]


class SemsearchError(Exception):
    """Base class: the message says what happened and what to do next."""


class CorpusError(SemsearchError):
    """The articles folder is missing, unreadable or holds no article."""


class BuildRunning(SemsearchError):
    """Another build of the same index folder is running (it holds the build lock)."""


class ModelError(SemsearchError):
    """The embedding model could not be loaded."""


class StoreUnavailable(SemsearchError):
    """The configured store cannot be used: a client library is missing, or the engine is
    unreachable, locked by another process or lacks a feature."""


class IndexError_(SemsearchError):  # the trailing underscore avoids the builtin
    """Base class for problems with the on-disk index."""


class IndexNotFound(IndexError_):
    """No published generation exists in the index folder."""


class IndexIncompatible(IndexError_):
    """The index was built with another model, dimension or format version."""


class IndexCorrupt(IndexError_):
    """An index file is missing, truncated or fails its checksum."""
