"""Scrapy's log messages, minus the two DEBUG lines of every page when they are not shown.

Scrapy builds "Crawled (200) <GET ...>" and "Scraped from <200 ...>" for every page and
hands them to logging, which makes a record of each before the handler's level drops
it (Scrapy leaves the root logger at DEBUG). Above LOG_LEVEL DEBUG they are skipped
here; every other message is Scrapy's own.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Self

from scrapy.logformatter import LogFormatter, LogFormatterResult

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure


def logs_debug(settings: BaseSettings) -> bool:
    """True when the crawl's LOG_LEVEL shows DEBUG messages (or is not a level name)."""
    level = logging.getLevelName(str(settings.get("LOG_LEVEL")).upper())
    return not isinstance(level, int) or level <= logging.DEBUG


class PageLogFormatter(LogFormatter):
    """Scrapy's LogFormatter; per-page DEBUG messages only when LOG_LEVEL is DEBUG."""

    def __init__(self, per_page: bool) -> None:
        self.per_page = per_page

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(per_page=logs_debug(crawler.settings))

    def crawled(  # type: ignore[override]
        self, request: Request, response: Response, spider: Spider
    ) -> LogFormatterResult | None:
        return super().crawled(request, response, spider) if self.per_page else None

    def scraped(  # type: ignore[override]
        self, item: Any, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult | None:
        return super().scraped(item, response, spider) if self.per_page else None
