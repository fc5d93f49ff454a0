"""Validate pipeline: a page version must be complete and well-typed before it is archived.

An invalid `HealthTopicPage` becomes a `PageFailed` (an `error` observation naming the
field), never a version. Other items pass through untouched.
"""

from __future__ import annotations

import logging
import types
import typing
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Self

from itemadapter import ItemAdapter

from crawler.parsing.items import LANGUAGES, HealthTopicPage, PageFailed
from crawler.parsing.urls import MEDLINEPLUS_ORIGIN, topic_path

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)


def problems(page: HealthTopicPage) -> list[tuple[str, str]]:
    """(field, reason) for every way `page` is not a valid, complete page version."""
    found: list[tuple[str, str]] = []
    adapter = ItemAdapter(page)
    for name, expected, matches in _FIELD_CHECKS:
        value = adapter.get(name)
        if not matches(value):
            found.append((name, f"{type(value).__name__} is not {expected}"))
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


def _matcher(expected: Any) -> Callable[[Any], bool]:
    """A shallow runtime check of a value against a type annotation of the item classes,
    worked out once per field (annotations are not re-read for every page)."""
    origin = typing.get_origin(expected)
    if origin is typing.Union or origin is types.UnionType:
        options = [_matcher(option) for option in typing.get_args(expected)]
        return lambda value: any(option(value) for option in options)
    if origin is typing.Literal:
        allowed = typing.get_args(expected)
        return lambda value: value in allowed
    if origin is list:
        (inner,) = typing.get_args(expected)
        element = _matcher(inner)
        return lambda value: isinstance(value, list) and all(map(element, value))
    if expected is type(None):
        return lambda value: value is None
    if expected is date:
        return lambda value: isinstance(value, date) and not isinstance(value, datetime)
    return lambda value: isinstance(value, expected)


_FIELD_CHECKS: list[tuple[str, Any, Callable[[Any], bool]]] = [
    (name, expected, _matcher(expected))
    for name, expected in typing.get_type_hints(HealthTopicPage).items()
]
"""(field, annotation, check) for every field of HealthTopicPage."""


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
