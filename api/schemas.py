"""Request and response models of the HTTP API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from semsearch.search.errors import InvalidQuery
from semsearch.search.service import MAX_K, MAX_QUERY_CHARS, check_query_text

__all__ = [
    "ArticleResponse",
    "HealthResponse",
    "HitModel",
    "PassageModel",
    "SearchParams",
    "SearchRequest",
    "SearchResponse",
    "StatsResponse",
]

ModeName = Literal["hybrid", "dense", "lexical"]


def _not_blank(value: str) -> str:
    try:
        check_query_text(value)
    except InvalidQuery as error:  # pydantic reports ValueErrors as 422 details
        raise ValueError(str(error)) from None
    return value


class SearchRequest(BaseModel):
    """Body of POST /search."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="free text")
    k: int = Field(10, ge=1, le=MAX_K, strict=True, description="number of hits")
    mode: ModeName = Field("hybrid", description="hybrid, dense or lexical")
    per_article: int | None = Field(
        None, ge=1, le=MAX_K, strict=True, description="at most this many hits per article"
    )
    collapse: bool = Field(True, strict=True, description="show near-duplicate passages once")
    article: str | None = Field(
        None, min_length=1, max_length=1024, description="search only this article (its id)"
    )

    _check_query = field_validator("query")(_not_blank)


class SearchParams(BaseModel):
    """Query string of GET /search."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="free text")
    k: int = Field(10, ge=1, le=MAX_K, description="number of hits")
    mode: ModeName = Field("hybrid", description="hybrid, dense or lexical")
    per_article: int | None = Field(None, ge=1, le=MAX_K, description="at most N hits per article")
    collapse: bool = Field(True, description="show near-duplicate passages once")
    article: str | None = Field(
        None, min_length=1, max_length=1024, description="search only this article (its id)"
    )

    _check_query = field_validator("q")(_not_blank)


class HitModel(BaseModel):
    """One ranked passage; `snippet` is HTML-escaped text with query terms in <mark>."""

    rank: int
    score: float
    article_id: str
    title: str
    paragraph: int = Field(description="1-based paragraph number in the article")
    part: int = Field(description="0, or the piece of a paragraph too long for the model")
    heading: str
    text: str
    snippet: str
    highlights: list[tuple[int, int]] = Field(description="[start, end) spans of text to mark")
    start: int = Field(description="character offset of the passage in the source file")
    end: int
    chunk_id: int
    dense_rank: int | None
    dense_score: float | None = Field(
        description="the passage's cosine, raised toward its best sentence's (the value fused)"
    )
    lexical_rank: int | None
    lexical_score: float | None
    also_in: list[str] = Field(
        description="other articles holding a near-duplicate of this passage"
    )


class SearchResponse(BaseModel):
    query: str
    mode: ModeName
    k: int
    took_ms: float
    hits: list[HitModel]


class HealthResponse(BaseModel):
    status: Literal["ok"]
    index: Literal["loaded", "missing"]
    generation: str | None
    detail: str | None = None


class StatsResponse(BaseModel):
    articles: int
    passages: int
    model: str
    dimension: int
    generation: str
    built_at: str
    source: str | None = Field(
        description="the folder the articles were read from; only with the admin token"
    )
    index_dir: str | None = Field(description="the index folder; only with the admin token")
    store: Literal["faiss", "milvus"] = Field(description="the store searched (SEMSEARCH_STORE)")


class PassageModel(BaseModel):
    paragraph: int
    part: int
    heading: str
    text: str
    start: int
    end: int


class ArticleResponse(BaseModel):
    id: str
    title: str
    paragraphs: list[PassageModel]
