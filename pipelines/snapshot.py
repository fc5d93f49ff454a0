"""Snapshot pipeline: every observation and new version of a crawl, committed as one run.

Opens the archive for writing when the crawl starts (lock, recovery of uncommitted
leftovers), buffers rows through the store's `RunWriter`, and when the spider closes
marks topics gone, decides the run's status, and commits: one Parquet file per table,
moved into place, the manifest written last. A crawl that dies before that leaves
nothing the readers see; nor does a crawl that could not reach the site at all
(`crawler.reachability`): it commits nothing and exits 3.

A topic is marked gone only on positive evidence: its own URL answered 404/410, or a
full crawl found it missing from an index whose pages all answered (see the spider's
`unlisted_topics`). An index page that failed makes the run `partial` (exit 1). Gone
observations are held until the end for the shrink guard, the way Spidermon compares a
job with the last one: a run that would mark more than max(GONE_FLOOR, the setting
ARCHIVE_MAX_GONE_SHARE of the live topics) of a language gone marks none (those that
answered 404/410 are kept as `error` observations), and is `partial` with exit 1.

A crawl given NLM's XML dump stores the dump's new and changed records (see
`pipelines.xml_records`). An incremental one (the spider's `plan`) also writes its
cross-check (`crawler.incremental.cross_check`) into the run's `notes`, and the page
changes the dump did not show into its `hidden_changes`: findings, not failures (exit 0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy.utils.defer import deferred_from_coro

from crawler.incremental import REASONS, TopicId, cross_check
from crawler.items import HealthTopicPage, PageFailed, PageGone, PageNotModified
from crawler.reachability import SITE_UNREACHABLE, unreachable_reason
from crawler.urls import MEDLINEPLUS_ORIGIN
from pipelines.dedupe import PageOutcomes
from pipelines.errors import ArchiveError
from pipelines.records import SUCCESS_OUTCOMES, Observation, RunRecord, RunStatus
from pipelines.store import ArchiveStore, RunWriter, TopicKey, new_run_id
from pipelines.xml_records import changed_sections, records_to_store

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

EXIT_SUCCESS = 0
EXIT_FAILED = 1
EXIT_ARCHIVE_UNUSABLE = 3
EXIT_SITE_UNREACHABLE = 3

GONE_FLOOR = 5
"""Topics of a language a run may always mark gone, whatever their share (shrink guard)."""

DIGESTED_SETTINGS = (
    "MEDLINEPLUS_BASE_URL",
    "DOWNLOAD_DELAY",
    "CONCURRENT_REQUESTS_PER_DOMAIN",
    "AUTOTHROTTLE_ENABLED",
    "ROBOTSTXT_OBEY",
    "RETRY_TIMES",
    "USER_AGENT",
    "ARCHIVE_MAX_ERROR_SHARE",
    "ARCHIVE_MAX_GONE_SHARE",
)
"""Settings that change what a crawl fetches or how; their digest is kept per run."""


def settings_digest(settings: BaseSettings) -> str:
    """sha256 (first 16 hex digits) of the settings that shape a crawl."""
    values = {name: settings.get(name) for name in DIGESTED_SETTINGS}
    encoded = json.dumps(values, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:16]


def topic_url(topic: TopicKey) -> str:
    """The canonical URL of a topic."""
    prefix = "/spanish" if topic.language == "es" else ""
    return f"{MEDLINEPLUS_ORIGIN}{prefix}/{topic.slug}.html"


class SnapshotPipeline:
    """Writes each crawl as one committed run of the archive."""

    def __init__(
        self,
        crawler: Crawler,
        archive_path: str,
        max_error_share: float,
        max_gone_share: float = 0.02,
    ) -> None:
        self.crawler = crawler
        self.archive_path = archive_path
        self.max_error_share = max_error_share
        self.max_gone_share = max_gone_share
        self.store: ArchiveStore | None = None
        self.writer: RunWriter | None = None
        self.outcomes = PageOutcomes.of(crawler)
        """DedupePipeline's outcome of each parsed page (it runs before this one)."""
        self.started_at = datetime.now(UTC)
        self.extraction_failures: Counter[str] = Counter()
        self.pages_answered = 0
        """Topic pages the server answered (200 or 304): the base of the error share."""
        self.pages_fetched = 0
        """Topic URLs fetched (every observation but the "no longer listed" ones)."""
        self.answered_gone: list[PageGone] = []
        """Topic pages that answered 404/410, held for the shrink guard until the end."""
        self.held_back = 0
        """Of those, the ones the shrink guard kept as `error` observations."""
        self.served: set[TopicId] = set()
        """Topics whose page answered 200 or 304 in this run."""
        self.confirmed_gone: set[TopicId] = set()
        """Topics this run marked gone."""
        self.hidden_changes: list[str] = []
        """Pages revalidated with an unchanged XML record that had changed, and where."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        pipeline = cls(
            crawler,
            crawler.settings.get("ARCHIVE_PATH"),
            crawler.settings.getfloat("ARCHIVE_MAX_ERROR_SHARE", 0.05),
            crawler.settings.getfloat("ARCHIVE_MAX_GONE_SHARE", 0.02),
        )
        crawler.signals.connect(pipeline.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    # --- start ----------------------------------------------------------------------------
    def open_spider(self) -> None:
        self.started_at = datetime.now(UTC)
        try:
            self.store = ArchiveStore.open(self.archive_path)
            last = self.store.run_ids[-1] if self.store.run_ids else None
            run_id = new_run_id(self.started_at, after=last)
            self.writer = self.store.begin_run(run_id, self.started_at)
        except ArchiveError as error:
            logger.error("archive unusable: %s", error)
            self._set("archive/run/exit_code", EXIT_ARCHIVE_UNUSABLE)
            self._set("archive/run/error", str(error))
            if self.store is not None:
                self.store.close()
                self.store = None
            return
        self._set("archive/run/id", self.writer.run_id)

    def spider_opened(self) -> None:
        """Stop at once a crawl whose archive could not be opened: nothing would be kept."""
        engine = self.crawler.engine
        if self.writer is None and engine is not None:
            deferred_from_coro(engine.close_spider_async(reason="archive_unusable"))

    # --- items ----------------------------------------------------------------------------
    def process_item(self, item: Any) -> Any:
        writer = self.writer
        if writer is None:
            return item
        if isinstance(item, PageGone):
            self.pages_fetched += 1
            self.answered_gone.append(item)
            return item
        observation = self._observation(writer, item)
        if observation is None:
            return item
        self._write(writer, observation)
        self.pages_fetched += 1
        if observation.outcome in SUCCESS_OUTCOMES:
            self.served.add((item.language, item.slug))
        if isinstance(item, HealthTopicPage):
            observed_at = item.fetched_at or datetime.now(UTC)
            if observation.outcome != "unchanged" and writer.add_version(
                item, writer.run_id, observed_at
            ):
                self._inc("archive/versions/written")
            added = writer.add_journal_articles(item, writer.run_id, observed_at)
            if added:
                self._inc("archive/journal_articles/written", added)
            item.raw = None  # written to the WARC file with a new version, or not needed
            if observation.outcome != "unchanged":
                self._note_hidden_change(writer, item)
        return item

    def _observation(self, writer: RunWriter, item: Any) -> Observation | None:
        run_id = writer.run_id
        if isinstance(item, HealthTopicPage):
            self.pages_answered += 1
            return Observation(
                run_id=run_id,
                observed_at=item.fetched_at or datetime.now(UTC),
                url=item.url,
                source_url=item.source_url,
                language=item.language,
                slug=item.slug,
                outcome=self.outcomes.outcome(item),
                http_status=item.http_status,
                last_updated=item.last_updated,
                content_hash=item.content_hash,
                etag=item.etag,
                last_modified=item.last_modified,
            )
        if isinstance(item, PageNotModified):
            self.pages_answered += 1
            latest = writer.index.latest.get(TopicKey(item.language, item.slug))
            return Observation(
                run_id=run_id,
                observed_at=item.fetched_at,
                url=item.url,
                source_url=item.source_url,
                language=item.language,
                slug=item.slug,
                outcome="unchanged",
                http_status=304,
                revalidated=True,
                last_updated=latest.last_updated if latest else None,
                content_hash=latest.content_hash if latest else None,
                etag=item.etag,
                last_modified=item.last_modified,
            )
        if isinstance(item, PageFailed):
            if item.field is not None:
                self.pages_answered += 1
                self.extraction_failures[item.field] += 1
            return Observation(
                run_id=run_id,
                observed_at=item.fetched_at,
                url=item.url,
                source_url=item.source_url,
                language=item.language,
                slug=item.slug,
                outcome="error",
                http_status=item.http_status,
                error=item.error,
                error_field=item.field,
            )
        return None

    def _note_hidden_change(self, writer: RunWriter, page: HealthTopicPage) -> None:
        """Count a new version of a page fetched only to revalidate it: the XML dump did
        not show the change (per section, see `pipelines.xml_records`)."""
        plan = getattr(self.crawler.spider, "plan", None)
        previous = writer.index.latest.get(TopicKey(page.language, page.slug))
        if plan is None or plan.fetch.get(page.url) != "revalidate" or previous is None:
            return
        assert self.store is not None
        sections = changed_sections(self.store, page, previous, writer.run_id)
        self.hidden_changes.append(f"{page.language}/{page.slug}: {', '.join(sections)}")
        self._inc("archive/xml/hidden_changes")
        for section in sections:
            self._inc(f"archive/xml/hidden_changes/{section}")

    def _write(self, writer: RunWriter, observation: Observation) -> None:
        writer.add_observation(observation)
        self._inc(f"archive/observations/{observation.outcome}")

    # --- end ------------------------------------------------------------------------------
    def spider_closed(self, spider: Spider, reason: str) -> None:
        writer, store = self.writer, self.store
        if writer is None or store is None:
            return
        stats = self.crawler.stats
        try:
            unreachable = unreachable_reason(stats.get_stats()) if stats is not None else None
            if unreachable is not None:
                writer.abort()
                error = f"{getattr(spider, 'base_url', '')} could not be reached ({unreachable})"
                logger.info("run %s not committed: %s", writer.run_id, error)
                self._set("archive/run/exit_code", EXIT_SITE_UNREACHABLE)
                self._set(SITE_UNREACHABLE, error)
            elif reason == "shutdown" and not self.pages_fetched:
                logger.warning("run %s not committed: stopped before any page", writer.run_id)
                writer.abort()
                self._set("archive/run/exit_code", EXIT_FAILED)
            else:
                self._commit(writer, spider, reason)
        except (ArchiveError, OSError) as error:
            logger.error("run %s not committed: %s", writer.run_id, error)
            writer.abort()
            self._set("archive/run/exit_code", EXIT_ARCHIVE_UNUSABLE)
            self._set("archive/run/error", str(error))
        finally:
            self.writer = None
            store.close()
            self.store = None

    def _commit(self, writer: RunWriter, spider: Spider, reason: str) -> None:
        incomplete = self._index_failures(spider) + self._mark_gone(writer, spider, reason)
        status, failures = self._status(spider, reason, writer, incomplete)
        self._store_xml_records(writer, spider)
        record = self._run_record(writer, spider, reason, status, failures)
        record.notes = self._cross_check(spider)
        record.hidden_changes = self.hidden_changes
        manifest = writer.commit(record)
        logger.info(
            "run %s committed (%s): %s", manifest.run_id, status, dict(writer.outcome_counts())
        )
        self._set("archive/run/status", status)
        self._set("archive/run/exit_code", EXIT_FAILED if failures else EXIT_SUCCESS)

    def _store_xml_records(self, writer: RunWriter, spider: Spider) -> None:
        """The XML dump's records that are new or changed, of the pages this run fetched."""
        dump = getattr(spider, "xml_dump", None)
        if dump is None or self.store is None:
            return
        rows = records_to_store(
            dump.topics, self.store.xml_fingerprints(), self.served, writer.run_id, dump.dump_date
        )
        writer.add_xml_records(rows)
        self._inc("archive/xml_records/written", len(rows))

    def _cross_check(self, spider: Spider) -> list[str]:
        """An incremental run's notes (see `crawler.incremental.cross_check`), and its plan
        in the stats."""
        plan = getattr(spider, "plan", None)
        if plan is None:
            return []
        for why in REASONS:
            self._set(f"archive/plan/{why}", plan.count(why))
        self._set("archive/plan/index", plan.read_index)
        failed = {
            failure.language for failure in getattr(spider, "failed_index_pages", {}).values()
        }
        notes = cross_check(
            plan,
            confirmed_gone=self.confirmed_gone,
            served=self.served,
            indexed=getattr(spider, "indexed", set()) if plan.read_index else None,
            index_languages=[
                language for language in getattr(spider, "languages", ()) if language not in failed
            ],
        )
        for note in notes:
            logger.warning("cross-check: %s", note)
        self._set("archive/xml/cross_check_notes", len(notes))
        return notes

    @staticmethod
    def _index_failures(spider: Spider) -> list[str]:
        failed = getattr(spider, "failed_index_pages", {})
        return [
            f"index page {url} could not be read ({failure.reason}): no {failure.language}"
            " topic was marked gone for missing from the index"
            for url, failure in failed.items()
        ]

    def _mark_gone(self, writer: RunWriter, spider: Spider, reason: str) -> list[str]:
        """Write the run's gone observations: the pages that answered 404/410 and, after a
        full crawl that finished, the live topics the index no longer lists. Unless the
        shrink guard holds them back: then its reasons (and no topic is marked gone)."""
        gone = list(self.answered_gone)
        if reason == "finished":
            gone += self._unlisted(writer, spider)
        held_back = self._shrink_guard(writer, gone)
        for item in gone:
            if not held_back:
                self._write(writer, gone_observation(writer.run_id, item))
                self.confirmed_gone.add((item.language, item.slug))
            elif item.source_url is not None:
                self.held_back += 1
                observation = dataclasses.replace(
                    gone_observation(writer.run_id, item),
                    outcome="error",
                    error=f"{item.reason}; not marked gone: held back by the shrink guard",
                )
                self._write(writer, observation)
        return held_back

    def _unlisted(self, writer: RunWriter, spider: Spider) -> list[PageGone]:
        unlisted = getattr(spider, "unlisted_topics", None)
        if unlisted is None:
            return []
        live = {topic_url(topic): topic for topic in writer.index.live_topics}
        now = datetime.now(UTC)
        return [
            PageGone(
                url=url,
                language=live[url].language,  # type: ignore[arg-type]
                slug=live[url].slug,
                source_url=None,
                fetched_at=now,
                http_status=None,
                reason="no longer listed in the health-topics index",
            )
            for url in unlisted(live)
        ]

    def _shrink_guard(self, writer: RunWriter, gone: list[PageGone]) -> list[str]:
        """Why the live topics in `gone` are too many to mark gone at once, per language
        (empty when they are not): more than max(GONE_FLOOR, ARCHIVE_MAX_GONE_SHARE of
        the language's live topics)."""
        live = writer.index.live_topics
        leaving: defaultdict[str, set[TopicKey]] = defaultdict(set)
        unlisted: Counter[str] = Counter()
        for item in gone:
            topic = TopicKey(item.language, item.slug)
            if topic in live and topic not in leaving[item.language]:
                leaving[item.language].add(topic)
                unlisted[item.language] += item.source_url is None
        known = Counter(topic.language for topic in live)
        reasons = []
        for language, topics in sorted(leaving.items()):
            limit = max(GONE_FLOOR, math.floor(self.max_gone_share * known[language]))
            if len(topics) <= limit:
                continue
            evidence = []
            if unlisted[language]:
                evidence.append(
                    f"the {language} index lists {unlisted[language]} fewer topics"
                    f" than run {writer.index.run_ids[-1]}"
                )
            if len(topics) > unlisted[language]:
                evidence.append(
                    f"{len(topics) - unlisted[language]} {language} topics answered 404/410"
                )
            reasons.append(
                f"{' and '.join(evidence)}: {len(topics)} of {known[language]} live"
                f" {language} topics would be marked gone, over the limit of {limit}"
                f" (the larger of {GONE_FLOOR} and {self.max_gone_share:.0%} of them);"
                " none was marked gone (-s ARCHIVE_MAX_GONE_SHARE=1 allows a deliberate"
                " removal)"
            )
        return reasons

    def _status(
        self, spider: Spider, reason: str, writer: RunWriter, incomplete: list[str]
    ) -> tuple[RunStatus, list[str]]:
        """The run's status and its reasons: `failed` on its own failures (then with the
        `incomplete` reasons too), `partial` on `incomplete` reasons alone."""
        failures: list[str] = []
        if self.pages_answered and self.extraction_failures:
            failed = sum(self.extraction_failures.values())
            share = failed / self.pages_answered
            if share > self.max_error_share:
                fields = ", ".join(
                    f"{field} ({count})" for field, count in self.extraction_failures.most_common()
                )
                failures.append(
                    f"layout drift: {failed} of {self.pages_answered} pages"
                    f" ({share:.0%}) failed extraction, over the {self.max_error_share:.0%}"
                    f" threshold; missing fields: {fields}"
                )
        unfetched = (
            writer.outcome_counts().get("error", 0)
            - sum(self.extraction_failures.values())
            - self.held_back
        )
        if self.pages_fetched and unfetched / self.pages_fetched > self.max_error_share:
            failures.append(
                f"{unfetched} of {self.pages_fetched} pages could not be fetched"
                f" ({unfetched / self.pages_fetched:.0%}), over the"
                f" {self.max_error_share:.0%} threshold"
            )
        stats = self.crawler.stats
        discovered = int(stats.get_value("archive/discovery/topics", 0)) if stats else 0
        if reason == "finished" and discovered == 0 and getattr(spider, "plan", None) is None:
            failures.append("no topic page was discovered (index or URL list unreachable?)")
        if failures:
            return "failed", failures + incomplete
        if incomplete:
            return "partial", incomplete
        if reason != "finished" or getattr(spider, "limit", None) is not None:
            return "partial", []
        return "success", []

    def _run_record(
        self, writer: RunWriter, spider: Spider, reason: str, status: RunStatus, failures: list[str]
    ) -> RunRecord:
        counts = writer.outcome_counts()
        settings = self.crawler.settings
        return RunRecord(
            run_id=writer.run_id,
            started_at=self.started_at,
            finished_at=datetime.now(UTC),
            status=status,
            finish_reason=reason,
            pages_fetched=self.pages_fetched,
            pages_new=counts.get("new", 0),
            pages_unchanged=counts.get("unchanged", 0),
            pages_same_date_edit=counts.get("same_date_edit", 0),
            pages_error=counts.get("error", 0),
            pages_gone=counts.get("gone", 0),
            settings_digest=settings_digest(settings),
            base_url=str(getattr(spider, "base_url", settings.get("MEDLINEPLUS_BASE_URL"))),
            languages=list(getattr(spider, "languages", ())),
            discovery=str(getattr(spider, "discovery", "index")),
            failure_reasons=failures,
        )

    def _inc(self, key: str, count: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(key, count)

    def _set(self, key: str, value: Any) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.set_value(key, value)


def gone_observation(run_id: str, item: PageGone) -> Observation:
    """The `gone` observation of `item` in run `run_id`."""
    return Observation(
        run_id=run_id,
        observed_at=item.fetched_at,
        url=item.url,
        source_url=item.source_url or item.url,
        language=item.language,
        slug=item.slug,
        outcome="gone",
        http_status=item.http_status,
        error=item.reason,
    )
