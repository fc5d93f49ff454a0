"""Reliability under faults and bad input: real crawls against the fixture site with one
fault injected (tests/site_server.py, "Faults"), then what the archive holds.

For every fault: each fetched URL ends in exactly one observation with the right
outcome, retries are bounded, and the version archived before the fault is untouched.
Then crashes (SIGKILL while fetching, while writing, between writing and committing) and
a write failure, injected from outside the crawl's code (tests/faulty_cli.py): readers
only ever see committed runs, and the next crawl recovers.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from crawler.commands.cli import main
from pipelines.notebook import open_archive
from tests.crawl_runner import (
    PERMISSIVE_ROBOTS,
    QUICK,
    CrawlResult,
    copy_archive,
    crawl,
    last_run,
)
from tests.site_server import SiteServer

ORIGIN = "https://medlineplus.gov"
FAULTY = "/asthma.html"
"""The page a fault hits; archived healthy by the baseline crawl."""
HEALTHY = ["/acne.html", "/anemia.html"]
"""Pages crawled beside it, never archived before: their outcome is "new"."""
BOUNDED = [*QUICK, "-s", "RETRY_TIMES=2", "-s", "DOWNLOAD_TIMEOUT=1"]
"""Retries bounded to 2 (3 requests at most per page), backoff 0.05 s, timeout 1 s."""
MAX_REQUESTS = 3
VERSION_TABLES = ("topics", "links", "clinical_trials", "journal_articles")


def _url_options(*paths: str) -> list[str]:
    return [option for path in paths for option in ("--url", ORIGIN + path)]


def _file_digests(archive: Path, run_id: str) -> dict[str, str]:
    """sha256 of each file of run `run_id` (its parts and its manifest)."""
    files = [archive / table / f"part-{run_id}.parquet" for table in VERSION_TABLES]
    files += [archive / "observations" / f"part-{run_id}.parquet"]
    files += [archive / "_runs" / f"{run_id}.json"]
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


@dataclass(frozen=True)
class Baseline:
    archive: Path
    run_id: str


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    """An archive holding one healthy crawl of FAULTY (copied by each test)."""
    archive = tmp_path_factory.mktemp("baseline") / "archive"
    with SiteServer() as server:
        server.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
        result = crawl(server.base_url, archive, *QUICK, *_url_options(FAULTY))
    assert result.returncode == 0, result
    (run_id,) = open_archive(archive).run_ids
    return Baseline(archive, run_id)


def _by_url(archive: Path) -> pd.DataFrame:
    """The newest run's observations, one per URL (asserted), indexed by path."""
    seen = last_run(archive)
    assert seen["url"].is_unique, seen["url"].tolist()
    return seen.set_index(seen["url"].str.removeprefix(ORIGIN))


# --- one fault at a time ----------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    inject: Callable[[SiteServer], None]
    options: tuple[str, ...] = ()
    status: int | None = None
    """The http_status of the faulty page's error observation."""
    error: str = ""
    """A fragment of its error text."""
    requests: int = MAX_REQUESTS
    """How many requests the faulty page may cost at most."""


FETCH_FAULTS = [
    pytest.param(
        Fault(lambda s: s.error_burst(FAULTY, 500, count=10), status=500, error="HTTP 500"),
        id="500-burst",
    ),
    pytest.param(
        Fault(lambda s: s.error_burst(FAULTY, 503, count=10), status=503, error="HTTP 503"),
        id="503-burst",
    ),
    pytest.param(
        Fault(lambda s: s.rate_limit(FAULTY, "1", count=10), status=429, error="HTTP 429"),
        id="429-retry-after",
    ),
    pytest.param(
        Fault(lambda s: s.too_slow(FAULTY, 1.6), error="took longer than 1.0 seconds"),
        id="slower-than-timeout",
    ),
    pytest.param(
        Fault(lambda s: s.reset_connection(FAULTY), error="ConnectionLost"), id="connection-reset"
    ),
    pytest.param(
        Fault(lambda s: s.truncate_body(FAULTY), error="ResponseDataLossError"), id="truncated-body"
    ),
    pytest.param(
        Fault(
            lambda s: s.redirect_off_site(FAULTY),
            status=302,
            error="redirect to another host, not followed: http://example.invalid/x.html",
            requests=1,
        ),
        id="redirect-off-site",
    ),
    pytest.param(
        Fault(
            lambda s: s.redirect_loop(FAULTY),
            options=("-s", "REDIRECT_MAX_TIMES=4"),
            status=302,
            error="more than 4 redirects (a loop?)",
            requests=5,
        ),
        id="redirect-loop",
    ),
    pytest.param(
        Fault(
            lambda s: s.serve_oversized(FAULTY, 200_000),
            options=("-s", "DOWNLOAD_MAXSIZE=100000", "-s", "DOWNLOAD_WARNSIZE=0"),
            error="larger than download max size (100000)",
        ),
        id="body-over-maxsize",
    ),
]


@pytest.mark.parametrize("fault", FETCH_FAULTS)
def test_a_page_that_cannot_be_fetched_is_one_error_and_the_old_version_stays(
    quick_site: SiteServer, baseline: Baseline, tmp_path: Path, fault: Fault
) -> None:
    archive = copy_archive(baseline.archive, tmp_path)
    before = _file_digests(archive, baseline.run_id)
    fault.inject(quick_site)

    result = crawl(
        quick_site.base_url,
        archive,
        *BOUNDED,
        *fault.options,
        *_url_options(FAULTY, *HEALTHY),
    )
    quick_site.stop()  # a too-slow answer is logged when it is finally sent

    seen = _by_url(archive)
    assert sorted(seen.index) == sorted([FAULTY, *HEALTHY])
    assert list(seen.loc[HEALTHY, "outcome"]) == ["new", "new"]
    faulty = seen.loc[FAULTY]
    assert faulty["outcome"] == "error", result
    assert fault.error in faulty["error"], faulty["error"]
    if fault.status is None:
        assert pd.isna(faulty["http_status"])
    else:
        assert faulty["http_status"] == fault.status
    assert 1 <= len(quick_site.requests_for(FAULTY)) <= fault.requests
    # 1 page of 3 not fetched is over the 5% threshold: the run is committed as failed
    assert result.returncode == 1, result
    assert open_archive(archive).runs()["status"].tolist() == ["success", "failed"]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    run_id = open_archive(archive).run_ids[-1]
    assert line.startswith(f"error: run {run_id} committed as failed: 1 of 3 pages could not")
    assert _file_digests(archive, baseline.run_id) == before
    topics = open_archive(archive).topics().set_index("slug")
    assert topics.loc["asthma", "run_id"] == baseline.run_id


def test_a_crawl_that_ends_early_is_a_failed_run(quick_site: SiteServer, tmp_path: Path) -> None:
    """Closed by something other than its end or a stop signal (here Scrapy's CloseSpider
    extension, after one answer): what was done is committed, as `failed`, exit 1."""
    archive = tmp_path / "archive"
    options = ("-s", "CLOSESPIDER_PAGECOUNT=1")
    result = crawl(quick_site.base_url, archive, *BOUNDED, *options, *_url_options(*HEALTHY))

    assert result.returncode == 1, result
    run = open_archive(archive).runs().iloc[-1]
    assert (run["status"], run["finish_reason"]) == ("failed", "closespider_pagecount")
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: run {run['run_id']} committed as failed: "), line
    assert "the crawl ended early (closespider_pagecount)" in line


def test_a_short_503_burst_is_retried_through(quick_site: SiteServer, tmp_path: Path) -> None:
    quick_site.error_burst(FAULTY, 503, count=2)
    result = crawl(quick_site.base_url, tmp_path / "archive", *BOUNDED, *_url_options(FAULTY))
    assert result.returncode == 0, result
    assert [r.status for r in quick_site.requests_for(FAULTY)] == [503, 503, 200]
    assert _by_url(tmp_path / "archive").loc[FAULTY, "outcome"] == "new"


def test_429_retry_after_is_waited_for(quick_site: SiteServer, tmp_path: Path) -> None:
    quick_site.rate_limit(FAULTY, "1", count=1)
    result = crawl(quick_site.base_url, tmp_path / "archive", *BOUNDED, *_url_options(FAULTY))
    assert result.returncode == 0, result
    first, second = quick_site.requests_for(FAULTY)
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.9
    assert _by_url(tmp_path / "archive").loc[FAULTY, "outcome"] == "new"


def test_a_redirect_within_the_site_is_still_followed(
    quick_site: SiteServer, tmp_path: Path
) -> None:
    """The counterpart of the off-site and loop faults: the spider follows redirects itself."""
    quick_site.script(FAULTY, [(301, {"Location": f"{FAULTY}?moved"}, b"")])
    result = crawl(quick_site.base_url, tmp_path / "archive", *BOUNDED, *_url_options(FAULTY))
    assert result.returncode == 0, result
    assert [(r.query, r.status) for r in quick_site.requests_for(FAULTY)] == [
        ("", 301),
        ("moved", 200),
    ]
    seen = _by_url(tmp_path / "archive")
    assert seen.loc[FAULTY, "outcome"] == "new"
    assert seen.loc[FAULTY, "source_url"] == quick_site.url(f"{FAULTY}?moved")


def test_malformed_html_is_an_extraction_error_not_a_crash(
    quick_site: SiteServer, baseline: Baseline, tmp_path: Path
) -> None:
    archive = copy_archive(baseline.archive, tmp_path)
    before = _file_digests(archive, baseline.run_id)
    quick_site.serve_malformed(FAULTY)
    result = crawl(quick_site.base_url, archive, *BOUNDED, *_url_options(FAULTY, *HEALTHY))
    seen = _by_url(archive)
    assert sorted(seen.index) == sorted([FAULTY, *HEALTHY])
    assert list(seen.loc[HEALTHY, "outcome"]) == ["new", "new"]
    assert seen.loc[FAULTY, "outcome"] == "error"
    assert seen.loc[FAULTY, "http_status"] == 200
    assert seen.loc[FAULTY, "error_field"], seen.loc[FAULTY]
    assert len(quick_site.requests_for(FAULTY)) == 1
    assert "Traceback" not in result.stderr, result
    assert result.returncode == 1, result  # 1 of 3 failed extraction: layout drift
    assert _file_digests(archive, baseline.run_id) == before
    assert open_archive(archive).topics().set_index("slug").loc["asthma", "run_id"] == (
        baseline.run_id
    )


LAYOUT_DRIFTED = ["/asthma.html", "/allergy.html", "/acne.html", "/anemia.html"]
STILL_FINE = "/lupus.html"


def test_layout_drift_fails_the_run_naming_the_field_and_keeps_what_was_extracted(
    quick_site: SiteServer, tmp_path: Path
) -> None:
    for path in LAYOUT_DRIFTED:
        quick_site.serve_without(path, "title")
    archive = tmp_path / "archive"
    result = crawl(
        quick_site.base_url, archive, *BOUNDED, *_url_options(*LAYOUT_DRIFTED, STILL_FINE)
    )
    assert result.returncode == 1, result
    seen = _by_url(archive)
    assert set(seen.loc[LAYOUT_DRIFTED, "error_field"]) == {"title"}
    assert set(seen.loc[LAYOUT_DRIFTED, "outcome"]) == {"error"}
    assert seen.loc[STILL_FINE, "outcome"] == "new"
    (run,) = open_archive(archive).runs().to_dict("records")
    assert run["status"] == "failed"
    (reason,) = run["failure_reasons"]
    assert "layout drift" in reason
    assert "title (4)" in reason
    assert open_archive(archive).topics()["slug"].tolist() == ["lupus"]


def test_a_wrong_charset_header_does_not_garble_the_text(
    quick_site: SiteServer, tmp_path: Path
) -> None:
    page = "/spanish/acne.html"
    quick_site.mislabel_charset(page, "ISO-8859-1")
    archive = tmp_path / "archive"
    result = crawl(quick_site.base_url, archive, *BOUNDED, *_url_options(page))
    assert result.returncode == 0, result
    assert quick_site.requests_for(page)[0].status == 200
    (topic,) = open_archive(archive).topics().to_dict("records")
    assert topic["title"] == "Acné"
    text = json.dumps({key: str(value) for key, value in topic.items()}, ensure_ascii=False)
    assert "Ã" not in text
    assert "Â" not in text
    assert "ñ" in text


def test_topics_disallowed_by_robots_txt_are_never_requested(
    site_server: SiteServer, tmp_path: Path
) -> None:
    site_server.disallow(FAULTY, "/acne.html")
    archive = tmp_path / "archive"
    result = crawl(
        site_server.base_url, archive, *BOUNDED, *_url_options(FAULTY, *HEALTHY, "/lupus.html")
    )
    assert result.returncode == 0, result
    assert FAULTY not in site_server.paths(None)
    assert "/acne.html" not in site_server.paths(None)
    seen = _by_url(archive)
    assert sorted(seen.index) == ["/anemia.html", "/lupus.html"]
    assert set(seen["outcome"]) == {"new"}


# --- crashes and write failures ---------------------------------------------------------

KILLED = ["/asthma.html", "/allergy.html", "/acne.html", "/anemia.html"]


def _verify(capsys: pytest.CaptureFixture[str], archive: Path, *options: str) -> tuple[int, str]:
    code = main(["verify", "--archive", str(archive), *options])
    out, err = capsys.readouterr()
    return code, out + err


def _next_second() -> None:
    """Run ids start with their start second and must sort after the last committed one."""
    time.sleep(1.01 - time.time() % 1)


def _crawl_command(server: SiteServer, archive: Path, *paths: str) -> list[str]:
    command = [sys.executable, "-m", "crawler.commands.cli", "crawl", "--base-url", server.base_url]
    return [*command, "--archive", str(archive), *QUICK, *_url_options(*paths)]


def _killed_during_fetching(server: SiteServer, archive: Path, log: Path) -> None:
    server.slow_down(1.0, KILLED)
    command = _crawl_command(server, archive, *KILLED)
    command[command.index("--concurrency") + 1] = "1"
    with log.open("w") as stderr, subprocess.Popen(command, stderr=stderr) as process:
        deadline = time.monotonic() + 30
        while len([p for p in server.paths() if p in KILLED]) < 2:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the crawl requested no page in 30 s"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    server.slow_down(0, KILLED)


def _faulty_command(action: str, point: str, command: list[str]) -> list[str]:
    """`command` (a `_crawl_command`) run through tests/faulty_cli.py, which makes the
    crawl crash or fail at `point` of its commit."""
    module = command.index("crawler.commands.cli")
    return [*command[:module], "tests.faulty_cli", action, point, *command[module + 1 :]]


def _killed_at(point: str) -> Callable[[SiteServer, Path, Path], None]:
    def kill(server: SiteServer, archive: Path, log: Path) -> None:
        command = _faulty_command("crash", point, _crawl_command(server, archive, *KILLED))
        with log.open("w") as stderr:
            completed = subprocess.run(command, stderr=stderr, timeout=120, check=False)
        assert completed.returncode == -signal.SIGKILL, log.read_text()

    return kill


@pytest.mark.parametrize(
    ("kill", "leftover_parts"),
    [
        pytest.param(_killed_during_fetching, False, id="while-fetching"),
        pytest.param(_killed_at("staging_written"), False, id="while-writing"),
        pytest.param(_killed_at("parts_moved"), True, id="before-the-manifest"),
    ],
)
def test_a_crawl_killed_at_any_point_never_happened(
    quick_site: SiteServer,
    baseline: Baseline,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kill: Callable[[SiteServer, Path, Path], None],
    leftover_parts: bool,
) -> None:
    archive = copy_archive(baseline.archive, tmp_path)
    before = _file_digests(archive, baseline.run_id)
    _next_second()
    kill(quick_site, archive, tmp_path / "killed.log")

    (staging,) = (archive / "_staging").iterdir()
    killed_run = staging.name
    orphan = archive / "topics" / f"part-{killed_run}.parquet"
    assert orphan.exists() == leftover_parts
    assert not (archive / "_runs" / f"{killed_run}.json").exists()
    code, output = _verify(capsys, archive)
    assert code == 0, output
    assert "warning:" in output
    reader = open_archive(archive)
    assert reader.run_ids == (baseline.run_id,)
    assert set(reader.observations()["run_id"]) == {baseline.run_id}
    assert reader.topics()["slug"].tolist() == ["asthma"]
    assert _file_digests(archive, baseline.run_id) == before

    _next_second()
    result = crawl(quick_site.base_url, archive, *QUICK, *_url_options(*KILLED))
    assert result.returncode == 0, result
    code, output = _verify(capsys, archive, "--strict")
    assert code == 0, output
    assert not orphan.exists()
    reader = open_archive(archive)
    assert len(reader.run_ids) == 2
    assert killed_run not in reader.run_ids
    assert sorted(reader.topics()["slug"]) == ["acne", "allergy", "anemia", "asthma"]
    assert _file_digests(archive, baseline.run_id) == before


@pytest.mark.parametrize("point", ["commit", "parts_moved"])
def test_a_write_failure_aborts_the_run_and_keeps_the_earlier_ones(
    quick_site: SiteServer,
    baseline: Baseline,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    point: str,
) -> None:
    archive = copy_archive(baseline.archive, tmp_path)
    before = _file_digests(archive, baseline.run_id)
    _next_second()
    command = _faulty_command("fail", point, _crawl_command(quick_site, archive, *KILLED))
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    result = CrawlResult(completed.returncode, completed.stdout, completed.stderr)

    assert result.returncode == 3, result
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert (
        f"cannot write to the archive {archive}: Read-only file system (fault injected at {point})"
        in error
    )
    assert sorted(path.name for path in (archive / "_runs").iterdir()) == [
        f"{baseline.run_id}.json"
    ]
    assert _file_digests(archive, baseline.run_id) == before
    assert open_archive(archive).run_ids == (baseline.run_id,)
    code, output = _verify(capsys, archive)
    assert code == 0, output

    _next_second()
    result = crawl(quick_site.base_url, archive, *QUICK, *_url_options(*KILLED))
    assert result.returncode == 0, result
    code, output = _verify(capsys, archive, "--strict")
    assert code == 0, output
    assert _file_digests(archive, baseline.run_id) == before
