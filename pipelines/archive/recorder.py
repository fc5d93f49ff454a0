"""Recording one crawl run: what was fetched, and each version once, ever.

`RunRecorder.begin(store, run_id, started_at)` wraps the table format's run writer
(`pipelines.core.store.RunWriter`, which appends rows per table and a WARC file and
commits them together) with what the rows mean: a page becomes a version (topics, links,
clinical_trials rows and its raw response in the run's WARC file) unless that version is
stored already or was added earlier in the run; a journal article is stored once per
topic; observations are counted per outcome for the run record. After the commit the
archive's state (`pipelines.archive.state`) has taken the run in, so the index the next
run begins with is up to date.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime

from crawler.parsing.items import LANGUAGES, EncodedExchange, HealthTopicPage
from pipelines.archive.index import ArchiveIndex
from pipelines.archive.keys import VersionKey, version_key
from pipelines.archive.state import ArchiveState
from pipelines.core.errors import InvalidRecordError
from pipelines.core.records import (
    OUTCOMES,
    JournalArticleRecord,
    Observation,
    Outcome,
    RunManifest,
    RunRecord,
    VersionRecord,
    XmlRecord,
)
from pipelines.core.schema import clinical_trial_rows, link_rows
from pipelines.core.store import ArchiveStore, RunWriter
from pipelines.core.warc import encode_exchange

logger = logging.getLogger(__name__)


class RunRecorder:
    """One run being recorded; made by `RunRecorder.begin`.

    Each added item is checked at once (so a bad item fails where it is added, naming its
    URL) and kept until `commit`. As a context manager, a run neither committed nor
    aborted is aborted on exit.
    """

    def __init__(self, writer: RunWriter, index: ArchiveIndex) -> None:
        self.writer = writer
        """The table format's writer of the run."""
        self.index = index
        """The archive's index when the run began."""
        self._new_versions: set[VersionKey] = set()
        self._new_articles: set[tuple[str, str, str]] = set()
        self._outcomes: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)

    @classmethod
    def begin(cls, store: ArchiveStore, run_id: str, started_at: datetime) -> RunRecorder:
        """Start recording run `run_id` in `store` (open for writing); commit it with
        `commit`. `run_id` must sort after every committed run (see `new_run_id`)."""
        index = ArchiveState.of(store).index()
        return cls(store.begin_run(run_id, started_at), index)

    @property
    def run_id(self) -> str:
        """The run being recorded."""
        return self.writer.run_id

    @property
    def started_at(self) -> datetime:
        """When it started (UTC)."""
        return self.writer.started_at

    def add_observation(self, observation: Observation) -> None:
        """Record one fetch."""
        self.writer.check_open(observation.run_id)
        self.writer.add_rows({"observations": [observation]}, url=observation.url)
        self._outcomes[observation.outcome] += 1

    def holds_version(self, key: VersionKey) -> bool:
        """Whether version `key` is stored: committed before this run, or added to it."""
        return key in self.index.versions or key in self._new_versions

    def add_version(self, page: HealthTopicPage, run_id: str, observed_at: datetime) -> bool:
        """Store `page` as a version (topics, links, clinical_trials rows), and its raw
        response (`page.raw`, when kept) in the run's WARC file.

        Returns False, writing nothing, when the version is already stored or was added
        earlier in this run: a version is written once, ever. Every row is checked
        before anything is written, so an InvalidRecordError leaves the run as it was.
        """
        self.writer.check_open(run_id)
        key = _checked_version_key(page)
        if self.holds_version(key):
            logger.debug("version %s already stored", key)
            return False
        exchange = _encoded_exchange(page)
        where = self.writer.next_warc_location() if exchange is not None else None
        version = [
            VersionRecord(
                page=page,
                run_id=run_id,
                observed_at=observed_at,
                warc_file=where.file if where else None,
                warc_offset=where.offset if where else None,
            )
        ]
        self.writer.add_rows(
            {
                "topics": version,
                "links": link_rows(version),
                "clinical_trials": clinical_trial_rows(version),
            },
            url=page.url,
            exchange=exchange,
        )
        self._new_versions.add(key)
        return True

    def add_journal_articles(
        self, page: HealthTopicPage, run_id: str, observed_at: datetime
    ) -> int:
        """Store the journal articles of `page` not stored before for its topic.

        Articles whose URL carries no PubMed id are skipped. Returns how many were added.
        """
        self.writer.check_open(run_id)
        records = []
        for article in page.journal_articles:
            if article.pmid is None:
                logger.debug(
                    "journal article without pmid skipped on %s: %s", page.url, article.url
                )
                continue
            key = (page.language, page.slug, article.pmid)
            if key in self.index.journal_articles or key in self._new_articles:
                continue
            records.append(
                JournalArticleRecord(
                    language=page.language,
                    slug=page.slug,
                    pmid=article.pmid,
                    title=article.title,
                    url=article.url,
                    position=article.position,
                    first_seen_run=run_id,
                    first_seen_at=observed_at,
                )
            )
        if records:
            self.writer.add_rows({"journal_articles": records}, url=page.url)
            self._new_articles.update((page.language, page.slug, r.pmid) for r in records)
        return len(records)

    def add_xml_records(self, records: Sequence[XmlRecord]) -> None:
        """Store records of NLM's XML dump (see `pipelines.archive.xml_records` for which)."""
        for record in records:
            self.writer.check_open(record.run_id)
        self.writer.add_rows({"xml_records": records})

    def outcome_counts(self) -> dict[Outcome, int]:
        """Observations added so far, per outcome (for the run record's counts)."""
        return dict(self._outcomes)

    def commit(self, run: RunRecord) -> RunManifest:
        """Commit the run with its run record; returns the manifest. The archive's state
        takes the run in (see `pipelines.archive.state`); then the store compacts and
        checkpoints as its policy says (a failure there is logged: the run stays
        committed)."""
        self.writer.check_open(run.run_id)
        mismatched = [
            outcome for outcome in OUTCOMES if run.count(outcome) != self._outcomes[outcome]
        ]
        if mismatched:
            logger.warning(
                "run %s: the run record's counts of %s differ from the observations added (%s)",
                self.run_id,
                ", ".join(mismatched),
                self._outcomes,
            )
        return self.writer.commit(run)

    def abort(self) -> None:
        """Forget the run: nothing of it is committed. Safe to call twice."""
        self.writer.abort()


def _encoded_exchange(page: HealthTopicPage) -> EncodedExchange | None:
    """`page.raw` as WARC records filed under the page's URL (None when not kept)."""
    raw = page.raw
    if raw is None:
        return None
    if not isinstance(raw, EncodedExchange):
        return EncodedExchange(target_uri=page.url, records=encode_exchange(raw, page.url))
    if raw.target_uri != page.url:
        raise InvalidRecordError(
            "topics", "raw", f"WARC records of {raw.target_uri} given for {page.url}"
        )
    return raw


def _checked_version_key(page: HealthTopicPage) -> VersionKey:
    """The version key of `page`, each part checked so a bad item fails here, named."""
    problems = {
        "language": page.language not in LANGUAGES,
        "slug": not page.slug or not isinstance(page.slug, str),
        "last_updated": not isinstance(page.last_updated, date)
        or isinstance(page.last_updated, datetime),
        "content_hash": not page.content_hash or not isinstance(page.content_hash, str),
    }
    for field_name, bad in problems.items():
        if bad:
            value = getattr(page, field_name)
            raise InvalidRecordError(
                "topics", field_name, f"bad version key part {value!r}", url=page.url
            )
    return version_key(page)
