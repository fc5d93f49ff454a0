"""Page extraction in worker processes, so the crawl's event loop keeps downloading.

Extracting a page (lxml's parse and the parser's Python, about 1.8 ms) and encoding its
exchange as WARC records (gzip and two SHA-1 digests, about 0.3 ms) cost more CPU than
Scrapy spends fetching it; done in the crawl's own process they cut how fast a mirror
can be crawled to a fifth. `ExtractionPool` runs `extract_page` in worker processes
(the `MEDLINEPLUS_PARSE_WORKERS` setting; 0 extracts in the crawl's process) and hands
the spider an awaitable. Workers are spawned, not forked: the crawl process has threads
(Twisted's, Arrow's) that a fork would copy in an unknown state.

A page is never lost to a worker: if one dies (killed, out of memory), the pool is let go
with one error logged and every page from then on is extracted in the crawl's process.
Nor does a worker outlive its crawl: killed with SIGKILL, a crawl cannot stop its
workers, so each one exits by itself within a second of its parent's death. A crawl
being stopped (see `crawler.shutdown`) that cannot wait for a page any longer calls
`terminate`: the workers are terminated, then killed, and the pages they held are left
out (`ExtractionStoppedError`).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from crawler.parsing import parse_health_topic
from crawler.parsing.errors import ExtractionStoppedError
from crawler.parsing.items import EncodedExchange, HealthTopicPage, RawResponse
from pipelines.core.warc import encode_exchange

logger = logging.getLogger(__name__)


PARENT_POLL_SECONDS = 0.5
"""How often a worker checks that the crawl that started it is still alive."""

TERMINATE_WAIT = 2.0
"""Seconds `terminate` gives a worker to exit on SIGTERM before it sends SIGKILL."""


def _start_worker(parent: int) -> None:
    """Workers leave Ctrl-C and a closed terminal (signals sent to the whole foreground
    process group) to the crawl, which finishes its pages before it stops, and exit when
    the crawl is gone (its queues keep a worker waiting forever otherwise)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), name="exit-with-crawl", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(0)


def extract_page(
    body: bytes,
    url: str,
    encoding: str | None,
    exchange: RawResponse | None,
    topic_url: str | None = None,
) -> HealthTopicPage:
    """`parse_health_topic(body, url, encoding=encoding, topic_url=topic_url)`, with
    `exchange` (the response the body came in, when it is to be archived) encoded as WARC
    records in `page.raw`, filed under the page's canonical URL."""
    page = parse_health_topic(body, url, encoding=encoding, topic_url=topic_url)
    if exchange is not None:
        page.raw = EncodedExchange(target_uri=page.url, records=encode_exchange(exchange, page.url))
    return page


class ExtractionPool:
    """`extract_page`, run in `workers` processes (or in this one when 0)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.stopped = False
        """True once `terminate` was called: nothing more is extracted."""
        self._in_flight: dict[int, float] = {}
        """When each page being extracted (or waiting for a worker) was handed over."""
        self._handed_over = 0
        self._executor: ProcessPoolExecutor | None = None
        if workers > 0:
            self._executor = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )

    @property
    def in_process(self) -> bool:
        """True when pages are extracted in the crawl's own process."""
        return self._executor is None

    async def extract(
        self,
        body: bytes,
        url: str,
        encoding: str | None,
        exchange: RawResponse | None = None,
        topic_url: str | None = None,
    ) -> HealthTopicPage:
        """`extract_page(...)`, in a worker when there is one.

        Raises what the parser raises (`ExtractionError` for a page that is not a
        complete health topic), and `ExtractionStoppedError` once the pool is terminated.
        """
        self._handed_over += 1
        page = self._handed_over
        self._in_flight[page] = time.monotonic()
        try:
            return await self._extract(body, url, encoding, exchange, topic_url)
        finally:
            del self._in_flight[page]

    def busy_for(self) -> float:
        """Seconds the longest-running page has been in extraction (0.0 when idle)."""
        if not self._in_flight:
            return 0.0
        return time.monotonic() - min(self._in_flight.values())

    async def _extract(
        self,
        body: bytes,
        url: str,
        encoding: str | None,
        exchange: RawResponse | None,
        topic_url: str | None,
    ) -> HealthTopicPage:
        executor = self._executor
        if executor is not None:
            try:
                future = executor.submit(extract_page, body, url, encoding, exchange, topic_url)
                return await asyncio.wrap_future(future)
            except BrokenProcessPool as error:
                if self.stopped:  # terminated while extracting this page
                    raise ExtractionStoppedError(url) from error
                self._let_go(executor, error)
            except asyncio.CancelledError:
                if self.stopped:  # terminated while this page waited for a worker
                    raise ExtractionStoppedError(url) from None
                raise
        if self.stopped:
            raise ExtractionStoppedError(url)
        return extract_page(body, url, encoding, exchange, topic_url)

    def _let_go(self, executor: Executor, error: BaseException) -> None:
        if self._executor is executor:
            logger.error("page extraction worker died (%s); extracting in this process", error)
            self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (pages being extracted are finished first)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def terminate(self, wait: float = TERMINATE_WAIT) -> None:
        """Stop extracting at once: every page being extracted or waiting for a worker is
        abandoned (its `extract` raises `ExtractionStoppedError`, as does any later one), and
        each worker is sent SIGTERM, then SIGKILL if it has not exited within `wait`
        seconds (a worker stuck in a page may ignore SIGTERM)."""
        self.stopped = True
        executor, self._executor = self._executor, None
        if executor is None:
            return
        workers = list(executor._processes.values())
        executor.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        deadline = time.monotonic() + wait
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join(wait)
        logger.info("page extraction stopped: %d worker(s) terminated", len(workers))

    def kill(self) -> None:
        """SIGKILL every worker, without waiting (safe in a signal handler: the crawl is
        about to end at once)."""
        self.stopped = True
        executor = self._executor
        if executor is not None:
            for worker in list(executor._processes.values()):
                worker.kill()
