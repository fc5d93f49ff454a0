"""Keep Twisted's heap of cancelled timers small under the asyncio reactor.

Twisted drops cancelled timed calls only when it runs due ones, and under the asyncio
reactor that happens only when the earliest timer is due. Every download sets a
DOWNLOAD_TIMEOUT timer (60 s) and cancels it on completion, so in a fast crawl cancelled
timers pile up for a minute: measured 17,899 pending, all but 8 cancelled, 9,000 pages
into a mirror crawl. A no-op timer every second lets Twisted sweep them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from scrapy import signals
from twisted.internet.task import LoopingCall

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

SWEEP_SECONDS = 1.0


class ReactorTimerSweep:
    """Runs a no-op timed call every SWEEP_SECONDS while the spider is open."""

    def __init__(self) -> None:
        self._task = LoopingCall(lambda: None)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        extension = cls()
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self) -> None:
        self._task.start(SWEEP_SECONDS, now=False)

    def spider_closed(self) -> None:
        if self._task.running:
            self._task.stop()
