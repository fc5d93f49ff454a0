"""Unit tests of the crawl rules: scope, discovery parsing, robots Crawl-delay, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from protego import Protego

from crawler.crawl_delay import robots_crawl_delay
from crawler.parsing.discovery import fetch_url, index_links, is_index_url, on_site, url_list
from crawler.parsing.urls import canonical_url, topic_path
from crawler.retry_after import backoff_seconds, retry_after_seconds

BASE = "http://127.0.0.1:8123"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("https://medlineplus.gov/asthma.html", ("asthma", "en"), id="english"),
        pytest.param("https://medlineplus.gov/spanish/asthma.html", ("asthma", "es"), id="spanish"),
        pytest.param(f"{BASE}/lungcancer.html", ("lungcancer", "en"), id="mirror"),
        pytest.param("https://medlineplus.gov/ency/article/000001.htm", None, id="encyclopedia"),
        pytest.param("https://medlineplus.gov/druginfo/meds/a1.html", None, id="drug-monograph"),
        pytest.param("https://medlineplus.gov/lab-tests/a1c-test/", None, id="lab-tests"),
        pytest.param("https://medlineplus.gov/genetics/condition/x.html", None, id="genetics"),
        pytest.param("https://medlineplus.gov/healthtopics_a.html", None, id="index-page"),
        pytest.param("https://medlineplus.gov/about.html", None, id="site-page"),
        pytest.param("https://medlineplus.gov/spanish/ency/article/1.htm", None, id="spanish-ency"),
    ],
)
def test_topic_path_scope(url: str, expected: tuple[str, str] | None) -> None:
    assert topic_path(url) == expected


def test_canonical_url_moves_a_mirror_url_onto_the_live_site() -> None:
    assert canonical_url(f"{BASE}/spanish/acne.html?x=1#top") == (
        "https://medlineplus.gov/spanish/acne.html"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(f"{BASE}/asthma.html", True, id="mirror-host"),
        pytest.param("https://medlineplus.gov/asthma.html", True, id="live-host"),
        pytest.param("https://example.org/asthma.html", False, id="other-host"),
        pytest.param("mailto:someone@example.org", False, id="mailto"),
        pytest.param("javascript:alert(1)", False, id="javascript"),
    ],
)
def test_on_site(url: str, expected: bool) -> None:
    assert on_site(url, BASE) is expected


def test_index_links_are_lenient_on_markup_and_strict_on_scope() -> None:
    body = b"""<html><body>
      <a href="https://medlineplus.gov/asthma.html">Asthma</a>
      <a href="/allergy.html">Allergy</a> <a href="acne.html">Acne</a>
      <a href="/asthma.html">Asthma again</a>
      <a href="healthtopics_b.html">B</a>
      <a href="https://medlineplus.gov/ency/article/000001.htm">ency</a>
      <a href="/druginfo/meds/a1.html">drug</a>
      <a href="https://example.org/arthritis.html">elsewhere</a>
      <a>no href</a>
    </body></html>"""
    links = index_links(body, f"{BASE}/healthtopics_a.html", BASE)
    assert links.topic_pages == [
        "https://medlineplus.gov/asthma.html",
        "https://medlineplus.gov/allergy.html",
        "https://medlineplus.gov/acne.html",
    ]
    assert links.index_pages == [f"{BASE}/healthtopics_b.html"]


def test_index_url_recognition() -> None:
    assert is_index_url("https://medlineplus.gov/spanish/healthtopics_xyz.html")
    assert is_index_url("https://medlineplus.gov/healthtopics.html")
    assert not is_index_url("https://medlineplus.gov/asthma.html")
    assert fetch_url("https://medlineplus.gov/spanish/acne.html", BASE + "/") == (
        f"{BASE}/spanish/acne.html"
    )


def test_index_links_follow_letter_pages_whatever_their_names() -> None:
    """The live site's letter pages include healthtopics_xyz.html and (Spanish)
    healthtopics_0-9.html; its topics sit in `li.item > a`."""
    body = b"""<html><body>
      <ul class="alpha-links">
        <li><a href="https://medlineplus.gov/spanish/healthtopics_0-9.html">0-9</a></li>
        <li><a href="/spanish/healthtopics_a.html">A</a></li>
        <li><a href="healthtopics_xyz.html">X-Y-Z</a></li>
      </ul>
      <ul id="index"><li class="item"><a href="https://medlineplus.gov/spanish/acne.html">Acne</a>
      </li></ul>
    </body></html>"""
    links = index_links(body, f"{BASE}/spanish/healthtopics_a.html", BASE)
    assert links.index_pages == [
        f"{BASE}/spanish/healthtopics_0-9.html",
        f"{BASE}/spanish/healthtopics_a.html",
        f"{BASE}/spanish/healthtopics_xyz.html",
    ]
    assert links.topic_pages == ["https://medlineplus.gov/spanish/acne.html"]
    assert is_index_url("https://medlineplus.gov/healthtopics_xyz.html")
    assert not is_index_url("https://medlineplus.gov/healthtopics_a/b.html")


def test_url_list_skips_comments_and_blank_lines() -> None:
    text = "# topics\n\nhttps://medlineplus.gov/asthma.html\n  https://medlineplus.gov/acne.html \n"
    assert list(url_list(text)) == [
        "https://medlineplus.gov/asthma.html",
        "https://medlineplus.gov/acne.html",
    ]


class _WrappedParser:
    """Scrapy < 2.15 robot parsers: no crawl_delay() of their own, a Protego parser as .rp."""

    def __init__(self, robots: str) -> None:
        self.rp = Protego.parse(robots)


@pytest.mark.parametrize(
    ("robots", "expected"),
    [
        pytest.param("User-agent: *\nCrawl-delay: 2\n", 2.0, id="everyone"),
        pytest.param("User-agent: *\nDisallow: /x\n", None, id="none"),
        pytest.param(
            "User-agent: medlineplus-archive\nCrawl-delay: 5\n\nUser-agent: *\nCrawl-delay: 1\n",
            5.0,
            id="our-agent-wins",
        ),
    ],
)
def test_robots_crawl_delay(robots: str, expected: float | None) -> None:
    agent = "medlineplus-archive/0.1 (+https://example.org)"
    assert robots_crawl_delay(_WrappedParser(robots), agent) == expected


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(b"120", now) == 120.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds(b"soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(n, 2.0, 10.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 10.0]
