"""Retries with backoff that honour Retry-After.

Scrapy's RetryMiddleware re-queues a failed request at once. This one waits first:
the server's Retry-After (seconds or an HTTP date) when given, else an exponential
backoff (RETRY_BACKOFF_BASE, doubling per attempt), both capped at RETRY_BACKOFF_MAX.
A Retry-After above the cap is not honoured by hammering earlier: the request is given
up and the page recorded as failed. A 429 or 503 with Retry-After also slows the whole
host down, since the server asked for less traffic, not just for this URL.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Self

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.response import response_status_message
from twisted.internet.task import deferLater

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header value ("120" or an HTTP date), or None."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, float((when - (now or datetime.now(UTC))).total_seconds()))


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff: `base` before the first retry, doubling after, at most `cap`."""
    return min(cap, base * 2.0 ** max(0, attempt - 1))


class RetryAfterMiddleware(RetryMiddleware):
    """RetryMiddleware that waits (Retry-After or backoff) before each retry."""

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 2.0)
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX", 120.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        middleware = cls(crawler.settings)
        middleware.crawler = crawler
        return middleware

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        stats = self.crawler.stats
        asked = retry_after_seconds(response.headers.get(b"Retry-After"))
        if asked is not None:
            if stats is not None:
                stats.inc_value("archive/retry_after/honoured")
            if asked > self.backoff_max:
                logger.warning(
                    "%s asks to retry %s after %.0f s, beyond RETRY_BACKOFF_MAX=%.0f s: giving up",
                    response.url,
                    request.url,
                    asked,
                    self.backoff_max,
                )
                if stats is not None:
                    stats.inc_value("archive/retry_after/too_long")
                return response
            self._slow_down_host(request, asked)
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        attempt = int(retry.meta.get("retry_times", 1))
        wait = (
            asked
            if asked is not None
            else backoff_seconds(attempt, self.backoff_base, self.backoff_max)
        )
        if wait > 0:
            await _sleep(wait)
        return retry

    def _slow_down_host(self, request: Request, seconds: float) -> None:
        engine = self.crawler.engine
        key = request.meta.get("download_slot")
        slot = engine.downloader.slots.get(key) if engine is not None and key else None
        if slot is not None and slot.delay < seconds:
            slot.delay = seconds


async def _sleep(seconds: float) -> None:
    """Wait without blocking the reactor (works with the asyncio and the default reactor)."""
    from twisted.internet import reactor  # imported late: Scrapy installs the reactor first

    await maybe_deferred_to_future(deferLater(reactor, seconds))
