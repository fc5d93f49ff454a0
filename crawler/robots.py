"""robots.txt obedience without Scrapy's concurrent-waiter gap, and an unreachable
robots.txt taken for what it is: the site could not be reached.

Scrapy's RobotsTxtMiddleware (2.19 at least) hands its robots.txt parser to the
requests that wait for the download through `Deferred.asFuture`; only the first waiter
gets the parser, later ones get None and are let through unchecked. With several start
requests, a disallowed page is then fetched. This subclass re-reads the parser Scrapy
stored for the host when it is handed None.

When robots.txt fails at the network level (after retries), Scrapy logs the failure with
its traceback and crawls on as if every page were allowed. Here the traceback is kept
for --log-level DEBUG, the failure is recorded for `pipelines.reachability`, and every
later request to the host is refused: the crawl ends at once, and it ends as a site that
could not be reached.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxt
from scrapy.downloadermiddlewares.robotstxt import logger as scrapy_robots_logger
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawler.log_formatter import logs_debug
from pipelines.reachability import ROBOTS_UNREACHABLE, network_error_text

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


class RobotsTxtMiddleware(ScrapyRobotsTxt):
    """Scrapy's middleware, with every waiter given the host's parsed robots.txt, and
    every request refused once the host's robots.txt could not be fetched."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.unreachable: dict[str, str] = {}
        """Hosts (netloc) whose robots.txt failed at the network level, and why."""
        # the crawl being set up decides: its LOG_LEVEL DEBUG keeps the traceback
        _WITHOUT_TRACEBACK.keep_traceback = logs_debug(crawler.settings)
        if _WITHOUT_TRACEBACK not in scrapy_robots_logger.filters:
            scrapy_robots_logger.addFilter(_WITHOUT_TRACEBACK)

    async def robot_parser(self, request: Request) -> Any:
        parser = await super().robot_parser(request)
        netloc = urlparse_cached(request).netloc
        if netloc in self.unreachable:
            raise IgnoreRequest(f"{netloc} could not be reached: {self.unreachable[netloc]}")
        if parser is None:
            stored = self._parsers.get(netloc)
            if stored is not None and not isinstance(stored, Deferred):
                return stored
        return parser

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        if not isinstance(exc, IgnoreRequest):
            self.unreachable[netloc] = network_error_text(exc)
            self._stats.set_value(ROBOTS_UNREACHABLE, self.unreachable[netloc])
        super()._robots_error(exc, netloc)


class WithoutTraceback(logging.Filter):
    """Drops the traceback of a log record, keeping its message (one line per failure),
    unless `keep_traceback` (the crawl logs DEBUG)."""

    def __init__(self) -> None:
        super().__init__()
        self.keep_traceback = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.keep_traceback:
            record.exc_info = None
            record.exc_text = None
        return True


_WITHOUT_TRACEBACK = WithoutTraceback()
"""The one filter on Scrapy's robots.txt logger, set by the crawl being set up."""
