"""Settings: one object read from SEMSEARCH_* environment variables, built at start-up."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from semsearch.index.embedders import make_embedder
from semsearch.index.embedding import DEFAULT_BATCH_SIZE, DEFAULT_MODEL, Embedder
from semsearch.index.store_choice import make_store
from semsearch.index.stores import Store, VectorIndexSpec
from semsearch.search.fusion import (
    ARTICLE_WEIGHT,
    ARTICLE_WORDS_WEIGHT,
    DENSE_ANCHOR,
    DENSE_WEIGHT,
    SENTENCE_WEIGHT,
)

__all__ = [
    "MIN_ADMIN_TOKEN_CHARS",
    "Fusion",
    "Mode",
    "Settings",
    "embedder_for",
    "store_for",
    "vector_index_spec",
]

Mode = Literal["hybrid", "dense", "lexical"]
Fusion = Literal["bounded", "zscore", "rrf"]

# The shortest admin token accepted: 32 characters of a random token are about 190 bits.
MIN_ADMIN_TOKEN_CHARS = 32
# Settings renamed, by their old environment variable: still read, with a warning.
RENAMED = {"SEMSEARCH_BACKEND": "store", "SEMSEARCH_EMBEDDING_BACKEND": "embedding_runtime"}


class Settings(BaseSettings):
    """Configuration; every field can be set as SEMSEARCH_<NAME> (CLI flags override them)."""

    model_config = SettingsConfigDict(env_prefix="SEMSEARCH_", extra="ignore")

    index_dir: Path = Field(Path("var/index"), description="where the index lives")
    seeds_dir: Path = Field(Path("seeds"), description="the folder of articles to index")
    model: str = Field(DEFAULT_MODEL, description="sentence-transformers name or local folder")
    device: str = Field("cpu", description="torch device for the model")
    embedding_runtime: Literal["auto", "openvino", "torch"] = Field(
        "auto", description="what runs the model: OpenVINO on the CPU when it exports, else torch"
    )
    threads: int = Field(0, ge=0, le=1024, description="inference threads; 0 uses every core")
    model_cache: Path | None = Field(
        None, description="where OpenVINO exports are kept; the index folder's models/ if unset"
    )
    batch_size: int = Field(DEFAULT_BATCH_SIZE, ge=1, le=4096, description="texts per forward pass")
    host: str = Field("127.0.0.1", description="address `semsearch serve` binds")
    port: int = Field(8000, ge=1, le=65535, description="port `semsearch serve` binds")
    store: Literal["faiss", "milvus"] = Field(
        "faiss", description="where passages are stored: FAISS + SQLite files, or Milvus"
    )
    milvus_uri: str = Field(
        "var/milvus.db",
        description="Milvus Lite file (one machine) or http://host:19530 (a Milvus server)",
    )
    milvus_token: SecretStr | None = Field(None, description="Milvus token (user:password)")
    milvus_collection: str = Field(
        "semsearch", description="Milvus alias searched; generations are collections behind it"
    )
    milvus_index: Literal["hnsw", "flat"] = Field(
        "hnsw", description="Milvus vector index: HNSW, or FLAT for exact search"
    )
    faiss_index: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto", description="FAISS index: exact up to faiss_flat_max passages, IVF-SQ8 beyond"
    )
    faiss_flat_max: int = Field(50_000, ge=0, description="largest index searched exactly")
    hnsw_m: int = Field(32, ge=4, le=256, description="HNSW links per node")
    hnsw_ef_search: int = Field(128, ge=1, le=4096, description="HNSW search breadth")
    ivf_nprobe: int = Field(64, ge=1, le=65536, description="IVF lists searched per query")
    query_cache_size: int = Field(1024, ge=0, description="query embeddings kept in memory")
    search_concurrency: int = Field(
        0,
        ge=0,
        le=4096,
        description="searches run at once, the rest wait their turn; 0: one per core "
        "(FAISS), four per core (Milvus, which searches in its own server)",
    )
    default_mode: Mode = Field("hybrid", description="mode used when a query names none")
    fusion: Fusion = Field("bounded", description="how hybrid mode combines the two legs")
    dense_weight: float = Field(
        DENSE_WEIGHT, ge=0, le=1, description="dense share in bounded and zscore fusion"
    )
    article_weight: float = Field(
        ARTICLE_WEIGHT, ge=0, le=10, description="weight of the article's best score in hybrid"
    )
    article_words_weight: float = Field(
        ARTICLE_WORDS_WEIGHT,
        ge=0,
        le=10,
        description="weight of the article's own BM25 (all its words) in hybrid and lexical",
    )
    dense_anchor: int = Field(
        DENSE_ANCHOR,
        ge=0,
        le=100,
        description="hybrid shows the dense leg's best passage among its first this many hits; "
        "0: off",
    )
    sentence_weight: float = Field(
        SENTENCE_WEIGHT,
        ge=0,
        le=1,
        description="how far a passage's cosine moves toward its best sentence's; 0: off",
    )
    sentence_vectors: bool = Field(
        True, description="embed each passage's sentences too when building (FAISS store)"
    )
    formats: str = Field(
        "txt,md,html,jsonl",
        description="comma-separated article formats `semsearch index` reads: txt, md (and "
        ".markdown), html (and .htm), jsonl",
    )
    follow_symlinks: bool = Field(
        False,
        description="index files and folders that symlinks in the seeds folder point to outside "
        "it; off: such links are skipped with a warning",
    )
    admin_token: SecretStr | None = Field(
        None, description="bearer token of the /admin endpoints; unset: they do not exist"
    )
    cors_origins: str = Field(
        "", description="comma-separated origins allowed to call the API from a browser; empty: off"
    )
    reload_interval: float = Field(
        2.0, ge=0, le=3600, description="seconds between checks of CURRENT by the server; 0: off"
    )
    allowed_hosts: str = Field(
        "",
        description="comma-separated Host header values the server answers (`*` any); empty: "
        "the loopback names when bound to loopback, any host otherwise",
    )
    max_requests: int = Field(
        32,
        ge=1,
        le=100_000,
        description="requests handled at once, /health and /metrics aside; more get a 503 "
        "with Retry-After",
    )
    keep_alive_timeout: float = Field(
        5.0, gt=0, le=3600, description="seconds an idle HTTP connection is kept open"
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="seconds a client has to send a request's headers, from connecting or from "
        "the previous answer; then the connection is closed",
    )

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        """An admin token is a secret a client must not guess: refuse a short one."""
        if token is not None and 0 < len(token.get_secret_value()) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(
                f"an admin token of {len(token.get_secret_value())} characters is too easy to "
                f"guess: use at least {MIN_ADMIN_TOKEN_CHARS}, such as the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return token

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        """Read a renamed setting's old environment variable when the new one is not set."""
        if not isinstance(data, dict):
            return data
        for old, field in RENAMED.items():
            old_field = old.removeprefix("SEMSEARCH_").lower()
            if old_field in data:  # Settings(backend=...): the old name as an argument
                value, data = data[old_field], {k: v for k, v in data.items() if k != old_field}
                old, new = f"Settings({old_field}=...)", f"Settings({field}=...)"
            else:
                value, new = os.environ.get(old), "SEMSEARCH_" + field.upper()
            if value is not None and field not in data:
                warnings.warn(
                    f"{old} is deprecated and will be removed: set {new} instead",
                    FutureWarning,
                    stacklevel=2,
                )
                data = {**data, field: value}
        return data


def vector_index_spec(settings: Settings) -> VectorIndexSpec:
    """The FAISS index choice named by the settings."""
    return VectorIndexSpec(
        kind=settings.faiss_index,
        flat_max=settings.faiss_flat_max,
        hnsw_m=settings.hnsw_m,
        ef_search=settings.hnsw_ef_search,
        ivf_nprobe=settings.ivf_nprobe,
    )


def embedder_for(settings: Settings) -> Embedder:
    """The embedder the settings name; OpenVINO exports are kept in the index folder's models/."""
    return make_embedder(
        settings.model,
        runtime=settings.embedding_runtime,
        device=settings.device,
        batch_size=settings.batch_size,
        threads=settings.threads,
        cache_dir=settings.model_cache or settings.index_dir / "models",
    )


def store_for(settings: Settings) -> Store:
    """The store the settings name: FAISS + SQLite in the index folder, or Milvus.

    Raises:
        StoreUnavailable: Milvus is named but pymilvus is not installed or cannot connect.
    """
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    return make_store(
        settings.store,
        settings.index_dir,
        milvus_uri=settings.milvus_uri,
        milvus_token=token,
        milvus_collection=settings.milvus_collection,
        milvus_index=settings.milvus_index,
        hnsw_m=settings.hnsw_m,
        hnsw_ef_search=settings.hnsw_ef_search,
    )
