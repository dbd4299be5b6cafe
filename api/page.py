"""The search page at `/` and the HTML view of an article: server-rendered, no external assets."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from semsearch.api.metrics import record_search
from semsearch.index.errors import SemsearchError
from semsearch.index.records import ArticleRecord
from semsearch.search.errors import InvalidQuery, UnknownPassage
from semsearch.search.hits import Hit, shown_answer
from semsearch.search.query import MAX_K, MAX_QUERY_CHARS, MAX_RESULTS, MODES
from semsearch.search.serving import ServiceHolder
from semsearch.search.text import highlight_spans, mark

__all__ = ["article_page", "error_page", "install_page", "page_router", "wants_html"]

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
K_CHOICES = (5, 10, 20, 50, 100)
DEFAULT_K = 10
# A number in a query string: ASCII digits only (str.isdigit also takes "²" and "٣", which
# int() then refuses or reads), and few of them (int() refuses over 4,300 digits).
_NUMBER = re.compile(r"[0-9]{1,9}")

page_router = APIRouter()


def wants_html(request: Request) -> bool:
    """True when the Accept header prefers HTML to JSON (a browser), False otherwise (curl, APIs).

    `*/*` alone answers JSON: only a client that names text/html gets the page.
    """
    html_q, json_q = 0.0, 0.0
    for item in request.headers.get("accept", "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media in ("text/html", "application/xhtml+xml"):
            html_q = max(html_q, q)
        elif media in ("application/json", "application/*", "*/*"):
            json_q = max(json_q, q)
    return html_q > 0 and html_q > json_q


def _article_url(article_id: str, **params: Any) -> str:
    query = urlencode({name: value for name, value in params.items() if value not in (None, "")})
    paragraph = params.get("p")
    return (
        f"/articles/{quote(article_id, safe='/')}"
        + (f"?{query}" if query else "")
        + (f"#p{paragraph}" if paragraph else "")
    )


def _source(url: str) -> str | None:
    """An article's url as a link, only when it is http(s): never `javascript:` or `data:`."""
    return url if url.lower().startswith(("http://", "https://")) else None


def _page_url(**params: Any) -> str:
    """The search page with these parameters (a list repeats its name; empty ones left out)."""
    kept = {name: value for name, value in params.items() if value not in (None, "", [], 0)}
    return "/?" + urlencode(kept, doseq=True)


@page_router.get("/", response_class=HTMLResponse, tags=["page"])
def search_page(
    request: Request,
    q: str | None = None,
    mode: str | None = None,
    k: str | None = None,
    section: Annotated[list[str] | None, Query()] = None,
    after: str | None = None,
    before: str | None = None,
    offset: str | None = None,
    similar: str | None = None,
) -> HTMLResponse:
    """The search page: a search box, and for `?q=...` the best passages with matched words marked
    and each one's answer sentence underlined.

    Takes the same `q`, `mode`, `k`, `section`, `after`, `before` and `offset` as GET /search;
    a bad value is shown on the page. Below the hits: a link to the next ones, and the sections
    of the query's first results, each a link that adds it to the query. Each hit links to the
    passages similar to it: `?similar=<chunk id>` (with `k`) lists those instead of a search.
    """
    holder: ServiceHolder = request.app.state.holder
    mode = mode if mode in MODES else holder.settings.default_mode
    sections = list(dict.fromkeys(section or ()))
    context: dict[str, Any] = {
        "q": q or "",
        "mode": mode,
        "k": DEFAULT_K,
        "modes": MODES,
        "k_choices": K_CHOICES,
        "hits": None,
        "error": None,
        "took_ms": None,
        "offset": 0,
        "filters": {"section": sections, "after": after or "", "before": before or ""},
        "more": None,
        "facets": [],
        "similar": None,
        "dense_only": False,  # hybrid ran without a lexical leg (a Milvus without BM25)
    }
    status = 200
    try:
        if k not in (None, ""):
            number = _number(k)
            if number is None or not 1 <= number <= MAX_K:
                shown = k if len(k) <= 20 else k[:20] + "…"
                raise InvalidQuery(
                    f"the number of results must be from 1 to {MAX_K}, not {shown!r}"
                )
            context["k"] = number
        if offset not in (None, ""):
            skipped = _number(offset)
            if skipped is None or skipped + context["k"] > MAX_RESULTS:
                shown = offset if len(offset) <= 20 else offset[:20] + "…"
                raise InvalidQuery(
                    f"results go {MAX_RESULTS} deep at most: an offset from 0 to "
                    f"{MAX_RESULTS - context['k']} with {context['k']} results, not {shown!r}"
                )
            context["offset"] = skipped
        if similar not in (None, ""):
            chunk_id = _number(similar)
            if chunk_id is None:
                shown = similar if len(similar) <= 20 else similar[:20] + "…"
                raise InvalidQuery(
                    f"a passage is named by its chunk id, a whole number, not {shown!r}"
                )
            started = time.perf_counter()
            with holder.lease() as service:
                found = service.similar(chunk_id, context["k"])
            context["took_ms"] = round((time.perf_counter() - started) * 1000, 1)
            context["similar"] = chunk_id
            context["hits"] = [_shown(hit, None, mode, context["k"]) for hit in found]
        elif q is not None and q.strip():
            timings: dict[str, float] = {}
            started = time.perf_counter()
            # Leased, as for /search: a reload during the search never closes it underneath.
            with holder.lease() as service:
                page = service.search_page(
                    q, k=context["k"], mode=mode, timings=timings, sections=sections,
                    after=after or None, before=before or None, offset=context["offset"],
                )  # fmt: skip
                context["dense_only"] = mode == "hybrid" and service.legs(mode) == ("dense",)
            context["took_ms"] = round((time.perf_counter() - started) * 1000, 1)
            record_search(request, mode, timings)
            here = {"q": q, "mode": mode, "k": context["k"], "after": after, "before": before}
            context["hits"] = [_shown(hit, q, mode, context["k"]) for hit in page.hits]
            if page.more:
                next_offset = context["offset"] + context["k"]
                context["more"] = _page_url(**here, section=sections, offset=next_offset)
            context["facets"] = [
                {
                    "name": name,
                    "count": count,
                    "selected": name in sections,
                    # A click adds the section to the query (or, selected, takes it out).
                    "url": _page_url(
                        **here,
                        section=[s for s in sections if s != name]
                        if name in sections
                        else [*sections, name],
                    ),
                }
                for name, count in page.sections
            ]
    except InvalidQuery as error:
        context["error"] = {"title": "That search cannot be run", "detail": str(error)}
        status = 422
    except UnknownPassage as error:
        context["error"] = {"title": "No such passage", "detail": str(error)}
        status = 404
    except SemsearchError as error:
        context["error"] = {"title": "Search is not available yet", "detail": str(error)}
        status = 503
    return templates.TemplateResponse(request, "search.html", context, status_code=status)


def _shown(hit: Hit, q: str | None, mode: str, k: int) -> dict[str, Any]:
    """What the page shows of a hit: its text marked (query words, answer sentence), links to
    its article and to the passages similar to it, its metadata."""
    return {
        "hit": hit,
        "html": mark(hit.text, hit.highlights, shown_answer(hit)),
        "url": _article_url(hit.article_id, q=q, mode=mode, k=k, p=hit.paragraph),
        "similar": _page_url(similar=str(hit.chunk_id), k=k),  # (0 is an id here)
        "about": _about(hit.section, hit.published, hit.author, hit.tags),
        "source": _source(hit.url),
    }


def _about(section: str, published: str | None, author: str, tags: tuple[str, ...]) -> list[str]:
    """What the page says of an article beside its title, only the parts it has."""
    parts = [part for part in (section, published, author) if part]
    return parts + ([f"tags: {', '.join(tags)}"] if tags else [])


def article_page(request: Request, article_id: str, record: ArticleRecord | None) -> HTMLResponse:
    """An article as a page: every paragraph, the one named by `?p=` highlighted and scrolled to.

    `?q=` marks the query's words, as in the search results.
    """
    context: dict[str, Any]
    if record is None:
        context = {
            "error": {
                "title": "No such article",
                "detail": f"There is no article with id {article_id!r} in the index.",
            }
        }
        return templates.TemplateResponse(request, "article.html", context, status_code=404)
    query = request.query_params.get("q", "")
    if len(query) > MAX_QUERY_CHARS:  # highlighting compiles the query's words into a pattern
        return error_page(
            request,
            422,
            "That query is too long to mark",
            f"the query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}",
        )
    target = _number(request.query_params.get("p", ""))  # a bad ?p= is ignored
    paragraphs, heading = [], ""
    for passage in record.passages:
        paragraphs.append(
            {
                "id": f"p{passage.paragraph}" if passage.part == 0 else None,
                "number": passage.paragraph,
                "part": passage.part,
                "heading": passage.heading if passage.heading != heading else "",
                "html": mark(passage.text, highlight_spans(passage.text, query) if query else []),
                "hit": passage.paragraph == target,
            }
        )
        heading = passage.heading
    context = {
        "article": record,
        "about": _about(record.section, record.published, record.author, record.tags),
        "source": _source(record.url),
        "paragraphs": paragraphs,
        "q": query,
        "target": target,
        "back": _back_url(request),
        "error": None,
    }
    return templates.TemplateResponse(request, "article.html", context)


def _number(text: str) -> int | None:
    """A whole number written in ASCII digits (at most nine), else None."""
    text = text.strip()
    return int(text) if _NUMBER.fullmatch(text) else None


def _back_url(request: Request) -> str:
    """The search page with the query the reader came from, when there was one."""
    params = {name: request.query_params.get(name, "") for name in ("q", "mode", "k")}
    params = {name: value for name, value in params.items() if value}
    return "/?" + urlencode(params) if params.get("q") else "/"


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """A friendly page for an error met by a browser (never a bare JSON body or a blank page)."""
    context = {"error": {"title": title, "detail": detail}}
    return templates.TemplateResponse(request, "error.html", context, status_code=status)


def install_page(app: FastAPI) -> None:
    """Serve the page at `/` and its static files under /static."""
    app.include_router(page_router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
