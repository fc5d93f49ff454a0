"""Dedupe pipeline: one observation per canonical URL per run, and each page classified
against the archive.

Within a run, a second item for a canonical URL already seen (two discovered URLs that
redirect to one page, say) is dropped. Across runs, a parsed page is classified by its
version key (language, slug, last_updated, content_hash): a stored version is
`unchanged` (and writes nothing), content changed on an unchanged date is a
`same_date_edit`, anything else is `new`.

Items pass on as the spider made them (a feed export, `scrapy crawl health_topics -O
items.jsonl`, writes each page's fields at the top level); the outcome travels beside
them, in the crawl's `PageOutcomes`, for the pipelines after this one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar, Self
from weakref import WeakKeyDictionary

from scrapy.exceptions import DropItem

from crawler.parsing.items import HealthTopicPage, PageFailed, PageGone, PageNotModified
from pipelines.core.errors import ArchiveNotFoundError
from pipelines.core.records import Outcome
from pipelines.core.store import ArchiveIndex, ArchiveStore, classify

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

_OBSERVED = (HealthTopicPage, PageNotModified, PageFailed, PageGone)


class PageOutcomes:
    """Dedupe's outcome ("new", "unchanged" or "same_date_edit") of each parsed page of one
    crawl, by canonical URL: one per crawler, shared by the pipelines that need it."""

    _of_crawler: ClassVar[WeakKeyDictionary[Crawler, PageOutcomes]] = WeakKeyDictionary()

    def __init__(self) -> None:
        self._by_url: dict[str, Outcome] = {}

    @classmethod
    def of(cls, crawler: Crawler) -> PageOutcomes:
        """The outcomes of `crawler`'s crawl."""
        return cls._of_crawler.setdefault(crawler, cls())

    def record(self, page: HealthTopicPage, outcome: Outcome) -> None:
        self._by_url[page.url] = outcome

    def outcome(self, page: HealthTopicPage, index: ArchiveIndex) -> Outcome:
        """What dedupe made of `page`, forgotten once asked (each page is asked once);
        when DedupePipeline did not see it (taken out of ITEM_PIPELINES), `page`
        classified against `index` here."""
        recorded = self._by_url.pop(page.url, None)
        return recorded if recorded is not None else classify(page, index)

    def clear(self) -> None:
        self._by_url.clear()


class DedupePipeline:
    """Drops within-run duplicates and classifies parsed pages (see the module docstring)."""

    def __init__(
        self,
        archive_path: str,
        stats: StatsCollector | None = None,
        outcomes: PageOutcomes | None = None,
    ) -> None:
        self.archive_path = archive_path
        self.stats = stats
        self.outcomes = outcomes if outcomes is not None else PageOutcomes()
        self.index = ArchiveIndex.empty()
        self.seen: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.settings.get("ARCHIVE_PATH"), crawler.stats, PageOutcomes.of(crawler))

    def open_spider(self) -> None:
        self.index = _read_index(self.archive_path)
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


def _read_index(path: str) -> ArchiveIndex:
    """The index of the committed runs at `path`; empty before the first crawl."""
    try:
        with ArchiveStore.open(path, read_only=True) as store:
            return store.index()
    except ArchiveNotFoundError:
        return ArchiveIndex.empty()
