"""Where topic URLs come from: A-Z index pages and URL lists. Pure functions.

Lenient on the index (its markup is not part of any contract: every link whose path looks
like a topic page counts, and every letter page its navigation links to is followed,
whatever its name) and strict on the topic page itself (the parser decides). NLM's XML
dump is read by `crawler.parsing.xml_dump`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from lxml import etree

from crawler.parsing.errors import CrawlerError
from crawler.parsing.items import Language
from crawler.parsing.urls import MEDLINEPLUS_ORIGIN, topic_path

_INDEX_PATH = re.compile(r"^/(?:spanish/)?healthtopics(?:_[^/]+)?\.html$")
"""The health-topics index, /healthtopics.html, and its letter pages, whatever their
names: /healthtopics_a.html, /healthtopics_xyz.html, /spanish/healthtopics_0-9.html."""


class DiscoveryError(CrawlerError):
    """The XML dump cannot be used: not XML or a zip, damaged, over its size limit,
    declaring entities, or listing no health topic (see `crawler.parsing.xml_dump`)."""


def index_url(base_url: str, language: Language) -> str:
    """The health-topics index page of `language` on the site at `base_url`."""
    prefix = "/spanish" if language == "es" else ""
    return f"{base_url.rstrip('/')}{prefix}/healthtopics.html"


def is_index_url(url: str) -> bool:
    return bool(_INDEX_PATH.match(urlsplit(url).path))


def site_path(url: str, base_url: str) -> str:
    """The path of `url` within the site: a mirror's own path prefix is taken off.

    `file:///srv/site/acne.html` with base `file:///srv/site` is `/acne.html`, as is
    `https://medlineplus.gov/acne.html` with any base.
    """
    path = urlsplit(url).path or "/"
    prefix = urlsplit(base_url).path.rstrip("/")
    if (
        prefix
        and urlsplit(url).netloc == urlsplit(base_url).netloc
        and path.startswith(prefix + "/")
    ):
        return path[len(prefix) :]
    return path


def fetch_url(url: str, base_url: str) -> str:
    """Where to fetch `url` (a medlineplus.gov or mirror URL): its path on `base_url`."""
    return base_url.rstrip("/") + site_path(url, base_url)


def on_site(url: str, base_url: str) -> bool:
    """True for URLs on the crawled site: the base URL's host (a `file:` base: any file URL),
    or medlineplus.gov itself (index pages link with absolute https://medlineplus.gov
    URLs even on a mirror)."""
    parts = urlsplit(url)
    base = urlsplit(base_url)
    if parts.scheme == "file":
        return base.scheme == "file"
    if parts.scheme not in {"http", "https"}:
        return False
    host = (parts.hostname or "").lower()
    return host in {base.hostname, urlsplit(MEDLINEPLUS_ORIGIN).hostname}


@dataclass(frozen=True, slots=True)
class IndexLinks:
    """What an index page links to: index pages as fetchable URLs, topics as canonical
    https://medlineplus.gov URLs (the spider maps them onto the crawled site)."""

    index_pages: list[str]
    topic_pages: list[str]


def index_links(body: bytes, page_url: str, base_url: str) -> IndexLinks:
    """Every index page and topic page linked from an index page, deduplicated, in order."""
    root = etree.fromstring(body, etree.HTMLParser(remove_comments=True)) if body else None
    index_pages: dict[str, None] = {}
    topic_pages: dict[str, None] = {}
    for link in root.iter("a") if root is not None else ():
        href = link.get("href")
        if not href:
            continue
        url = urljoin(page_url, href.strip())
        if not on_site(url, base_url):
            continue
        live = MEDLINEPLUS_ORIGIN + site_path(url, base_url)
        if is_index_url(live):
            index_pages[fetch_url(live, base_url)] = None
        elif topic_path(live) is not None:
            topic_pages[live] = None
    return IndexLinks(index_pages=list(index_pages), topic_pages=list(topic_pages))


def url_list(text: str) -> Iterator[str]:
    """The URLs of a URL file: one per line; blank lines and # comments skipped."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield stripped
