"""Dedupe pipeline: one observation per canonical URL per run, and each page classified
against the archive.

Within a run, a second item for a canonical URL already seen (two discovered URLs that
redirect to one page, say) is dropped. Across runs, a parsed page is classified by its
version key (language, slug, last_updated, content_hash): a stored version is
`unchanged` (and writes nothing), content changed on an unchanged date is a
`same_date_edit`, anything else is `new`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from scrapy.exceptions import DropItem

from crawler.items import HealthTopicPage, PageFailed, PageGone, PageNotModified
from pipelines.errors import ArchiveNotFoundError
from pipelines.records import Outcome
from pipelines.store import ArchiveIndex, ArchiveStore, classify

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

_OBSERVED = (HealthTopicPage, PageNotModified, PageFailed, PageGone)


@dataclass(kw_only=True, slots=True)
class ClassifiedPage:
    """A parsed page with what it is relative to the archive."""

    page: HealthTopicPage
    """The page as extracted."""
    outcome: Outcome
    """"new", "unchanged" or "same_date_edit"."""


class DedupePipeline:
    """Drops within-run duplicates and classifies parsed pages (see the module docstring)."""

    def __init__(self, archive_path: str, stats: StatsCollector | None = None) -> None:
        self.archive_path = archive_path
        self.stats = stats
        self.index = ArchiveIndex.empty()
        self.seen: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.settings.get("ARCHIVE_PATH"), crawler.stats)

    def open_spider(self) -> None:
        self.index = _read_index(self.archive_path)
        self.seen.clear()

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, _OBSERVED):
            return item
        if item.url in self.seen:
            self._inc("archive/dedupe/dropped")
            raise DropItem(f"duplicate of {item.url}", log_level="INFO")
        self.seen.add(item.url)
        if not isinstance(item, HealthTopicPage):
            return item
        outcome = classify(item, self.index)
        self._inc(f"archive/dedupe/{outcome}")
        return ClassifiedPage(page=item, outcome=outcome)

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(key)


def _read_index(path: str) -> ArchiveIndex:
    """The index of the committed runs at `path`; empty before the first crawl."""
    try:
        with ArchiveStore.open(path, read_only=True) as store:
            return store.index()
    except ArchiveNotFoundError:
        return ArchiveIndex.empty()
