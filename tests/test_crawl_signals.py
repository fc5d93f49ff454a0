"""Stop signals during a crawl whose page extraction hangs (tests/hanging_extraction.py).

SIGTERM and SIGHUP alike: logged, the crawl stops within 30 s, what was completed is
committed as `partial` (exit 1), or nothing when nothing was. A second SIGINT stops at
once and commits nothing more. The archive verifies afterwards either way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from scrapy.settings import Settings

from crawler.commands.cli import main
from crawler.shutdown import EXTRACTION_GRACE, CrawlShutdown
from pipelines.archiving import RUN_COMMITTING
from pipelines.notebook import open_archive
from tests.crawl_runner import PERMISSIVE_ROBOTS, QUICK, crawl, last_run
from tests.site_server import SiteServer

HANGING = Path(__file__).with_name("hanging_extraction.py")
PATHS = ["/asthma.html", "/acne.html", "/anemia.html"]
EDITED = "/asthma.html"
"""Changed since the baseline: answered 200, so extracted (and the extraction hangs);
the other pages are answered 304 and need no extraction."""
STOP_WITHIN = 30.0


@pytest.fixture(scope="module")
def server() -> Iterator[SiteServer]:
    with SiteServer() as site:
        site.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
        yield site


@pytest.fixture(scope="module")
def baseline(server: SiteServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive holding one run of PATHS."""
    archive = tmp_path_factory.mktemp("baseline") / "archive"
    result = crawl(server.base_url, archive, *QUICK, *_url_options())
    assert result.returncode == 0, result
    return archive


@pytest.fixture
def archive(baseline: Path, server: SiteServer, tmp_path: Path) -> Iterator[Path]:
    """A copy of the baseline, with EDITED changed on the site since."""
    copy = Path(shutil.copytree(baseline, tmp_path / "archive"))
    server.replace_file(EDITED, server.file_bytes(EDITED) + b"\n<!-- edited -->\n")
    yield copy
    server.restore_file(EDITED)


def _url_options(paths: list[str] = PATHS) -> list[str]:
    return [option for path in paths for option in ("--url", f"https://medlineplus.gov{path}")]


class HangingCrawl:
    """`crawl` of `paths` with extraction that hangs (unless not `hanging`), in a child
    process logging to a file."""

    def __init__(
        self,
        server: SiteServer,
        archive: Path,
        log: Path,
        paths: list[str] = PATHS,
        *options: str,
        hanging: bool = True,
    ) -> None:
        launcher = [str(HANGING)] if hanging else ["-m", "crawler.commands.cli"]
        command = [sys.executable, *launcher, "crawl", "--base-url", server.base_url]
        command += ["--archive", str(archive), *QUICK, *_url_options(paths), *options]
        command += ["--log-level", "DEBUG"]
        environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(command, stderr=stderr, env=environment)

    def wait_for(self, done: Callable[[str], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not done(self.log.read_text()):
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"no {what} in 60 s:\n{self.log.read_text()}"
            time.sleep(0.05)

    def wait_until_extracting(self, edited_url: str) -> None:
        """Until the unchanged pages are archived and the edited one fetched (its
        extraction then starts, and hangs)."""
        self.wait_for(
            lambda log: (
                log.count("Scraped from <304") == len(PATHS) - 1
                and f"Crawled (200) <GET {edited_url}>" in log
            ),
            "fetched pages",
        )

    def signal_and_time(self, signum: signal.Signals) -> tuple[int, float]:
        """Send `signum`; the exit code and the seconds the crawl took to end."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        code = self.process.wait(timeout=STOP_WITHIN + 30)
        return code, time.monotonic() - sent


def _verify(capsys: pytest.CaptureFixture[str], archive: Path, *options: str) -> tuple[int, str]:
    code = main(["verify", "--archive", str(archive), *options])
    out, err = capsys.readouterr()
    return code, out + err


def test_sigterm_commits_what_was_completed_as_partial_though_extraction_hangs(
    server: SiteServer, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = open_archive(archive).run_ids
    stats = tmp_path / "stats.json"
    crawl_ = HangingCrawl(server, archive, tmp_path / "crawl.log", PATHS, "--stats-json", stats)
    crawl_.wait_until_extracting(server.url(EDITED))
    code, took = crawl_.signal_and_time(signal.SIGTERM)
    log = crawl_.log.read_text()

    assert code == 1, log
    assert took < STOP_WITHIN, log
    assert "received SIGTERM: stopping" in log
    assert "terminating its workers" in log
    after = open_archive(archive)
    assert after.run_ids[: len(before)] == before
    assert len(after.run_ids) == len(before) + 1
    run = after.runs().set_index("run_id").loc[after.run_ids[-1]]
    assert run["status"] == "partial"
    assert _error_lines(log) == [
        f"error: stopped by SIGTERM; run {after.run_ids[-1]} committed as partial"
    ]
    assert json.loads(stats.read_text())["archive/run/exit_code"] == code
    seen = last_run(archive)
    assert sorted(seen["url"]) == sorted(f"https://medlineplus.gov{p}" for p in PATHS[1:])
    assert seen["revalidated"].all()
    code, output = _verify(capsys, archive, "--strict")
    assert code == 0, output


def test_sighup_is_handled_like_sigterm_and_commits_nothing_when_no_page_was_done(
    server: SiteServer, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = open_archive(archive).run_ids
    crawl_ = HangingCrawl(server, archive, tmp_path / "crawl.log", [EDITED])
    crawl_.wait_for(lambda log: f"Crawled (200) <GET {server.url(EDITED)}>" in log, "fetch")
    code, took = crawl_.signal_and_time(signal.SIGHUP)
    log = crawl_.log.read_text()

    assert code == 1, log
    assert took < STOP_WITHIN, log
    assert "received SIGHUP: stopping" in log
    assert "terminating its workers" in log
    assert "not committed: stopped before any page" in log
    (error,) = _error_lines(log)
    assert error.startswith("error: stopped by SIGHUP; nothing committed"), log
    assert open_archive(archive).run_ids == before
    code, output = _verify(capsys, archive, "--strict")
    assert code == 0, output


def test_a_second_sigint_stops_at_once_and_commits_nothing(
    server: SiteServer, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = open_archive(archive).run_ids
    crawl_ = HangingCrawl(server, archive, tmp_path / "crawl.log")
    crawl_.wait_until_extracting(server.url(EDITED))
    crawl_.process.send_signal(signal.SIGINT)
    crawl_.wait_for(lambda log: "received SIGINT: stopping" in log, "first SIGINT logged")
    code, took = crawl_.signal_and_time(signal.SIGINT)
    log = crawl_.log.read_text()

    assert code == 1, log
    assert took < EXTRACTION_GRACE, log  # (a graceful stop would wait that long first)
    assert "stopped at once (second SIGINT): the run in progress is not committed" in log
    assert open_archive(archive).run_ids == before
    code, output = _verify(capsys, archive)
    assert code == 0, output


def _error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("error:")]


def test_a_page_reaching_extraction_late_after_the_signal_is_still_archived(
    server: SiteServer, tmp_path: Path
) -> None:
    """The extraction workers are given up only for a page stuck in them: a page whose
    answer arrives more than EXTRACTION_GRACE seconds after the signal, to an idle pool,
    is extracted and committed."""
    late, archive = "/acne.html", tmp_path / "archive"
    server.slow_down(EXTRACTION_GRACE + 3, [late])
    try:
        crawl_ = HangingCrawl(
            server, archive, tmp_path / "crawl.log", [EDITED, late], hanging=False
        )
        crawl_.wait_for(lambda log: "Scraped from <200" in log, "a first page archived")
        code, took = crawl_.signal_and_time(signal.SIGTERM)
    finally:
        server.slow_down(0, [late])
    log = crawl_.log.read_text()

    assert code == 1, log
    assert took > EXTRACTION_GRACE, log  # the late page was waited for
    assert "terminating its workers" not in log
    seen = last_run(archive)
    assert sorted(seen["url"]) == [f"https://medlineplus.gov{p}" for p in (late, EDITED)]
    assert set(seen["outcome"]) == {"new"}
    assert open_archive(archive).runs()["status"].tolist() == ["partial"]


def test_sigterm_stops_a_crawl_whose_extraction_hangs_in_its_own_process(
    server: SiteServer, archive: Path, tmp_path: Path
) -> None:
    """With no extraction worker (MEDLINEPLUS_PARSE_WORKERS=0) a hung parse blocks the
    crawl's event loop: the deadline still ends it, committing nothing."""
    before = open_archive(archive).run_ids
    options = ("-s", "MEDLINEPLUS_PARSE_WORKERS=0", "-s", "MEDLINEPLUS_STOP_DEADLINE=5")
    crawl_ = HangingCrawl(server, archive, tmp_path / "crawl.log", PATHS, *options)
    # the edited page is extracted (and hangs) as soon as it is fetched, the rest unserved
    crawl_.wait_for(lambda log: f"Crawled (200) <GET {server.url(EDITED)}>" in log, "fetch")
    code, took = crawl_.signal_and_time(signal.SIGTERM)
    log = crawl_.log.read_text()

    assert code == 1, log
    assert took < STOP_WITHIN, log
    assert "stopped at once (no stop within 5 s): the run in progress is not committed" in log
    assert open_archive(archive).run_ids == before


class _Stats:
    """A crawl's stats, as the stop handlers read them."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def get_value(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)


class _ExitedError(Exception):
    pass


@pytest.fixture
def stopping(monkeypatch: pytest.MonkeyPatch) -> tuple[CrawlShutdown, _Stats, list[int]]:
    """Stop handlers of a crawl that got its first signal, with `os._exit` recorded."""
    exits: list[int] = []

    def _exit(code: int) -> None:
        exits.append(code)
        raise _ExitedError

    monkeypatch.setattr(os, "_exit", _exit)
    stats = _Stats()
    settings = Settings({"MEDLINEPLUS_STOP_DEADLINE": 25.0})
    crawler = SimpleNamespace(stats=stats, spider=None, settings=settings)
    shutdown = CrawlShutdown(crawler)  # type: ignore[arg-type]
    shutdown.received = signal.SIGINT
    return shutdown, stats, exits


def test_a_second_signal_during_the_commit_lets_it_end(
    stopping: tuple[CrawlShutdown, _Stats, list[int]], capfd: pytest.CaptureFixture[str]
) -> None:
    shutdown, stats, exits = stopping
    stats.values[RUN_COMMITTING] = True
    shutdown._on_signal(signal.SIGINT, None)
    assert exits == []
    assert "while the run is being committed" in capfd.readouterr().err

    stats.values.update({RUN_COMMITTING: False, "archive/run/status": "partial"})
    with pytest.raises(_ExitedError):
        shutdown._on_signal(signal.SIGINT, None)
    assert exits == [1]
    assert "stopped at once (second SIGINT): the run was committed as partial" in (
        capfd.readouterr().err
    )


def test_the_deadline_waits_for_a_commit_in_progress(
    stopping: tuple[CrawlShutdown, _Stats, list[int]],
) -> None:
    shutdown, stats, exits = stopping
    stats.values[RUN_COMMITTING] = True

    def overdue() -> None:
        with contextlib.suppress(_ExitedError):
            shutdown._overdue()

    deadline = threading.Thread(target=overdue)
    deadline.start()
    time.sleep(0.5)
    assert exits == []
    stats.values[RUN_COMMITTING] = False
    deadline.join(5)
    assert exits == [1]
