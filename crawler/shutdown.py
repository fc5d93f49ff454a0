"""How a crawl started by the `crawl` command stops on a signal (instead of Scrapy's
own handlers, which wait forever for a page whose extraction hangs).

SIGTERM, SIGINT (Ctrl-C) and SIGHUP (the terminal closed) are handled alike: the
signal is logged, no new page is requested, the pages in hand are finished, and what
was completed is committed as a `partial` run (the command then exits 1; when no page
was completed nothing is committed). A page still being extracted EXTRACTION_GRACE
seconds after the signal is left out: the extraction workers are terminated, then
killed. A crawl that has still not stopped STOP_DEADLINE seconds after the signal
(a server that answers too slowly, say), or that gets a second signal, stops at once:
nothing more is committed and the command exits 1. The run it was writing is left
uncommitted, which readers never see and the next crawl clears away.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

from scrapy.utils.defer import deferred_from_coro

from crawler.commands.common import EXIT_FAILED
from crawler.spiders.health_topics import HealthTopicsSpider

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.extraction_pool import ExtractionPool

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

EXTRACTION_GRACE = 3.0
"""Seconds after a stop signal before pages still being extracted are given up (a page
takes a few milliseconds)."""

STOP_DEADLINE = 25.0
"""Seconds after a stop signal before the crawl stops at once, committing nothing."""


class CrawlShutdown:
    """The stop-signal handlers of one crawl (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.received: signal.Signals | None = None
        """The first stop signal received, None while none was."""

    def install(self) -> None:
        """Handle STOP_SIGNALS from now on (call once the reactor is about to run)."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        # A signal handler may interrupt a write to the log: it must not log itself.
        # The first signal's work is done by the reactor; a second one ends the process
        # from here, so that it works even when the reactor is busy.
        received = signal.Signals(signum)
        if self.received is None:
            self.received = received
            _reactor().callFromThread(self._stop, received)
        else:
            self._end_now(f"second {received.name}")

    def _stop(self, received: signal.Signals) -> None:
        logger.warning(
            "received %s: stopping; the pages in hand are finished and what was completed"
            " is committed as a partial run (send it again to stop at once, committing"
            " nothing more)",
            received.name,
        )
        deferred_from_coro(self.crawler.stop_async())
        _reactor().callLater(EXTRACTION_GRACE, self._give_up_extraction)
        _reactor().callLater(STOP_DEADLINE, self._overdue)

    def _give_up_extraction(self) -> None:
        pool = self._extraction()
        if pool is not None and not pool.stopped:
            logger.warning(
                "page extraction still busy %.0f s after %s: terminating its workers",
                EXTRACTION_GRACE,
                self.received.name if self.received else "the signal",
            )
            pool.terminate()

    def _overdue(self) -> None:
        logger.error("the crawl did not stop within %.0f s of the signal", STOP_DEADLINE)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._end_now(f"no stop within {STOP_DEADLINE:.0f} s")

    def _end_now(self, why: str) -> None:
        """Kill the extraction workers and end the process, committing nothing more."""
        pool = self._extraction()
        if pool is not None:
            pool.kill()
        message = f"\nstopped at once ({why}): the run in progress is not committed\n"
        with contextlib.suppress(OSError, ValueError):  # stderr gone with its terminal
            os.write(sys.stderr.fileno(), message.encode())
        os._exit(EXIT_FAILED)  # the work ran and is incomplete

    def _extraction(self) -> ExtractionPool | None:
        spider = self.crawler.spider
        return spider.started_extraction if isinstance(spider, HealthTopicsSpider) else None


def _reactor() -> Any:
    """The running reactor (imported late: importing it installs Twisted's default one)."""
    from twisted.internet import reactor

    return reactor
