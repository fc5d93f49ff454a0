"""Dedupe pipeline: one observation per canonical URL per run, and each page classified
against the archive.

Within a run, a second item for a canonical URL already seen (two discovered URLs that
redirect to one page, say) is dropped. Across runs, a parsed page is classified by its
version key (language, slug, last_updated, content_hash): a stored version is
`unchanged` (and writes nothing), content changed on an unchanged date is a
`same_date_edit`, anything else is `new`.

Items pass on as the spider made them (a feed export, `scrapy crawl health_topics -O
items.jsonl`, writes each page's fields at the top level); the outcome travels beside
them, in the crawl session's `PageOutcomes`, for the pipelines after this one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Self

from scrapy.exceptions import DropItem

from crawler.parsing.items import HealthTopicPage, PageFailed, PageGone, PageNotModified
from pipelines.archive.index import ArchiveIndex, classify
from pipelines.session import ArchiveSession, PageOutcomes

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

_OBSERVED = (HealthTopicPage, PageNotModified, PageFailed, PageGone)


class DedupePipeline:
    """Drops within-run duplicates and classifies parsed pages (see the module docstring)."""

    def __init__(
        self,
        session: ArchiveSession,
        stats: StatsCollector | None = None,
        outcomes: PageOutcomes | None = None,
    ) -> None:
        self.session = session
        """The crawl's archive, whose index pages are classified against."""
        self.stats = stats
        self.outcomes = outcomes if outcomes is not None else PageOutcomes()
        self.index = ArchiveIndex.empty()
        self.seen: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        session = ArchiveSession.of(crawler)
        return cls(session, crawler.stats, session.outcomes)

    def open_spider(self) -> None:
        self.index = self.session.index()
        self.seen.clear()
        self.outcomes.clear()

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
        self.outcomes.record(item, outcome)
        return item

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(key)
