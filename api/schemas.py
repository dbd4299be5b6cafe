"""Request and response models of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from semsearch.search.errors import InvalidQuery
from semsearch.search.query import (
    MAX_RESULTS,
    MAX_SECTION_CHARS,
    MAX_SECTIONS,
    check_date,
    check_offset,
    check_sections,
    make_filter,
)
from semsearch.search.service import MAX_K, MAX_QUERY_CHARS, check_query_text

__all__ = [
    "AnswerModel",
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
# Checked by the search service (`search.query`), whose 422 says what is wrong with them.
SectionName = Annotated[str, Field(max_length=MAX_SECTION_CHARS)]
SECTION = "search only articles of this section (repeat it: any of them)"
AFTER = "only articles published on or after this date (YYYY-MM-DD, inclusive)"
BEFORE = "only articles published on or before this date (YYYY-MM-DD, inclusive)"
OFFSET = f"skip this many hits first (the next page: offset + k); offset + k <= {MAX_RESULTS}"


def _not_blank(value: str) -> str:
    try:
        check_query_text(value)
    except InvalidQuery as error:  # pydantic reports ValueErrors as 422 details
        raise ValueError(str(error)) from None
    return value


def _date(value: str | None, info: ValidationInfo) -> str | None:
    try:
        return None if value is None else check_date(value, info.field_name or "date")
    except InvalidQuery as error:
        raise ValueError(str(error)) from None


def _sections(value: list[str]) -> list[str]:
    try:
        check_sections(value)
    except InvalidQuery as error:
        raise ValueError(str(error)) from None
    return value


class _Filtered(BaseModel):
    """The checks across fields shared by both search requests (as the service makes them)."""

    k: int
    offset: int
    after: str | None
    before: str | None

    @model_validator(mode="after")
    def _check_page_and_dates(self) -> _Filtered:
        try:
            check_offset(self.k, self.offset)
            make_filter(after=self.after, before=self.before)
        except InvalidQuery as error:
            raise ValueError(str(error)) from None
        return self


class SearchRequest(_Filtered):
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
    section: list[SectionName] = Field(
        default_factory=list, max_length=MAX_SECTIONS, description=SECTION
    )
    after: str | None = Field(None, max_length=32, description=AFTER)
    before: str | None = Field(None, max_length=32, description=BEFORE)
    offset: int = Field(0, ge=0, lt=MAX_RESULTS, strict=True, description=OFFSET)

    _check_query = field_validator("query")(_not_blank)
    _check_dates = field_validator("after", "before")(_date)
    _check_sections = field_validator("section")(_sections)


class SearchParams(_Filtered):
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
    section: list[SectionName] = Field(
        default_factory=list, max_length=MAX_SECTIONS, description=SECTION
    )
    after: str | None = Field(None, max_length=32, description=AFTER)
    before: str | None = Field(None, max_length=32, description=BEFORE)
    offset: int = Field(0, ge=0, lt=MAX_RESULTS, description=OFFSET)

    _check_query = field_validator("q")(_not_blank)
    _check_dates = field_validator("after", "before")(_date)
    _check_sections = field_validator("section")(_sections)


class AnswerModel(BaseModel):
    """A span of a hit's `text`: [start, end) character offsets."""

    model_config = ConfigDict(from_attributes=True)

    start: int
    end: int


class ScorePartsModel(BaseModel):
    """What a hit's score adds up from: `passage + article + article_words` (an anchored hit
    instead takes the score of the hit it passed)."""

    model_config = ConfigDict(from_attributes=True)

    passage: float = Field(
        description="the passage's own score: fused in hybrid mode, its cosine in dense mode, "
        "its BM25 over the query's ceiling in lexical mode"
    )
    article: float = Field(description="added by its article's best passage (the article boost)")
    article_words: float = Field(description="added by its article's BM25, the article as a whole")
    dense: float | None = Field(
        None, description="bounded hybrid: the cosine fused, raised toward its best sentence's"
    )
    lexical: float | None = Field(
        None,
        description="bounded hybrid: its BM25 over the most the query could score (the leg's "
        "lowest where the lexical leg did not find it)",
    )
    dense_weight: float | None = Field(
        None, description="bounded hybrid: passage = dense_weight x dense + (1 - it) x lexical"
    )


class HitModel(BaseModel):
    """One ranked passage; `snippet` is HTML-escaped text with query terms in <mark>."""

    rank: int
    score: float
    article_id: str
    title: str
    section: str = Field(description="the article's section; empty when it has none")
    published: str | None = Field(description="the article's date, YYYY-MM-DD, when known")
    author: str = Field(description="the article's author; empty when unknown")
    url: str = Field(description="where the article was published; empty when unknown")
    tags: list[str] = Field(description="the article's tags (front matter, JSONL, page metadata)")
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
    answer: AnswerModel | None = Field(
        None,
        description="the sentence of `text` nearest to the query's vector, [start, end); null "
        "in lexical mode, for similar passages, and where the index keeps no sentence vectors",
    )
    anchored: bool = Field(
        False,
        description="hybrid: the dense leg's best passage, moved up to this rank (its score is "
        "the one of the hit it passed) because the fused scores ranked it lower "
        "(SEMSEARCH_DENSE_ANCHOR)",
    )
    score_parts: ScorePartsModel | None = Field(
        None, description="what `score` adds up from; null for similar passages"
    )


class SearchResponse(BaseModel):
    query: str
    mode: ModeName
    k: int
    offset: int = Field(description="hits skipped before these (their ranks start at offset + 1)")
    took_ms: float
    legs: list[Literal["dense", "lexical"]] = Field(
        description="the legs that ran: hybrid is dense alone where the index has no lexical "
        "leg (a Milvus server without full-text search, before 2.5)"
    )
    hits: list[HitModel]


class HealthResponse(BaseModel):
    status: Literal["ok", "unavailable"] = Field(
        description="unavailable (HTTP 503): the store server (Milvus) cannot be reached"
    )
    index: Literal["loaded", "missing"]
    generation: str | None
    store: Literal["ok", "unreachable"] = Field(
        "ok", description="whether the store answers (a Milvus server; FAISS is in-process)"
    )
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
    section: str
    published: str | None
    author: str
    url: str
    tags: list[str]
    paragraphs: list[PassageModel]
