"""A version is stored with the observation that names it, or the page or the run fails.

The acceptance test of a disk that fills for a moment: a crawl onto a small tmpfs that
is filled to ENOSPC from outside while the crawl fetches, then freed. The crawl exits 3
and verify exits 0; every `new` or `same_date_edit` observation has its version; and
the next crawl completes the archive to what a clean crawl of the site holds. Then the
snapshot pipeline in-process: a page whose version cannot be stored is an `error`
observation, a 304 that confirms no stored version is one too, and a storage error
gives the whole run up.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from scrapy.utils.test import get_crawler

from crawler.commands.cli import main
from crawler.parsing.items import EncodedExchange, PageNotModified
from pipelines.archive.keys import version_key
from pipelines.archive.recorder import RunRecorder
from pipelines.archive.state import ArchiveState
from pipelines.archiving import EXIT_CODE, ArchivePipeline
from pipelines.core.schema import VERSION_KEY
from pipelines.core.store import ArchiveStore
from pipelines.exit_codes import EXIT_ARCHIVE
from pipelines.notebook import open_archive
from pipelines.session import ArchiveSession
from tests.archive_factory import at, commit_run, make_page, topic_url
from tests.crawl_runner import QUICK, crawl
from tests.site_server import SiteServer
from tests.tmpfs import mounted_tmpfs

EDITED = {
    "/acne.html": ("Acne is a common skin disease", "Acne is a very common skin disease"),
    "/asthma.html": ("<p>", "<p>Asthma is a lung disease. "),
}
"""Pages the site changes after the first crawl (old text, new text), so the crawl that
meets the full disk has new versions to store."""
OPTIONS = [*QUICK, "--languages", "en"]
IGNORED = ("run_id", "observed_at", "fetched_at", "warc_file", "warc_offset")
"""Columns that differ between two crawls of the same site (when, and where the raw page
is)."""


def _verify(capsys: pytest.CaptureFixture[str], archive: Path) -> tuple[int, str]:
    code = main(["verify", "--archive", str(archive)])
    out, err = capsys.readouterr()
    return code, out + err


def _next_second() -> None:
    """Run ids start with their start second and must sort after the last committed one."""
    time.sleep(1.01 - time.time() % 1)


def _edit_site(site: SiteServer) -> None:
    for path, (old, new) in EDITED.items():
        body = site.file_bytes(path).decode("utf-8")
        assert old in body
        site.replace_file(path, body.replace(old, new, 1))


def _fill(disk: Path) -> Path:
    """Fill `disk` to its last byte (from outside the crawl); the file that fills it."""
    filler = disk / "filler"
    space = os.statvfs(disk)
    with pytest.raises(OSError, match="No space left on device"):
        filler.write_bytes(b"\0" * (space.f_bavail * space.f_frsize + 1))
    return filler


def _start_crawl(site: SiteServer, archive: Path) -> subprocess.Popen[str]:
    """A crawl of `site` into `archive`, started in the background."""
    command = [sys.executable, "-m", "crawler.commands.cli", "crawl", "--base-url", site.base_url]
    command += ["--archive", str(archive), *OPTIONS]
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True)


def _comparable(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`frame` without the IGNORED columns, in `keys` order, each value as text (lists
    and records included)."""
    kept = frame.drop(columns=[name for name in IGNORED if name in frame.columns])
    return kept.sort_values(keys).reset_index(drop=True).astype(str)


def _assert_every_version_named_is_stored(archive: Path) -> None:
    """Every `new` or `same_date_edit` observation's version is stored."""
    observations = open_archive(archive).observations()
    with ArchiveStore.open(archive, read_only=True) as store:
        stored = ArchiveState.of(store).stored_versions().select(list(VERSION_KEY)).to_pandas()
    named = observations[observations["outcome"].isin(["new", "same_date_edit"])]
    assert len(named)
    found = named.merge(stored, on=list(VERSION_KEY), how="left", indicator=True)
    assert (found["_merge"] == "both").all(), found


def test_a_disk_full_for_a_moment_fails_the_run_and_the_next_crawl_completes_the_archive(
    quick_site: SiteServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mounted_tmpfs(tmp_path / "disk") as disk:
        archive = disk.path / "archive"
        first = crawl(quick_site.base_url, archive, *OPTIONS)
        assert first.returncode == 0, first
        _edit_site(quick_site)

        _next_second()
        quick_site.slow_down(0.1)
        quick_site.clear_log()
        with _start_crawl(quick_site, archive) as process:
            deadline = time.monotonic() + 30
            while len(quick_site.requests) < 10:  # robots.txt, the index, some topics
                assert process.poll() is None, "the crawl ended before the disk filled"
                assert time.monotonic() < deadline, "the crawl requested no page in 30 s"
                time.sleep(0.02)
            filler = _fill(disk.path)
            _, stderr = process.communicate(timeout=60)
        filler.unlink()  # the disk is free again
        quick_site.slow_down(0)

        assert process.returncode == EXIT_ARCHIVE, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, stderr
        assert "No space left on device" in errors[0]
        code, output = _verify(capsys, archive)
        assert code == 0, output
        reader = open_archive(archive)
        assert len(reader.run_ids) == 1  # the first crawl's: the failed one committed nothing
        _assert_every_version_named_is_stored(archive)

        _next_second()
        quick_site.clear_log()
        clean = tmp_path / "clean"
        with _start_crawl(quick_site, clean) as reference:  # beside the next crawl
            last = crawl(quick_site.base_url, archive, *OPTIONS)
            _, reference_log = reference.communicate(timeout=120)
            assert reference.returncode == 0, reference_log
        assert last.returncode == 0, last
        code, output = _verify(capsys, archive)
        assert code == 0, output
        _assert_every_version_named_is_stored(archive)
        repaired, expected = open_archive(archive), open_archive(clean)
        topic_keys = ["language", "slug"]
        pd.testing.assert_frame_equal(
            _comparable(repaired.topics(), topic_keys), _comparable(expected.topics(), topic_keys)
        )
        link_keys = [*topic_keys, "section", "position"]
        pd.testing.assert_frame_equal(
            _comparable(repaired.links(), link_keys), _comparable(expected.links(), link_keys)
        )
        assert set(repaired.observations()["run_id"]) == set(repaired.run_ids)
        for path in EDITED:  # fetched in full by both crawls
            assert [request.status for request in quick_site.requests_for(path)] == [200, 200]


# --- the snapshot pipeline, in-process --------------------------------------------------


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[ArchivePipeline]:
    """A snapshot pipeline with its run open on an archive of one run (asthma); the run
    is aborted and the archive closed after the test."""
    commit_run(tmp_path / "archive", at(date(2024, 3, 1)), [make_page("asthma")])
    crawler = get_crawler(
        settings_dict={
            "ARCHIVE_PATH": str(tmp_path / "archive"),
            "EXTENSIONS": {ArchiveSession: 0},
        }
    )
    built = ArchivePipeline.from_crawler(crawler)
    built.open_spider()
    assert built.writer is not None
    yield built
    ArchiveSession.of(crawler).close()


def _writer(pipeline: ArchivePipeline) -> RunRecorder:
    assert pipeline.writer is not None
    return pipeline.writer


def test_a_page_whose_version_cannot_be_stored_is_an_error_observation(
    pipeline: ArchivePipeline,
) -> None:
    page = make_page("acne")
    page.raw = EncodedExchange(target_uri=topic_url("copd"), records=b"not for this page")
    writer = _writer(pipeline)
    pipeline.process_item(page)
    assert writer.outcome_counts()["error"] == 1
    assert writer.outcome_counts()["new"] == 0
    assert not writer.holds_version(version_key(page))
    assert not (writer.writer._staging / "run.warc.gz").exists()  # nothing written for it


def test_an_outcome_follows_what_is_stored(pipeline: ArchivePipeline) -> None:
    writer = _writer(pipeline)
    page = make_page("acne")
    pipeline.outcomes.record(page, "unchanged")  # classified against another archive state
    pipeline.process_item(page)
    counts = writer.outcome_counts()
    assert (counts["new"], counts["unchanged"]) == (1, 0)
    assert writer.holds_version(version_key(page))


def test_a_304_that_confirms_no_stored_version_is_an_error_observation(
    pipeline: ArchivePipeline,
) -> None:
    writer = _writer(pipeline)
    for slug in ("asthma", "acne"):  # stored, with validators; never stored
        pipeline.process_item(
            PageNotModified(
                url=topic_url(slug),
                language="en",
                slug=slug,
                source_url=topic_url(slug),
                fetched_at=at(date(2024, 3, 2)),
                etag='"x"',
            )
        )
    counts = writer.outcome_counts()
    assert (counts["unchanged"], counts["error"]) == (1, 1)


def test_a_storage_error_gives_the_run_up(
    pipeline: ArchivePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _writer(pipeline)
    staging = writer.writer._staging

    def disk_full(*arguments: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(RunRecorder, "add_version", disk_full)
    closed: list[bool] = []  # the spider is closed at once (no engine here to do it)
    monkeypatch.setattr(pipeline, "_close_unusable", lambda: closed.append(True))
    pipeline.process_item(make_page("acne"))
    assert pipeline.writer is None
    assert pipeline.crawler.stats is not None
    assert pipeline.crawler.stats.get_value(EXIT_CODE) == EXIT_ARCHIVE
    assert writer.outcome_counts()["new"] == 0
    assert not staging.exists()
    assert closed == [True]
