"""Pathological pages are extraction errors naming their cause, never a version with
content missing; the limits sit far above what the real pages of the corpus reach."""

from __future__ import annotations

from pathlib import Path

import pytest
from parsel import Selector

from crawler.parsing import parse_health_topic
from crawler.parsing.errors import ExtractionError
from crawler.parsing.health_topic import MAX_NESTING, MAX_PAGE_BYTES

PAGE = Path(__file__).parent / "fixtures" / "pages" / "heatillness_full.html"
URL = "https://medlineplus.gov/heatillness.html"
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "medlineplus"
MARGIN = 10
"""How many times the deepest nesting and the largest page of the corpus each limit allows."""


def _nested_in_summary(depth: int) -> str:
    html = PAGE.read_text(encoding="utf-8")
    start = html.index('<div id="topic-summary"')
    start = html.index(">", start) + 1
    return html[:start] + "<div>" * depth + "deep" + "</div>" * depth + html[start:]


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 10_000])
def test_nesting_past_the_limit_is_an_error_naming_it(depth: int) -> None:
    with pytest.raises(ExtractionError) as raised:
        parse_health_topic(_nested_in_summary(depth).encode("utf-8"), URL)
    assert raised.value.field == "html"
    assert f"nested more than {MAX_NESTING} deep" in raised.value.reason


def test_nesting_within_the_limit_is_a_page() -> None:
    page = parse_health_topic(_nested_in_summary(MAX_NESTING - 30).encode("utf-8"), URL)
    assert page.summary_text.startswith("deep")


def test_a_body_over_the_limit_is_an_error_naming_its_size() -> None:
    html = PAGE.read_text(encoding="utf-8")
    padded = html.replace("</body>", "<p>" + "x" * MAX_PAGE_BYTES + "</p></body>")
    with pytest.raises(ExtractionError) as raised:
        parse_health_topic(padded.encode("utf-8"), URL)
    assert raised.value.field == "html"
    assert f"{len(padded.encode()):,} bytes" in raised.value.reason


def test_an_empty_summary_is_an_error() -> None:
    html = PAGE.read_text(encoding="utf-8")
    start = html.index('<div id="topic-summary"')
    start = html.index(">", start) + 1
    end = html.index('<p class="attribution"', start)
    with pytest.raises(ExtractionError) as raised:
        parse_health_topic((html[:start] + " <p> </p> " + html[end:]).encode("utf-8"), URL)
    assert raised.value.field == "summary_text"


def _corpus_pages() -> list[Path]:
    pages = sorted((CORPUS / "pages").glob("*.html"))
    if not pages:
        pytest.skip(f"real MedlinePlus pages not found at {CORPUS / 'pages'}")
    return pages


def _depth(selector: Selector) -> int:
    """Elements on the longest root-to-leaf path (the html element counts 1)."""
    return max(len(leaf.xpath("ancestor::*")) + 1 for leaf in selector.xpath("//*[not(*)]"))


def test_limits_leave_a_wide_margin_over_the_real_pages() -> None:
    pages = _corpus_pages()
    largest = max(page.stat().st_size for page in pages)
    deepest = max(_depth(Selector(text=page.read_text(encoding="utf-8"))) for page in pages)
    assert largest * MARGIN < MAX_PAGE_BYTES
    assert deepest * MARGIN < MAX_NESTING
