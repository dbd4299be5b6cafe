"""The search page in a real Chromium: type a query, read highlighted hits, open the article."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.model]

QUERY = "attacks on energy infrastructure"


def search(page, query: str = QUERY) -> None:
    page.goto("/")
    page.fill("#q", query)
    page.press("#q", "Enter")
    page.wait_for_selector("#hits .hit")


def in_viewport(page, selector: str) -> bool:
    return page.eval_on_selector(
        selector,
        "e => { const r = e.getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= window.innerHeight; }",
    )


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_query_shows_highlighted_passages(page, screenshot_dir: Path) -> None:
    search(page)
    assert re.search(r"/\?q=attacks\+on\+energy\+infrastructure&mode=hybrid&k=10$", page.url)
    assert page.locator("#hits .hit").count() == 10
    first = page.locator("#hits .hit").first
    marked = first.locator(".hit-text mark").all_inner_texts()
    assert {word.lower() for word in marked} & {"attacks", "energy", "infrastructure"}
    assert "000_9d59a1cdc1672ff3.txt" in first.locator(".hit-meta").inner_text()
    assert re.match(r"score -?\d+\.\d{4}", first.get_attribute("title"))
    score = first.locator(".hit-score")
    assert score.evaluate("e => getComputedStyle(e).opacity") == "0"
    first.hover()
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('.hit-score')).opacity === '1'"
    )
    page.mouse.move(0, 0)
    page.screenshot(path=screenshot_dir / "search.png")
    assert is_png(screenshot_dir / "search.png")


def test_hit_opens_the_article_at_its_paragraph(page, screenshot_dir: Path) -> None:
    search(page)
    hit = page.locator("#hits .hit-link").nth(2)
    paragraph = re.search(r"[?&]p=(\d+)", hit.get_attribute("href")).group(1)
    hit.click()
    page.wait_for_selector(".para.hit")
    assert page.url.endswith(f"#p{paragraph}")
    assert page.locator(".para.hit").first.get_attribute("id") == f"p{paragraph}"
    assert in_viewport(page, ".para.hit")
    assert page.locator(".para").count() > page.locator(".para.hit").count() > 0
    page.screenshot(path=screenshot_dir / "article.png")
    page.click(".back")
    page.wait_for_selector("#hits .hit")
    assert page.input_value("#q") == QUERY


def test_keyboard_only(page) -> None:
    page.goto("/")
    assert page.evaluate("document.activeElement.id") == "q"  # autofocus on the blank page
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("who negotiated for Ukraine")
    page.keyboard.press("Enter")
    page.wait_for_selector("#hits .hit")
    page.keyboard.press("/")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.className") == "hit-link"
    second = page.locator("#hits .hit-link").nth(1).get_attribute("href")
    assert page.evaluate("document.activeElement.getAttribute('href')") == second
    page.keyboard.press("Enter")
    page.wait_for_selector(".para.hit")
    page.keyboard.press("Escape")
    page.wait_for_selector("#hits .hit")
    assert "q=who+negotiated+for+Ukraine" in page.url


def test_mode_and_k_controls_rerun_the_search(page) -> None:
    search(page)
    page.select_option("#mode", "lexical")
    page.wait_for_url(re.compile(r"mode=lexical"))
    page.select_option("#k", "5")
    page.wait_for_url(re.compile(r"mode=lexical&k=5"))
    assert page.locator("#hits .hit").count() <= 5
    assert "lexical" in page.inner_text("#summary")


def test_shared_url_and_empty_results(page) -> None:
    page.goto("/?q=zebra+quantum+xylophone&mode=lexical")
    assert "No passages match" in page.inner_text("#empty")
    assert page.input_value("#q") == "zebra quantum xylophone"
    page.goto("/?q=" + "x" * 1001)
    assert "the limit is 1000" in page.inner_text("[role=alert]")


def test_phone_width(browser, server: str, screenshot_dir: Path) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=1, base_url=server
    )
    try:
        page = context.new_page()
        search(page, "power outages")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.locator("#hits .hit-score").first.is_visible()
        page.screenshot(path=screenshot_dir / "phone.png")
        page.locator("#hits .hit-link").first.click()
        page.wait_for_selector(".para.hit")
        assert in_viewport(page, ".para.hit")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()
