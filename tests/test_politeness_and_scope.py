"""Unit tests of the crawl rules: scope, discovery parsing, robots Crawl-delay, Retry-After."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from protego import Protego

from crawler.crawl_delay import robots_crawl_delay
from crawler.discovery import (
    DiscoveryError,
    fetch_url,
    index_links,
    is_index_url,
    on_site,
    url_list,
    xml_topic_urls,
)
from crawler.retry_after import backoff_seconds, retry_after_seconds
from crawler.urls import canonical_url, topic_path

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


XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<health-topics total="3">
<health-topic url="https://medlineplus.gov/asthma.html" language="English" title="Asthma"/>
<health-topic url="https://medlineplus.gov/spanish/asthma.html" language="Spanish" title="Asma"/>
<health-topic url="https://medlineplus.gov/ency/article/1.htm" language="English" title="x"/>
</health-topics>"""


def test_xml_dump_plain_and_zipped() -> None:
    assert xml_topic_urls(XML, "dump.xml", ["en", "es"]) == [
        "https://medlineplus.gov/asthma.html",
        "https://medlineplus.gov/spanish/asthma.html",
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mplus_topics.xml", XML)
    assert xml_topic_urls(buffer.getvalue(), "dump.zip", ["es"]) == [
        "https://medlineplus.gov/spanish/asthma.html"
    ]


@pytest.mark.parametrize(
    "declarations",
    [
        pytest.param('<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">', id="laughs"),
        pytest.param('<!ENTITY b SYSTEM "file:///etc/passwd">', id="external"),
    ],
)
def test_xml_dump_with_entity_declarations_is_refused(declarations: str) -> None:
    evil = f"""<?xml version="1.0"?>
<!DOCTYPE health-topics [{declarations}]>
<health-topics><health-topic url="https://medlineplus.gov/x&b;.html" language="English"/>
</health-topics>""".encode()
    with pytest.raises(DiscoveryError, match="entities"):
        xml_topic_urls(evil, "evil.xml", ["en"])


CORPUS_XML = (
    Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "medlineplus" / "xml"
)


@pytest.mark.parametrize(
    ("name", "languages", "expected"),
    [
        pytest.param("mplus_topics_2025-03-04_head.xml", ["en", "es"], 11, id="2025-both"),
        pytest.param("mplus_topics_2025-03-04_head.xml", ["en"], 4, id="2025-english"),
        pytest.param("mplus_topics_2012-07-21_fixture.xml", ["en", "es"], 2, id="2012-old-urls"),
    ],
)
def test_nlm_dumps_from_the_shared_corpus(name: str, languages: list[str], expected: int) -> None:
    path = CORPUS_XML / name
    if not path.is_file():
        pytest.skip(f"shared corpus not found at {CORPUS_XML}")
    urls = xml_topic_urls(path.read_bytes(), name, languages)  # type: ignore[arg-type]
    assert len(urls) == expected
    assert all(url.startswith("https://medlineplus.gov/") and topic_path(url) for url in urls)


def test_real_dump_doctype_without_entities_is_read() -> None:
    dump = XML.replace(
        b"<health-topics",
        b'<!DOCTYPE health-topics PUBLIC "-//NLM//DTD health-topics //EN"'
        b' "https://medlineplus.gov/xml/mplus_topics.dtd">\n<health-topics',
        1,
    )
    assert len(xml_topic_urls(dump, "dump.xml", ["en"])) == 1


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"not xml at all <", id="garbage"),
        pytest.param(b"<other-root/>", id="foreign-xml"),
        pytest.param(b"PK\x03\x04broken", id="broken-zip"),
    ],
)
def test_unreadable_xml_dump_is_a_discovery_error(data: bytes) -> None:
    with pytest.raises(DiscoveryError):
        xml_topic_urls(data, "bad.xml", ["en"])


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
