"""How a crawl started by the `crawl` command stops on a signal (instead of Scrapy's
own handlers, which wait forever for a page whose extraction hangs).

SIGTERM, SIGINT (Ctrl-C) and SIGHUP (the terminal closed) are handled alike: the
signal is logged, no new page is requested, the pages in hand are finished, and what
was completed is committed as a `partial` run (the command then exits 1; when no page
was completed nothing is committed). Once the signal is EXTRACTION_GRACE seconds old, a
page that has been in extraction that long is left out: the extraction workers are
terminated, then killed (pages that reach extraction later are still extracted). A crawl
that has still not stopped MEDLINEPLUS_STOP_DEADLINE seconds (default 25) after the
signal (a server that answers
too slowly, a parse that hangs the crawl's own process), or that gets a second signal,
stops at once: nothing more is committed and the command exits 1. The run it was writing
is left uncommitted, which readers never see and the next crawl clears away; but a run
whose commit has begun is never cut short: it is stopped once the commit is done.

The deadline is a thread's timer, not the reactor's: it fires even when the reactor is
blocked (pages extracted in the crawl's process, MEDLINEPLUS_PARSE_WORKERS=0 or after a
worker died).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from scrapy.utils.defer import deferred_from_coro

from crawler.spiders.health_topics import HealthTopicsSpider
from pipelines.archiving import RUN_COMMITTING
from pipelines.exit_codes import EXIT_FAILED

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.spiders.extraction_pool import ExtractionPool

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

EXTRACTION_GRACE = 3.0
"""Seconds after a stop signal before pages still being extracted are given up (a page
takes a few milliseconds)."""

EXTRACTION_CHECK = 1.0
"""Seconds between checks, after EXTRACTION_GRACE, for a page stuck in extraction."""

COMMIT_POLL = 0.1
"""Seconds between checks, at the deadline, for a commit in progress to end."""


class CrawlShutdown:
    """The stop-signal handlers of one crawl (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.deadline = crawler.settings.getfloat("MEDLINEPLUS_STOP_DEADLINE")
        """Seconds after a stop signal before the crawl stops at once, committing nothing."""
        self.received: signal.Signals | None = None
        """The first stop signal received, None while none was."""
        self._deadline: threading.Timer | None = None

    def install(self) -> None:
        """Handle STOP_SIGNALS from now on (call once the reactor is about to run)."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def crawl_ended(self) -> None:
        """The crawl has stopped: no deadline can end the process any more."""
        if self._deadline is not None:
            self._deadline.cancel()

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        # A signal handler may interrupt a write to the log: it must not log itself.
        # The first signal's work is done by the reactor; a second one ends the process
        # from here, so that it works even when the reactor is busy.
        received = signal.Signals(signum)
        if self.received is None:
            self.received = received
            self._deadline = threading.Timer(self.deadline, self._overdue)
            self._deadline.daemon = True
            self._deadline.start()
            _reactor().callFromThread(self._stop, received)
        elif self._committing():  # interrupted the commit: let it end, then stop
            _write_stderr(
                f"\nsecond {received.name} while the run is being committed: stopping once"
                " the commit is done\n"
            )
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

    def _give_up_extraction(self) -> None:
        """Terminate the extraction workers when a page has been in extraction for
        EXTRACTION_GRACE seconds; look again every EXTRACTION_CHECK seconds until then."""
        pool = self._extraction()
        if pool is None or pool.stopped:
            return
        busy = pool.busy_for()
        if busy < EXTRACTION_GRACE:
            _reactor().callLater(EXTRACTION_CHECK, self._give_up_extraction)
            return
        logger.warning(
            "a page has been in extraction for %.0f s since %s: terminating its workers",
            busy,
            self.received.name if self.received else "the signal",
        )
        pool.terminate()

    def _overdue(self) -> None:
        """The deadline (in the timer's thread): stop at once, unless the run is being
        committed; then once its commit is done."""
        while self._committing():
            time.sleep(COMMIT_POLL)
        logger.error("the crawl did not stop within %.0f s of the signal", self.deadline)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._end_now(f"no stop within {self.deadline:.0f} s")

    def _end_now(self, why: str) -> None:
        """Kill the extraction workers and end the process, committing nothing more."""
        pool = self._extraction()
        if pool is not None:
            pool.kill()
        stats = self.crawler.stats
        status = stats.get_value("archive/run/status") if stats is not None else None
        if status is not None:
            outcome = f"the run was committed as {status}"
        else:
            outcome = "the run in progress is not committed"
        _write_stderr(f"\nstopped at once ({why}): {outcome}\n")
        os._exit(EXIT_FAILED)  # the work ran and is incomplete

    def _committing(self) -> bool:
        stats = self.crawler.stats
        return bool(stats.get_value(RUN_COMMITTING, False)) if stats is not None else False

    def _extraction(self) -> ExtractionPool | None:
        spider = self.crawler.spider
        return spider.started_extraction if isinstance(spider, HealthTopicsSpider) else None


def _write_stderr(message: str) -> None:
    """`message` on stderr without Python's buffers (safe in a signal handler)."""
    with contextlib.suppress(OSError, ValueError):  # stderr gone with its terminal
        os.write(sys.stderr.fileno(), message.encode())


def _reactor() -> Any:
    """The running reactor (imported late: importing it installs Twisted's default one)."""
    from twisted.internet import reactor

    return reactor
