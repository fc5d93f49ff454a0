"""Fewer passes of Python's cyclic garbage collector while a crawl runs.

Every response leaves hundreds of short-lived objects (Deferreds, Requests, headers,
items), so with Python's default threshold (a young-generation pass every 700 net
allocations) the collector runs every two or three pages, and each full pass walks
everything the crawl has loaded (Scrapy, pyarrow, pandas, the archive's index). On a
2,000-page mirror crawl: 0.5 s of collection in an 8 s first crawl and 0.2 s in a 2.6 s
unchanged re-crawl; with the threshold at 10,000 and what exists at the engine's start
frozen, 0.08 s and 0.06 s. Cyclic garbage still goes: just in larger batches.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Self

from scrapy import signals
from scrapy.exceptions import NotConfigured

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


class CollectorTuning:
    """From the engine's start to its stop: the objects that exist then are frozen (left
    out of every collection) and the young generation holds `threshold` allocations."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self._saved: tuple[int, int, int] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        threshold = crawler.settings.getint("MEDLINEPLUS_GC_THRESHOLD", 0)
        if threshold <= 0:
            raise NotConfigured("MEDLINEPLUS_GC_THRESHOLD is 0")
        extension = cls(threshold)
        crawler.signals.connect(extension.engine_started, signal=signals.engine_started)
        crawler.signals.connect(extension.engine_stopped, signal=signals.engine_stopped)
        return extension

    def engine_started(self) -> None:
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(self.threshold, *self._saved[1:])

    def engine_stopped(self) -> None:
        """Python's collector as it was (the process may crawl again, e.g. in tests)."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            gc.unfreeze()
            self._saved = None
