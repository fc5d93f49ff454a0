"""Snapshot pipeline: every observation and new version of a crawl, committed as one run.

Begins a run in the crawl's archive session (`pipelines.session`: the archive opened
once, locked and recovered, before the crawl starts), records rows through a
`pipelines.archive.recorder.RunRecorder`, and when the spider closes marks topics gone,
decides the run's status, and commits: one Parquet file per table, moved into place, the
manifest written last. A crawl that dies before that leaves
nothing the readers see; nor does a crawl that could not reach the site at all
(`pipelines.reachability`), or whose archive cannot be written (a disk that fills up or
fails while the crawl writes: the spider is closed at once): it commits nothing and
exits 3. A crawl that ends otherwise than `finished` or `shutdown` (a signal) is a
`failed` run; one stopped by a signal exits 1 whatever it commits. The crawl's stats
carry its exit code and why (EXIT_CODE, RUN_REASONS, RUN_ERROR) for the command.

A page's version is stored before its observation, in the same run, so no committed
observation names a version that is not stored: a page whose version cannot be archived
is an `error` observation, and so is a 304 for a page without a stored current version
(the archive only revalidates those, see `ArchiveIndex.validators`).

A topic is marked gone only on positive evidence from its own URL: it answered 404/410,
or (a live topic the full index crawl no longer listed, which the spider requests to
find out) it redirects to another topic page. Missing from the index is never evidence
by itself. An index page that failed makes the run `partial` (exit 1). The shrink guard,
the way Spidermon compares a job with the last one, lets at most max(GONE_FLOOR, the
setting ARCHIVE_MAX_GONE_SHARE of the live topics) of a language leave in one run
(`gone_limit`): when more are missing from the index, the spider requests none of them;
when more are found gone, none is marked gone (each is kept as an `error` observation).
Either way the run is `partial`, exit 1.

A crawl given NLM's XML dump stores the dump's new and changed records (see
`pipelines.archive.xml_records`). An incremental one (the spider's `plan`) also writes its
cross-check (`pipelines.archive.incremental.cross_check`) into the run's `notes`, and the page
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

from crawler.parsing.items import HealthTopicPage, PageFailed, PageGone, PageNotModified
from crawler.parsing.urls import MEDLINEPLUS_ORIGIN
from pipelines.archive.incremental import REASONS, TopicId, cross_check
from pipelines.archive.index import classify
from pipelines.archive.keys import TopicKey
from pipelines.archive.recorder import RunRecorder
from pipelines.archive.state import xml_fingerprints
from pipelines.archive.xml_records import changed_sections, records_to_store
from pipelines.core.errors import ArchiveError, ArchiveUnwritableError, InvalidRecordError
from pipelines.core.records import SUCCESS_OUTCOMES, Observation, Outcome, RunRecord, RunStatus
from pipelines.core.store import ArchiveStore, new_run_id
from pipelines.exit_codes import EXIT_ARCHIVE, EXIT_FAILED, EXIT_OK
from pipelines.reachability import SITE_UNREACHABLE, unreachable_reason
from pipelines.session import ArchiveSession

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

RUN_REASONS = "archive/run/reasons"
"""Stats key: the committed run's failure reasons (why it is not a `success`)."""
RUN_ERROR = "archive/run/error"
"""Stats key: why the archive could not be used (exit 3; nothing committed)."""
RUN_COMMITTING = "archive/run/committing"
"""Stats key: True while the run's commit is in progress (a stop must wait for it)."""
EXIT_CODE = "archive/run/exit_code"
"""Stats key: the crawl's exit code, once its run is committed or given up."""

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


class ArchivePipeline:
    """Writes each crawl as one committed run of the archive."""

    def __init__(
        self,
        crawler: Crawler,
        session: ArchiveSession,
        max_error_share: float,
        max_gone_share: float = 0.02,
    ) -> None:
        self.crawler = crawler
        self.session = session
        """The crawl's archive (its store is `store` while the run is open)."""
        self.max_error_share = max_error_share
        self.max_gone_share = max_gone_share
        self.store: ArchiveStore | None = None
        self.writer: RunRecorder | None = None
        self.outcomes = session.outcomes
        """DedupePipeline's outcome of each parsed page (it runs before this one)."""
        self.started_at = datetime.now(UTC)
        self.extraction_failures: Counter[str] = Counter()
        self.pages_answered = 0
        """Topic pages the server answered (200 or 304): the base of the error share."""
        self.pages_fetched = 0
        """Topic URLs fetched."""
        self.answered_gone: list[PageGone] = []
        """Topic pages found gone (404/410, or an unlisted topic redirected to another),
        held for the shrink guard until the end."""
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
            ArchiveSession.of(crawler),
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
            self.store = self.session.writable_store()
            last = self.store.run_ids[-1] if self.store.run_ids else None
            run_id = new_run_id(self.started_at, after=last)
            self.writer = RunRecorder.begin(self.store, run_id, self.started_at)
        except (ArchiveError, OSError) as error:
            self._unusable(error)
            return
        self._set("archive/run/id", self.writer.run_id)

    def _unusable(self, error: ArchiveError | OSError) -> None:
        """Give the run up on an archive that cannot be written (a full disk, a failing
        one): nothing is committed, and the crawl exits 3 naming the archive."""
        if isinstance(error, OSError):
            error = ArchiveUnwritableError(self.session.path, error)
        logger.error("archive unusable: %s", error)
        self._set(EXIT_CODE, EXIT_ARCHIVE)
        self._set(RUN_ERROR, str(error))
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.abort()
        self.store = None  # the session closes it

    def spider_opened(self) -> None:
        """Stop at once a crawl whose archive could not be opened: nothing would be kept."""
        if self.writer is None:
            self._close_unusable()

    def _close_unusable(self) -> None:
        """Close the spider: its archive is unusable (`_unusable`), nothing would be kept."""
        engine = self.crawler.engine
        if engine is not None:
            deferred_from_coro(engine.close_spider_async(reason="archive_unusable"))

    # --- items ----------------------------------------------------------------------------
    def process_item(self, item: Any) -> Any:
        writer = self.writer
        if writer is None:
            return item
        try:
            self._keep(writer, item)
        except OSError as error:  # a full or failing disk under the run being written
            self._unusable(error)
            self._close_unusable()
        return item

    def _keep(self, writer: RunRecorder, item: Any) -> None:
        if isinstance(item, PageGone):
            self.pages_fetched += 1
            self.answered_gone.append(item)
            return
        if isinstance(item, HealthTopicPage):
            self._keep_page(writer, item)
            return
        observation = self._observation(writer, item)
        if observation is None:
            return
        self._write(writer, observation)
        self.pages_fetched += 1
        if observation.outcome in SUCCESS_OUTCOMES:
            self.served.add((item.language, item.slug))

    def _keep_page(self, writer: RunRecorder, page: HealthTopicPage) -> None:
        """Store the version `page` shows, then its observation: an observation names a
        version that is stored, in an earlier run or in this one, never a missing one. A
        page whose version cannot be archived is an `error` observation; a storage error
        (OSError) gives the whole run up (see `process_item`)."""
        self.pages_answered += 1
        self.pages_fetched += 1
        observed_at = page.fetched_at or datetime.now(UTC)
        outcome = self.outcomes.outcome(page, writer.index)
        try:
            stored_now = writer.add_version(page, writer.run_id, observed_at)
        except InvalidRecordError as error:
            logger.warning("%s", error)
            self.extraction_failures[error.column] += 1
            self._write(writer, self._page_error(writer, page, str(error), error.column))
            page.raw = None
            return
        if stored_now:
            self._inc("archive/versions/written")
        if stored_now == (outcome == "unchanged"):
            # classified against another state of the archive than this run's: the
            # outcome follows what is stored, "unchanged" only for a version stored before
            outcome = classify(page, writer.index)
        self._write(writer, self._page_observation(writer, page, outcome))
        self.served.add((page.language, page.slug))
        added = writer.add_journal_articles(page, writer.run_id, observed_at)
        if added:
            self._inc("archive/journal_articles/written", added)
        page.raw = None  # written to the WARC file with a new version, or not needed
        if outcome != "unchanged":
            self._note_hidden_change(writer, page)

    @staticmethod
    def _page_observation(
        writer: RunRecorder, page: HealthTopicPage, outcome: Outcome
    ) -> Observation:
        observed_at = page.fetched_at or datetime.now(UTC)
        return Observation.of_page(
            page, run_id=writer.run_id, observed_at=observed_at, outcome=outcome
        )

    @staticmethod
    def _page_error(
        writer: RunRecorder,
        page: HealthTopicPage | PageNotModified,
        error: str,
        field: str | None = None,
    ) -> Observation:
        """The `error` observation of an answered page whose version is not stored."""
        return Observation(
            run_id=writer.run_id,
            observed_at=page.fetched_at or datetime.now(UTC),
            url=page.url,
            source_url=page.source_url,
            language=page.language,
            slug=page.slug,
            outcome="error",
            http_status=page.http_status if isinstance(page, HealthTopicPage) else 304,
            error=error,
            error_field=field,
        )

    def _observation(self, writer: RunRecorder, item: Any) -> Observation | None:
        run_id = writer.run_id
        if isinstance(item, PageNotModified):
            self.pages_answered += 1
            latest = writer.index.latest.get(TopicKey(item.language, item.slug))
            if latest is None or item.url not in writer.index.validators:
                # Never asked with validators: nothing stored for it to confirm.
                return self._page_error(
                    writer,
                    item,
                    "answered 304 Not Modified, but the archive holds no current version"
                    " of it to confirm; the next crawl fetches it in full",
                )
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
                last_updated=latest.last_updated,
                content_hash=latest.content_hash,
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

    def _note_hidden_change(self, writer: RunRecorder, page: HealthTopicPage) -> None:
        """Count a new version of a page fetched only to revalidate it: the XML dump did
        not show the change (per section, see `pipelines.archive.xml_records`)."""
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

    def _write(self, writer: RunRecorder, observation: Observation) -> None:
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
                self._set(EXIT_CODE, EXIT_ARCHIVE)
                self._set(SITE_UNREACHABLE, error)
            elif reason == "shutdown" and not self.pages_fetched:
                logger.warning("run %s not committed: stopped before any page", writer.run_id)
                writer.abort()
                self._set(EXIT_CODE, EXIT_FAILED)
            else:
                self._commit(writer, spider, reason)
        except (ArchiveError, OSError) as error:
            logger.error("run %s not committed: %s", writer.run_id, error)
            self._unusable(error)
        finally:
            self.writer = None
            self.store = None  # the session closes it

    def _commit(self, writer: RunRecorder, spider: Spider, reason: str) -> None:
        incomplete = self._index_failures(spider) + self._mark_gone(writer, spider, reason)
        status, failures = self._status(spider, reason, writer, incomplete)
        self._store_xml_records(writer, spider)
        record = self._run_record(writer, spider, reason, status, failures)
        record.notes = self._cross_check(spider)
        record.hidden_changes = self.hidden_changes
        self._set(RUN_COMMITTING, True)
        try:
            manifest = writer.commit(record)
            self._set("archive/run/status", status)
        finally:
            self._set(RUN_COMMITTING, False)
        logger.info(
            "run %s committed (%s): %s", manifest.run_id, status, dict(writer.outcome_counts())
        )
        self._set(RUN_REASONS, failures)
        # a run stopped by a signal is incomplete whatever it holds
        self._set(EXIT_CODE, EXIT_FAILED if failures or reason == "shutdown" else EXIT_OK)

    def _store_xml_records(self, writer: RunRecorder, spider: Spider) -> None:
        """The XML dump's records that are new or changed, of the pages this run fetched."""
        dump = getattr(spider, "xml_dump", None)
        if dump is None or self.store is None:
            return
        rows = records_to_store(
            dump.topics, xml_fingerprints(self.store), self.served, writer.run_id, dump.dump_date
        )
        writer.add_xml_records(rows)
        self._inc("archive/xml_records/written", len(rows))

    def _cross_check(self, spider: Spider) -> list[str]:
        """An incremental run's notes (see `pipelines.archive.incremental.cross_check`), and
        its plan in the stats."""
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

    def live_topic_urls(self) -> list[str]:
        """The canonical URLs of the archive's live topics: what a full crawl expects to
        find listed again (none while no run is open)."""
        if self.writer is None:
            return []
        return [topic_url(topic) for topic in self.writer.index.live_topics]

    def gone_limit(self, language: str) -> int:
        """The most live topics of `language` one run may find gone (the shrink guard):
        max(GONE_FLOOR, ARCHIVE_MAX_GONE_SHARE of the language's live topics)."""
        live = self.writer.index.live_topics if self.writer is not None else frozenset()
        known = sum(topic.language == language for topic in live)
        return max(GONE_FLOOR, math.floor(self.max_gone_share * known))

    def _mark_gone(self, writer: RunRecorder, spider: Spider, reason: str) -> list[str]:
        """Write the run's gone observations (the topic pages found gone), unless the
        shrink guard holds them back: then its reasons, and each is an `error`."""
        unlisted = self._unlisted(spider) if reason == "finished" else {}
        held_back = self._shrink_guard(writer, self.answered_gone, unlisted)
        for item in self.answered_gone:
            observation = gone_observation(writer.run_id, item)
            if not held_back:
                self.confirmed_gone.add((item.language, item.slug))
            else:
                self.held_back += 1
                observation = dataclasses.replace(
                    observation,
                    outcome="error",
                    error=f"{item.reason}; not marked gone: held back by the shrink guard",
                )
            self._write(writer, observation)
        return held_back

    def _unlisted(self, spider: Spider) -> dict[str, list[str]]:
        """Per language, the live topics a full index crawl did not find listed (see the
        spider's `unlisted_topics`)."""
        unlisted = getattr(spider, "unlisted_topics", None)
        if unlisted is None:
            return {}
        found: dict[str, list[str]] = unlisted(self.live_topic_urls())
        return found

    def _shrink_guard(
        self, writer: RunRecorder, gone: list[PageGone], unlisted: dict[str, list[str]]
    ) -> list[str]:
        """Why a language has too many topics leaving at once (empty when none has): more
        `unlisted` topics than its `gone_limit` (the spider requested none of them), or
        more live topics in `gone`."""
        live = writer.index.live_topics
        leaving: defaultdict[str, set[TopicKey]] = defaultdict(set)
        for item in gone:
            topic = TopicKey(item.language, item.slug)
            if topic in live:
                leaving[item.language].add(topic)
        known = Counter(topic.language for topic in live)
        reasons = []
        for language in sorted(leaving.keys() | unlisted.keys()):
            limit = self.gone_limit(language)
            over = (
                f"over the limit of {limit} (the larger of {GONE_FLOOR} and"
                f" {self.max_gone_share:.0%} of {known[language]} live {language} topics)"
            )
            allow = "-s ARCHIVE_MAX_GONE_SHARE=1 allows a deliberate removal"
            missing = len(unlisted.get(language, ()))
            if missing > limit:
                reasons.append(
                    f"the {language} index lists {missing} fewer topics than run"
                    f" {writer.index.run_ids[-1]}, {over}: none of them was requested"
                    f" to confirm it, none was marked gone ({allow})"
                )
            elif len(leaving[language]) > limit:
                reasons.append(
                    f"{len(leaving[language])} {language} topics answered 404/410 or"
                    f" redirect to another topic, {over}: none was marked gone ({allow})"
                )
        return reasons

    def _status(
        self, spider: Spider, reason: str, writer: RunRecorder, incomplete: list[str]
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
        if reason not in {"finished", "shutdown"}:
            failures.append(f"the crawl ended early ({reason}): see the log")
        if failures:
            return "failed", failures + incomplete
        if incomplete:
            return "partial", incomplete
        if reason != "finished" or getattr(spider, "limit", None) is not None:
            return "partial", []
        return "success", []

    def _run_record(
        self,
        writer: RunRecorder,
        spider: Spider,
        reason: str,
        status: RunStatus,
        failures: list[str],
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
        source_url=item.source_url,
        language=item.language,
        slug=item.slug,
        outcome="gone",
        http_status=item.http_status,
        error=item.reason,
    )
