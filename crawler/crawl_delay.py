"""robots.txt Crawl-delay, which Scrapy reads but does not act on.

`CrawlDelayThrottle` replaces Scrapy's AutoThrottle extension: it throttles exactly as
AutoThrottle does when AUTOTHROTTLE_ENABLED is set, and in every case keeps each host's
download delay at or above the Crawl-delay its robots.txt gives our User-Agent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.extensions.throttle import AutoThrottle
from scrapy.utils.httpobj import urlparse_cached

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.core.downloader import Slot
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

MAX_CRAWL_DELAY = 60.0
"""A robots.txt asking for more than this between requests is capped (and logged)."""


def robots_crawl_delay(robotparser: Any, user_agent: str) -> float | None:
    """The Crawl-delay a parsed robots.txt sets for `user_agent`, or None.

    Recent Scrapy parsers have `crawl_delay()` (2.19 does, 2.14 does not); older ones
    wrap a Protego parser as `.rp`.
    """
    crawl_delay = getattr(robotparser, "crawl_delay", None)
    if crawl_delay is None:
        crawl_delay = getattr(getattr(robotparser, "rp", None), "crawl_delay", None)
    if crawl_delay is None:
        return None
    delay = crawl_delay(user_agent)
    return None if delay is None else float(delay)


class CrawlDelayThrottle(AutoThrottle):
    """AutoThrottle (when enabled) with robots.txt Crawl-delay as a floor per host."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.autothrottle = settings.getbool("AUTOTHROTTLE_ENABLED")
        self.debug = settings.getbool("AUTOTHROTTLE_DEBUG")
        self.target_concurrency = settings.getfloat("AUTOTHROTTLE_TARGET_CONCURRENCY") or 1.0
        self.user_agent: str = settings.get("ROBOTSTXT_USER_AGENT") or settings.get("USER_AGENT")
        self.crawl_delays: dict[str, float] = {}
        """Crawl-delay per host (the download slot key), from each host's robots.txt."""
        crawler.signals.connect(self._robots_parsed, signal=signals.robots_parsed)
        if self.autothrottle:
            crawler.signals.connect(self._spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self._response_downloaded, signal=signals.response_downloaded)

    def _robots_parsed(self, robotparser: Any, request: Request) -> None:
        delay = robots_crawl_delay(robotparser, self.user_agent)
        if delay is None or delay <= 0:
            return
        if delay > MAX_CRAWL_DELAY:
            logger.warning("robots.txt Crawl-delay %s s capped at %s s", delay, MAX_CRAWL_DELAY)
            delay = MAX_CRAWL_DELAY
        host = urlparse_cached(request).hostname or ""
        self.crawl_delays[host] = delay
        stats = self.crawler.stats
        if stats is not None:
            stats.set_value("archive/robots/crawl_delay", delay)
        logger.info("robots.txt of %s asks for Crawl-delay %s s: obeying it", host, delay)
        engine = self.crawler.engine
        slot = engine.downloader.slots.get(host) if engine is not None else None
        if slot is not None:
            self._apply_floor(host, slot)

    def _response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        key, slot = self._get_slot(request, spider)
        if slot is None or key is None:
            return
        if self.autothrottle:
            super()._response_downloaded(response, request, spider)
        self._apply_floor(key, slot)

    def _apply_floor(self, key: str, slot: Slot) -> None:
        floor = self.crawl_delays.get(key)
        if floor is None:
            return
        slot.delay = max(slot.delay, floor)
        _no_jitter(slot)


def _no_jitter(slot: Slot) -> None:
    """A Crawl-delay is a minimum: no random variation may take a wait below it."""
    if hasattr(slot, "jitter"):
        slot.jitter = 0.0  # Scrapy >= 2.19 (its randomize_delay is a deprecated alias)
    else:
        slot.randomize_delay = False
