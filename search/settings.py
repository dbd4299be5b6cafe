"""Settings: one object read from SEMSEARCH_* environment variables, built at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.embedding import DEFAULT_MODEL
from search.fusion import ARTICLE_WEIGHT, DENSE_WEIGHT

__all__ = ["Fusion", "Mode", "Settings"]

Mode = Literal["hybrid", "dense", "lexical"]
Fusion = Literal["zscore", "rrf"]


class Settings(BaseSettings):
    """Configuration; every field can be set as SEMSEARCH_<NAME> (CLI flags override them)."""

    model_config = SettingsConfigDict(env_prefix="SEMSEARCH_", extra="ignore")

    index_dir: Path = Field(Path("var/index"), description="where the index lives")
    seeds_dir: Path = Field(Path("seeds"), description="the folder of articles to index")
    model: str = Field(DEFAULT_MODEL, description="sentence-transformers name or local folder")
    device: str = Field("cpu", description="torch device for the model")
    batch_size: int = Field(64, ge=1, le=4096, description="texts per forward pass")
    host: str = Field("127.0.0.1", description="address `semsearch serve` binds")
    port: int = Field(8000, ge=1, le=65535, description="port `semsearch serve` binds")
    default_mode: Mode = Field("hybrid", description="mode used when a query names none")
    fusion: Fusion = Field("zscore", description="how hybrid mode combines the two legs")
    dense_weight: float = Field(DENSE_WEIGHT, ge=0, le=1, description="dense share in zscore")
    article_weight: float = Field(
        ARTICLE_WEIGHT, ge=0, le=10, description="weight of the article's best score in hybrid"
    )
