"""One archive session per crawl: the archive opened once for writing, shared by the
crawl's components.

A crawl uses its archive in four places: the crawl command (the lock check before any
fetch, the incremental plan), the conditional-request middleware (the validators),
dedupe (the index) and the snapshot pipeline (the run writer). `ArchiveSession` opens
it once, taking the lock, recovering and building the index, and is a Scrapy
extension: the components reach it with `ArchiveSession.of(crawler)`
(`crawler.get_extension`), so they share one store and one index, which the run's
commit keeps up to date, and dedupe's outcome of each page (`PageOutcomes`).

The crawl command opens the session before Scrapy starts, so an unusable archive is one
`error:` line and exit 3 before anything is fetched, and hands it to its crawler
(`hand_to`). A crawl started otherwise (`scrapy crawl health_topics`) has the extension
open it; when it cannot, the session keeps the error and the snapshot pipeline gives
the run up with it (exit 3). The session is closed, releasing the lock, when the
engine stops.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals

from crawler.parsing.items import HealthTopicPage
from pipelines.archive.index import ArchiveIndex, classify
from pipelines.archive.state import ArchiveState
from pipelines.core.compaction import DEFAULT_COMPACT_EVERY, CompactionPolicy, policy_every
from pipelines.core.errors import ArchiveError, ArchiveUnwritableError
from pipelines.core.records import Outcome
from pipelines.core.store import ArchiveStore

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

ARCHIVE_SESSION = "ARCHIVE_SESSION"
"""Setting: the session the crawl command opened for its crawler (see `hand_to`)."""


def compaction_policy(settings: BaseSettings) -> CompactionPolicy:
    """The policy of the setting ARCHIVE_COMPACT_EVERY; ValueError naming it when bad."""
    every = settings.getint("ARCHIVE_COMPACT_EVERY", DEFAULT_COMPACT_EVERY)
    try:
        return policy_every(every)
    except ValueError as error:
        raise ValueError(f"ARCHIVE_COMPACT_EVERY {error}") from None


class PageOutcomes:
    """Dedupe's outcome ("new", "unchanged" or "same_date_edit") of each parsed page of one
    crawl, by canonical URL: one per session, shared by the pipelines that need it."""

    def __init__(self) -> None:
        self._by_url: dict[str, Outcome] = {}

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


class ArchiveSession:
    """A crawl's archive, open for writing from before the first request to the end."""

    def __init__(
        self, path: Path, store: ArchiveStore | None, error: ArchiveError | None = None
    ) -> None:
        self.path = path
        """The archive directory."""
        self.store = store
        """The archive, locked and recovered; None when it could not be opened, or once
        the session is closed."""
        self.error = error
        """Why the archive could not be opened (None when it was)."""
        self.outcomes = PageOutcomes()
        """What dedupe made of each parsed page, for the snapshot pipeline."""

    @classmethod
    def open(cls, path: Path | str, policy: CompactionPolicy) -> ArchiveSession:
        """Open the archive at `path` for writing (creating it when missing) and build its
        index; `policy` says when it compacts after a commit.

        ArchiveError when it cannot be used: locked, damaged, newer, on a full or
        read-only disk.
        """
        store = ArchiveStore.open(path, policy=policy)
        try:
            ArchiveState.of(store).index()
        except OSError as error:
            store.close()
            raise ArchiveUnwritableError(Path(path), error) from error
        except BaseException:
            store.close()
            raise
        return cls(Path(path), store)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchiveSession:
        """The session the crawl command handed to `crawler`, or one opened here at the
        setting ARCHIVE_PATH (with the error, when it cannot be opened)."""
        session = crawler.settings.get(ARCHIVE_SESSION)
        if not isinstance(session, ArchiveSession):
            path = Path(crawler.settings.get("ARCHIVE_PATH"))
            policy = compaction_policy(crawler.settings)
            try:
                session = cls.open(path, policy)
            except ArchiveError as error:
                session = cls(path, None, error)
        crawler.signals.connect(session.close, signal=signals.engine_stopped)
        return session

    @staticmethod
    def of(crawler: Crawler) -> ArchiveSession:
        """The session of `crawler`'s crawl; RuntimeError when the extension is not in
        EXTENSIONS."""
        session = crawler.get_extension(ArchiveSession)
        if session is None:
            raise RuntimeError(
                "the crawl has no archive session: add pipelines.session.ArchiveSession "
                "to the setting EXTENSIONS"
            )
        return session

    def hand_to(self, crawler: Crawler) -> None:
        """Make this session the one of `crawler`'s crawl (before it starts)."""
        crawler.settings.set(ARCHIVE_SESSION, self, priority="cmdline")

    def writable_store(self) -> ArchiveStore:
        """The open archive; the ArchiveError that kept it from opening otherwise."""
        if self.store is not None:
            return self.store
        if self.error is not None:
            raise self.error
        raise ArchiveError(f"the archive session of {self.path} is closed", path=self.path)

    def index(self) -> ArchiveIndex:
        """The index of the committed runs; empty when the archive could not be opened."""
        return (
            ArchiveState.of(self.store).index() if self.store is not None else ArchiveIndex.empty()
        )

    def close(self) -> None:
        """Abort a run still open and release the lock. Safe to call twice."""
        store, self.store = self.store, None
        if store is not None:
            store.close()

    def __repr__(self) -> str:
        state = "open" if self.store is not None else "closed"
        return f"<ArchiveSession {self.path} ({state})>"
