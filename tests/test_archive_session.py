"""One archive session per crawl: opened once, shared by the conditional-request
middleware and the dedupe and snapshot pipelines, closed when the engine stops."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler

from crawler.conditional import ConditionalRequestMiddleware
from pipelines.archiving import EXIT_CODE, RUN_ERROR, ArchivePipeline
from pipelines.core.errors import ArchiveLockedError
from pipelines.core.store import ArchiveStore
from pipelines.dedupe import DedupePipeline
from pipelines.session import ArchiveSession
from tests.archive_factory import at, commit_run, make_page


def _crawler(archive: Path) -> Crawler:
    return get_crawler(
        settings_dict={"ARCHIVE_PATH": str(archive), "EXTENSIONS": {ArchiveSession: 0}}
    )


def test_the_crawl_components_share_one_open_archive_and_one_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_run(tmp_path, at(date(2024, 3, 1)), [make_page("asthma")])
    opened: list[tuple[Path, bool]] = []
    real_open = ArchiveStore.open

    def counting_open(path: Path | str, **options: Any) -> ArchiveStore:
        opened.append((Path(path), options.get("read_only", False)))
        return real_open(path, **options)

    monkeypatch.setattr(ArchiveStore, "open", staticmethod(counting_open))
    crawler = _crawler(tmp_path)
    middleware = ConditionalRequestMiddleware.from_crawler(crawler)
    dedupe = DedupePipeline.from_crawler(crawler)
    snapshot = ArchivePipeline.from_crawler(crawler)
    dedupe.open_spider()
    snapshot.open_spider()

    assert opened == [(tmp_path, False)]
    session = ArchiveSession.of(crawler)
    index = session.index()
    assert index.run_ids
    assert dedupe.index is index
    assert snapshot.writer is not None
    assert snapshot.writer.index is index
    assert middleware.validators is index.validators
    assert dedupe.outcomes is snapshot.outcomes is session.outcomes

    crawler.signals.send_catch_log(signals.engine_stopped)
    assert session.store is None
    ArchiveStore.open(tmp_path).close()  # the lock was released, the open run aborted
    assert len(list((tmp_path / "_runs").glob("*.json"))) == 1


def test_an_archive_the_session_cannot_open_gives_the_run_up_with_exit_3(tmp_path: Path) -> None:
    with ArchiveStore.open(tmp_path):
        crawler = _crawler(tmp_path)
    session = ArchiveSession.of(crawler)
    assert session.store is None
    assert isinstance(session.error, ArchiveLockedError)
    assert len(ConditionalRequestMiddleware.from_crawler(crawler).validators) == 0
    snapshot = ArchivePipeline.from_crawler(crawler)
    snapshot.open_spider()
    assert snapshot.writer is None
    assert crawler.stats is not None
    assert crawler.stats.get_value(EXIT_CODE) == 3
    assert str(crawler.stats.get_value(RUN_ERROR)).startswith("another crawl is writing")


def test_components_without_the_session_extension_say_so(tmp_path: Path) -> None:
    crawler = get_crawler(settings_dict={"ARCHIVE_PATH": str(tmp_path)})
    with pytest.raises(RuntimeError, match="the crawl has no archive session"):
        DedupePipeline.from_crawler(crawler)
    assert not tmp_path.joinpath("_archive.json").exists()
