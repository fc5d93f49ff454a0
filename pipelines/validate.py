"""Validate pipeline: a page version must be complete and well-typed before it is archived.

An invalid `HealthTopicPage` becomes a `PageFailed` (an `error` observation naming the
field), never a version. Other items pass through untouched.
"""

from __future__ import annotations

import logging
import types
import typing
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Self

from itemadapter import ItemAdapter

from crawler.items import LANGUAGES, HealthTopicPage, PageFailed
from crawler.urls import MEDLINEPLUS_ORIGIN, topic_path

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

_FIELD_TYPES: dict[str, Any] = typing.get_type_hints(HealthTopicPage)


def problems(page: HealthTopicPage) -> list[tuple[str, str]]:
    """(field, reason) for every way `page` is not a valid, complete page version."""
    found: list[tuple[str, str]] = []
    adapter = ItemAdapter(page)
    for name, expected in _FIELD_TYPES.items():
        if not _matches(adapter.get(name), expected):
            found.append((name, f"{type(adapter.get(name)).__name__} is not {expected}"))
    for name in ("url", "slug", "title", "content_hash"):
        if not adapter.get(name):
            found.append((name, "empty"))
    if page.language not in LANGUAGES:
        found.append(("language", f"unknown language {page.language!r}"))
    url = page.url if isinstance(page.url, str) else ""
    if not url.startswith(MEDLINEPLUS_ORIGIN + "/") or topic_path(url) != (
        page.slug,
        page.language,
    ):
        found.append(("url", f"{url!r} is not the canonical URL of {page.slug!r}"))
    return found


def _matches(value: Any, expected: Any) -> bool:
    """A shallow runtime check of `value` against a type annotation of the item classes."""
    origin = typing.get_origin(expected)
    if origin is typing.Union or origin is types.UnionType:
        return any(_matches(value, option) for option in typing.get_args(expected))
    if origin is typing.Literal:
        return value in typing.get_args(expected)
    if origin is list:
        (inner,) = typing.get_args(expected)
        return isinstance(value, list) and all(_matches(v, inner) for v in value)
    if expected is type(None):
        return value is None
    if expected is date:
        return isinstance(value, date) and not isinstance(value, datetime)
    return isinstance(value, expected)


class ValidatePipeline:
    """Turns incomplete or ill-typed page versions into `error` observations."""

    def __init__(self, stats: StatsCollector | None = None) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.stats)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, HealthTopicPage):
            return item
        found = problems(item)
        if not found:
            self._inc("archive/validate/ok")
            return item
        field, reason = found[0]
        self._inc(f"archive/validate/invalid/{field}")
        logger.warning("invalid page %s: %s: %s", item.source_url or item.url, field, reason)
        path = topic_path(item.url) if isinstance(item.url, str) else None
        return PageFailed(
            url=item.url,
            language=path[1] if path else "en",
            slug=path[0] if path else str(item.slug),
            source_url=item.source_url or item.url,
            fetched_at=item.fetched_at or datetime.now(UTC),
            http_status=item.http_status,
            error=f"invalid {field}: {reason}",
            field=field,
        )

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(key)
