"""MedlinePlus URL rules: canonical topic URLs, slugs and languages. Pure functions."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

from crawler.parsing.items import Language

MEDLINEPLUS_ORIGIN = "https://medlineplus.gov"

_TOPIC_PATH = re.compile(r"^/(?:(?P<spanish>spanish)/)?(?P<slug>[a-z0-9][a-z0-9_-]*)\.html$")
"""A health-topic page path: /lungcancer.html or /spanish/lungcancer.html (lower case)."""

NOT_TOPIC_SLUGS = frozenset(
    {
        "healthtopics",
        "encyclopedia",
        "druginformation",
        "sitemap",
        "about",
        "accessibility",
        "disclaimers",
        "criteria",
        "plugins",
        "rss",
        "whatsnew",
        "index",
        "all_healthtopics",
        "organizations",
        "connect",
        "videosandcooltools",
        "healthcheck",
        "lab-tests",
        "genetics",
        "medlineplus-connect",
        "subscriptions",
    }
)
"""Top-level .html pages on medlineplus.gov that are not health topics."""


def topic_path(url: str) -> tuple[str, Language] | None:
    """(slug, language) when `url`'s path looks like a health-topic page, else None.

    Only the path is judged, so a mirror's URL counts the same as the live site's.
    A-Z index pages (healthtopics_a.html) and other known site pages are excluded.
    """
    match = _TOPIC_PATH.match(urlsplit(url).path)
    if match is None:
        return None
    slug = match["slug"]
    if slug in NOT_TOPIC_SLUGS or slug.startswith("healthtopics_"):
        return None
    return slug, ("es" if match["spanish"] else "en")


def canonical_url(url: str) -> str:
    """`url` moved onto https://medlineplus.gov, keeping its path (query and fragment dropped).

    Pages crawled from a mirror (http://127.0.0.1:8000/lungcancer.html) are stored under
    the live site's URL so versions from any source share one key.
    """
    parts = urlsplit(url)
    return urlunsplit(("https", "medlineplus.gov", parts.path or "/", "", ""))


_OLD_HOME = "/medlineplus/"
"""Before 2016 (or so) topic pages lived at http://www.nlm.nih.gov/medlineplus/<slug>.html."""


def modern_url(url: str) -> str:
    """`url` with the old www.nlm.nih.gov/medlineplus/ location moved to medlineplus.gov."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() == "www.nlm.nih.gov" and parts.path.startswith(_OLD_HOME):
        return urlunsplit(("https", "medlineplus.gov", parts.path[len(_OLD_HOME) - 1 :], "", ""))
    return url


def without_dot_segments(url: str) -> str:
    """An absolute `url` with its path's `.` and `..` segments resolved (RFC 3986, 5.2.4):
    https://medlineplus.gov/../spanish/x.html -> https://medlineplus.gov/spanish/x.html."""
    parts = urlsplit(url)
    rest = url[len(parts.scheme) + 3 + len(parts.netloc) :]  # after "scheme://netloc"
    if not parts.scheme or not parts.netloc or rest.startswith("//"):
        return url
    return urljoin(f"{parts.scheme}://{parts.netloc}/", rest)
