"""Crawl progress: a live line on a terminal, a periodic log line otherwise.

Shows topic pages done out of those discovered so far, the rate, an ETA, the errors and
the pages answered 304 Not Modified. "Done" counts one item per fetched topic URL (every
outcome yields exactly one: a new or unchanged page, a 304, a 404 or an error). On a
terminal the crawl's log is written above the live line (see `LiveLine`), and the line
that stays at the end gives the total and the elapsed time.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, TextIO

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet.task import LoopingCall

from crawler.parsing.items import HealthTopicPage, PageFailed, PageGone, PageNotModified

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

TERMINAL_REFRESH = 0.5
"""Seconds between redraws of the live line."""

CLEAR_LINE = "\r\x1b[K"
"""Back to the start of the terminal's line, and erase it."""


@dataclass(slots=True)
class ProgressFigures:
    """One reading of the crawl's progress."""

    done: int
    total: int
    errors: int
    not_modified: int
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
        """The live line: "12/30 pages (40%) | 6.0 pages/s | ETA 00:03 | 1 errors | 2 not
        modified"."""
        eta = "--:--" if self.eta is None else _clock(self.eta)
        percent = 100.0 * self.done / self.total if self.total else 0.0
        return (
            f"{self.done}/{self.total} pages ({percent:.0f}%) | {self.rate:.1f} pages/s"
            f" | ETA {eta} | {self._outcomes()}"
        )

    def final_line(self) -> str:
        """The last line: "finished: 30 pages in 5.0 s (6.0 pages/s) | 1 errors | 2 not
        modified"."""
        return (
            f"finished: {self.done} pages in {_duration(self.elapsed)} ({self.rate:.1f} pages/s)"
            f" | {self._outcomes()}"
        )

    def _outcomes(self) -> str:
        return f"{self.errors} errors | {self.not_modified} not modified"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else _clock(seconds)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


_PAGE_ITEMS = (HealthTopicPage, PageNotModified, PageGone, PageFailed)


class LiveLine:
    """A terminal whose last line is a status line: text written through this stream (the
    crawl's log, see `Progress`) goes above the status line, which is redrawn after it."""

    def __init__(self, terminal: TextIO) -> None:
        self.terminal = terminal
        self.status = ""
        self._drawn = False
        """True while the status line is on the terminal's last line."""
        self._mid_line = False
        """True after text that did not end its line: the status waits for the rest."""
        self._lock = threading.RLock()

    def show(self, status: str) -> None:
        """Draw `status` in place of the previous one."""
        with self._lock:
            self.status = status
            if not self._mid_line:
                self.terminal.write(f"{CLEAR_LINE}{status}")
                self._drawn = True
            self.terminal.flush()

    def finish(self, last: str) -> None:
        """Replace the status line with `last`, for good."""
        with self._lock:
            self.status = ""
            self.write(f"{last}\n")
            self.terminal.flush()

    def write(self, text: str) -> int:
        with self._lock:
            if self._drawn:
                self.terminal.write(CLEAR_LINE)
                self._drawn = False
            self.terminal.write(text)
            self._mid_line = not text.endswith("\n")
            if not self._mid_line and self.status:
                self.terminal.write(self.status)
                self._drawn = True
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self.terminal.flush()


class Progress:
    """Scrapy extension reporting progress (setting PROGRESS_INTERVAL; 0 disables it)."""

    def __init__(self, crawler: Crawler, interval: float, stream: TextIO, live: bool) -> None:
        self.crawler = crawler
        self.interval = TERMINAL_REFRESH if live else interval
        self.stream = stream
        self.live_line = LiveLine(stream) if live else None
        self.started = time.monotonic()
        self.done = 0
        self.errors = 0
        self.not_modified = 0
        self.task: LoopingCall | None = None
        self._log_handlers: list[logging.StreamHandler[Any]] = []
        """The log's handlers writing to `stream`, led through `live_line` while it shows."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        interval = crawler.settings.getfloat("PROGRESS_INTERVAL", 30.0)
        if interval <= 0:
            raise NotConfigured("PROGRESS_INTERVAL is 0")
        stream = sys.stderr
        extension = cls(crawler, interval, stream, live=stream.isatty())
        crawler.signals.connect(extension.opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.closed, signal=signals.spider_closed)
        crawler.signals.connect(extension.stopped, signal=signals.engine_stopped)
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(extension.counted, signal=signal)
        crawler.signals.connect(extension.failed, signal=signals.item_error)
        return extension

    @property
    def live(self) -> bool:
        """True on a terminal: one line redrawn in place."""
        return self.live_line is not None

    def figures(self) -> ProgressFigures:
        stats = self.crawler.stats
        total = int(stats.get_value("archive/discovery/topics", 0)) if stats else 0
        return ProgressFigures(
            done=self.done,
            total=max(total, self.done),
            errors=self.errors,
            not_modified=self.not_modified,
            elapsed=time.monotonic() - self.started,
        )

    def counted(self, item: Any, **_: Any) -> None:
        """A topic URL is done, whatever became of it (scraped, dropped as a duplicate,
        failed in a pipeline)."""
        if isinstance(item, _PAGE_ITEMS):
            self.done += 1
            if isinstance(item, PageFailed):
                self.errors += 1
            elif isinstance(item, PageNotModified):
                self.not_modified += 1

    def failed(self, item: Any, **_: Any) -> None:
        """A page a pipeline failed on is an error too (PageFailed already counts as one)."""
        if isinstance(item, _PAGE_ITEMS) and not isinstance(item, PageFailed):
            self.errors += 1

    def opened(self) -> None:
        self.started = time.monotonic()
        if self.live_line is not None:
            self._lead_log_through(self.live_line)
        self.task = LoopingCall(self.report)
        self.task.start(self.interval, now=False)

    def report(self) -> None:
        line = self.figures().line()
        if self.live_line is not None:
            self.live_line.show(line)
        else:
            logger.info("progress: %s", line)

    def closed(self) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()

    def stopped(self) -> None:
        """The crawl is over (its run committed and Scrapy's closing lines logged): the last
        line gives the total and the elapsed time."""
        line = self.figures().final_line()
        if self.live_line is not None:
            self.live_line.finish(line)
            self._lead_log_through(None)
        else:
            logger.info("%s", line)

    def _lead_log_through(self, live_line: LiveLine | None) -> None:
        """Send the log's handlers that write to the terminal through `live_line` (None:
        straight to the terminal again), so that log lines print above the live line."""
        if live_line is not None:
            self._log_handlers = [
                handler
                for handler in logging.getLogger().handlers
                if isinstance(handler, logging.StreamHandler) and handler.stream is self.stream
            ]
        for handler in self._log_handlers:
            handler.setStream(live_line or self.stream)
        if live_line is None:
            self._log_handlers = []
