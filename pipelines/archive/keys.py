"""The keys of the archive domain: a topic, one version of it, the version it shows."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from crawler.parsing.items import HealthTopicPage


class TopicKey(NamedTuple):
    """A topic: its language and slug."""

    language: str
    slug: str


class VersionKey(NamedTuple):
    """One version of a topic; stored once, ever."""

    language: str
    slug: str
    last_updated: date
    content_hash: str


class LatestVersion(NamedTuple):
    """The version a topic showed most recently."""

    last_updated: date
    content_hash: str


def version_key(page: HealthTopicPage) -> VersionKey:
    """The key of the version `page` is."""
    return VersionKey(page.language, page.slug, page.last_updated, page.content_hash)
