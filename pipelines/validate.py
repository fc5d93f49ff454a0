"""Validate pipeline: a page version must be complete and well-typed before it is archived.

An invalid `HealthTopicPage` becomes a `PageFailed` (an `error` observation naming the
field), never a version. Other items pass through untouched.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from itemadapter import ItemAdapter

from crawler.parsing.items import NOT_ARCHIVED, HealthTopicPage, PageFailed
from crawler.parsing.urls import MEDLINEPLUS_ORIGIN, topic_path
from pipelines.core.schema import value_checker

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)


def problems(page: HealthTopicPage) -> list[tuple[str, str]]:
    """(field, reason) for every way `page` is not a valid, complete page version: a
    value the archive's tables would refuse (the schema's own checks), an empty
    identifying field, a URL that is not the topic's canonical one."""
    found: list[tuple[str, str]] = []
    adapter = ItemAdapter(page)
    for name, check in _FIELD_CHECKS:
        try:
            check(adapter.get(name))
        except (TypeError, ValueError, AttributeError) as error:
            found.append((name, str(error)))
    for name in ("url", "slug", "title", "content_hash"):
        if not adapter.get(name):
            found.append((name, "empty"))
    url = page.url if isinstance(page.url, str) else ""
    if not url.startswith(MEDLINEPLUS_ORIGIN + "/") or topic_path(url) != (
        page.slug,
        page.language,
    ):
        found.append(("url", f"{url!r} is not the canonical URL of {page.slug!r}"))
    return found


def _instance_checker(hint: Any) -> Callable[[Any], None]:
    """For the fields kept out of the tables (`NOT_ARCHIVED`): an instance of one of the
    union's types."""
    kinds = typing.get_args(hint) or (hint,)

    def check(value: Any) -> None:
        if not isinstance(value, kinds):
            raise TypeError(f"expected {hint}, got {type(value).__name__}")

    return check


_FIELD_CHECKS: list[tuple[str, Callable[[Any], None]]] = [
    (name, _instance_checker(hint) if name in NOT_ARCHIVED else value_checker(hint))
    for name, hint in typing.get_type_hints(HealthTopicPage).items()
]
"""(field, check) for every field of HealthTopicPage: the checks the tables apply."""


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
