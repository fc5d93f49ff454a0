"""robots.txt obedience without Scrapy's concurrent-waiter gap.

Scrapy's RobotsTxtMiddleware (2.19 at least) hands its robots.txt parser to the
requests that wait for the download through `Deferred.asFuture`; only the first waiter
gets the parser, later ones get None and are let through unchecked. With several start
requests, a disallowed page is then fetched. This subclass re-reads the parser Scrapy
stored for the host when it is handed None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxt
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy import Request


class RobotsTxtMiddleware(ScrapyRobotsTxt):
    """Scrapy's middleware, with every waiter given the host's parsed robots.txt."""

    async def robot_parser(self, request: Request) -> Any:
        parser = await super().robot_parser(request)
        if parser is None:
            stored = self._parsers.get(urlparse_cached(request).netloc)
            if stored is not None and not isinstance(stored, Deferred):
                return stored
        return parser
