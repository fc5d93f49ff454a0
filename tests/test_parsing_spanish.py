"""Spanish summaries as MedlinePlus serves them: the attribution wherever the editor left
it, unknown elements unwrapped, only allowlisted markup kept, links absolute.

The real fragments of ../shared/corpus/medlineplus/spanish/ (skipped when absent) are
wrapped in the minimal page a health topic needs; fixtures/spanish/pertussis.html is a
hand-written page with each kind of stray markup once. Expectations are read from the
raw HTML with regular expressions, never with the parser's helpers.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from lxml import html as lxml_html

from crawler.parsing import parse_health_topic
from crawler.parsing.items import HealthTopicPage

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "medlineplus"
FRAGMENTS = CORPUS / "spanish"
PERTUSSIS = Path(__file__).parent / "fixtures" / "spanish" / "pertussis.html"

KEPT_TAGS = {"p", "h3", "ul", "li", "a", "em", "strong", "br"}
"""Every element the summaries here use that a reader needs."""

_ATTRIBUTION = re.compile(r'class="attribution">([^<]*)<')
_SKELETON = """<!DOCTYPE html><html lang="es" id="health_topic"><head><meta charset="utf-8">
<link rel="canonical" href="https://medlineplus.gov/spanish/{slug}.html"></head><body>
<div class="page-title"><h1>{slug}</h1></div><section id="topsum_section">{fragment}
</section></body></html>"""


def _fragment(name: str) -> str:
    path = FRAGMENTS / f"{name}.html"
    if not path.is_file():
        pytest.skip(f"real Spanish fragment not found at {path} (the shared corpus is optional)")
    return path.read_text(encoding="utf-8")


def _parse_fragment(name: str) -> HealthTopicPage:
    page = _SKELETON.format(slug=name, fragment=_fragment(name))
    return parse_health_topic(page.encode("utf-8"), f"https://medlineplus.gov/spanish/{name}.html")


def _elements(markup: str) -> list[lxml_html.HtmlElement]:
    return list(lxml_html.fragment_fromstring(markup, create_parent="div").iterdescendants())


def _assert_clean(page: HealthTopicPage) -> None:
    """Only allowlisted elements and attributes; every link absolute on medlineplus.gov."""
    for element in _elements(page.summary_html):
        assert element.tag in KEPT_TAGS, element.tag
        allowed = {"href", "tid"} if element.tag == "a" else set()
        assert set(element.attrib) <= allowed, (element.tag, dict(element.attrib))
        if element.get("href") is not None:  # a javascript: link keeps no URL at all
            assert element.get("href", "").startswith("https://medlineplus.gov/")
    assert "/../" not in page.summary_html
    assert "/./" not in page.summary_html
    assert "<" not in page.summary_text


def test_real_attribution_inside_ph3_fills_the_attribution_field() -> None:
    source = _fragment("diabetestype1")
    (expected,) = _ATTRIBUTION.findall(source)
    assert "<ph3>" in source  # the fragment still holds what this test is about
    page = _parse_fragment("diabetestype1")
    assert page.summary_attribution == " ".join(html.unescape(expected).split())
    assert page.summary_attribution not in page.summary_text
    assert "attribution" not in page.summary_html
    assert "NIH:" not in page.summary_html


def test_real_summary_keeps_only_allowlisted_markup_and_absolute_links() -> None:
    source = _fragment("diabetestype1")
    page = _parse_fragment("diabetestype1")
    _assert_clean(page)
    assert "ph3" not in page.summary_html
    links = [e.get("href") for e in _elements(page.summary_html) if e.tag == "a"]
    assert len(links) == source.count("<a href=")
    assert "https://medlineplus.gov/spanish/bloodglucose.html" in links
    assert "https://medlineplus.gov/spanish/a1c.html" in links
    # the unwrapped <ph3>'s own text is a block of the summary text, not lost
    assert "¿Cuáles son los síntomas de la diabetes tipo 1?" in page.summary_text.split("\n")


def test_real_topic_placeholder_is_unwrapped_without_repeating_its_text() -> None:
    source = _fragment("streptococcalinfections")
    assert "<topic " in source
    page = _parse_fragment("streptococcalinfections")
    _assert_clean(page)
    assert "topic" not in page.summary_html.replace("medlineplus.gov", "")
    assert page.summary_attribution is None
    assert "como un resfriado o la gripe" in page.summary_text
    assert "gripegripe" not in page.summary_text.replace(" ", "")
    # the nested list survives: a ul inside a li
    assert any(e.tag == "ul" and e.getparent().tag == "li" for e in _elements(page.summary_html))


def test_attribution_in_any_unknown_element_and_links_resolved() -> None:
    source = PERTUSSIS.read_text(encoding="utf-8")
    (expected,) = _ATTRIBUTION.findall(source)
    page = parse_health_topic(
        PERTUSSIS.read_bytes(), "https://medlineplus.gov/spanish/whoopingcough.html"
    )
    assert page.summary_attribution == expected
    assert expected not in page.summary_text
    _assert_clean(page)
    for unknown in ("tph3", "pnote", "topic", "onclick", "javascript", "resumen"):
        assert unknown not in page.summary_html, unknown
    links = [e.get("href") for e in _elements(page.summary_html) if e.tag == "a"]
    assert links == [
        "https://medlineplus.gov/spanish/bacterialinfections.html",
        "https://medlineplus.gov/spanish/cough.html",
        "https://medlineplus.gov/spanish/infantandnewborncare.html",
        None,
    ]
    assert "¿Quién tiene más probabilidades de contraerla?" in page.summary_text.split("\n")
    assert page.summary_text.split("\n")[-1] == "Adultos mayores"
