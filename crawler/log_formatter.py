"""Scrapy's log messages, minus the two DEBUG lines of every page when they are not shown,
and with its start-up banner and dumps at DEBUG.

Scrapy builds "Crawled (200) <GET ...>" and "Scraped from <200 ...>" for every page and
hands them to logging, which makes a record of each before the handler's level drops
it (Scrapy leaves the root logger at DEBUG). Above LOG_LEVEL DEBUG they are skipped
here; every other message is Scrapy's own. `demote_startup_messages` moves Scrapy's
INFO banner, settings and component lists and its end-of-crawl stats dump to DEBUG.
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


STARTUP_MESSAGES: dict[str, tuple[str, ...]] = {
    "scrapy.utils.log": ("Scrapy %(version)s started", "Versions:"),
    "scrapy.addons": ("Enabled addons:",),
    "scrapy.middleware": ("Enabled %(componentname)ss:",),
    "scrapy.crawler": ("Overridden settings:",),
    "scrapy.extensions.telnet": ("Telnet console listening",),
    "scrapy.statscollectors": ("Dumping Scrapy stats:",),
}
"""Messages Scrapy logs at INFO that say nothing about this crawl's progress, by logger:
the banner, the versions, settings and components in use, and the stats (which
`crawl --stats-json` writes)."""


class _AtDebug(logging.Filter):
    """Logs the INFO messages that start with one of `prefixes` at DEBUG."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and str(record.msg).startswith(self.prefixes):
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


def demote_startup_messages() -> None:
    """From now on, log STARTUP_MESSAGES at DEBUG (shown by `--log-level DEBUG`)."""
    for name, prefixes in STARTUP_MESSAGES.items():
        messages = logging.getLogger(name)
        if not any(isinstance(known, _AtDebug) for known in messages.filters):
            messages.addFilter(_AtDebug(prefixes))


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
