"""A page is filed under the URL that was fetched: a canonical link or og:url naming
another topic is kept in `declared_url` and changes neither the identity nor the hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.parsing import parse_health_topic

PAGE = Path(__file__).parent / "fixtures" / "pages" / "heatillness_full.html"
OWN = "https://medlineplus.gov/heatillness.html"
OTHER = "https://medlineplus.gov/asthma.html"
MIRROR = "http://127.0.0.1:8000/heatillness.html"


def _declaring(other: str, where: str) -> bytes:
    html = PAGE.read_text(encoding="utf-8")
    if where == "og:url":
        tag = f'<meta property="og:url" content="{other}" />'
        return html.replace("<head>", f"<head>\n{tag}", 1).encode("utf-8")
    old = f'<link rel="canonical" href="{OWN}"'
    assert html.count(old) == 1
    return html.replace(old, f'<link rel="canonical" href="{other}"').encode("utf-8")


@pytest.mark.parametrize("where", ["canonical", "og:url"])
@pytest.mark.parametrize("fetched", [OWN, MIRROR])
def test_a_page_declaring_another_topic_stays_the_topic_fetched(where: str, fetched: str) -> None:
    original = parse_health_topic(PAGE.read_bytes(), OWN)
    page = parse_health_topic(_declaring(OTHER, where), fetched)
    assert (page.url, page.slug, page.language) == (OWN, "heatillness", "en")
    assert page.declared_url == OTHER
    assert page.content_hash == original.content_hash
    assert page.links == original.links  # links still resolve as published


def test_an_agreeing_declaration_is_not_recorded() -> None:
    assert parse_health_topic(PAGE.read_bytes(), MIRROR).declared_url is None


def test_the_topic_url_given_wins_over_the_fetched_url() -> None:
    """After a redirect to a page that is not a topic's, the spider names the topic."""
    page = parse_health_topic(
        _declaring(OTHER, "canonical"), "http://127.0.0.1:8000/x/y", topic_url=OWN
    )
    assert page.url == OWN
    assert page.declared_url == OTHER


def test_a_page_read_from_disk_is_named_by_its_canonical_link() -> None:
    page = parse_health_topic(_declaring(OTHER, "canonical"), "file:///tmp/saved/page.html")
    assert page.url == OTHER
    assert page.declared_url == OWN  # its og:url, which still names heat illness
