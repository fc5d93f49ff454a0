"""Crawl progress: a live line on a terminal, a periodic log line otherwise.

Shows topic pages done out of those discovered so far, the rate, an ETA and the error
count. "Done" counts one item per fetched topic URL (every outcome yields exactly one).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, TextIO

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet.task import LoopingCall

from crawler.items import HealthTopicPage, PageFailed, PageGone, PageNotModified

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

TERMINAL_REFRESH = 0.5
"""Seconds between redraws of the live line."""


@dataclass(slots=True)
class ProgressFigures:
    """One reading of the crawl's progress."""

    done: int
    total: int
    errors: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Pages per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, None while unknown."""
        if self.rate <= 0 or self.total <= self.done:
            return None
        return (self.total - self.done) / self.rate

    def line(self) -> str:
        eta = "--:--" if self.eta is None else _clock(self.eta)
        percent = 100.0 * self.done / self.total if self.total else 0.0
        return (
            f"{self.done}/{self.total} pages ({percent:.0f}%) | {self.rate:.1f} pages/s"
            f" | ETA {eta} | {self.errors} errors"
        )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


_PAGE_ITEMS = (HealthTopicPage, PageNotModified, PageGone, PageFailed)


class Progress:
    """Scrapy extension reporting progress (setting PROGRESS_INTERVAL; 0 disables it)."""

    def __init__(self, crawler: Crawler, interval: float, stream: TextIO, live: bool) -> None:
        self.crawler = crawler
        self.interval = TERMINAL_REFRESH if live else interval
        self.stream = stream
        self.live = live
        self.started = time.monotonic()
        self.done = 0
        self.errors = 0
        self.task: LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        interval = crawler.settings.getfloat("PROGRESS_INTERVAL", 30.0)
        if interval <= 0:
            raise NotConfigured("PROGRESS_INTERVAL is 0")
        stream = sys.stderr
        extension = cls(crawler, interval, stream, live=stream.isatty())
        crawler.signals.connect(extension.opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.closed, signal=signals.spider_closed)
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(extension.counted, signal=signal)
        return extension

    def figures(self) -> ProgressFigures:
        stats = self.crawler.stats
        total = int(stats.get_value("archive/discovery/topics", 0)) if stats else 0
        return ProgressFigures(
            done=self.done,
            total=max(total, self.done),
            errors=self.errors,
            elapsed=time.monotonic() - self.started,
        )

    def counted(self, item: Any, **_: Any) -> None:
        if isinstance(item, _PAGE_ITEMS) and not (
            isinstance(item, PageGone) and item.source_url is None
        ):
            self.done += 1
            if isinstance(item, PageFailed):
                self.errors += 1

    def opened(self) -> None:
        self.started = time.monotonic()
        self.task = LoopingCall(self.report)
        self.task.start(self.interval, now=False)

    def report(self) -> None:
        line = self.figures().line()
        if self.live:
            self.stream.write(f"\r\x1b[K{line}")
            self.stream.flush()
        else:
            logger.info("progress: %s", line)

    def closed(self) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
        line = self.figures().line()
        if self.live:
            self.stream.write(f"\r\x1b[K{line}\n")
            self.stream.flush()
        logger.info("finished: %s", line)
