"""Crawl progress: the figures, the live terminal line and the periodic log line."""

from __future__ import annotations

import io
import logging
from datetime import UTC, date, datetime

import pytest
from scrapy.utils.test import get_crawler

from crawler.parsing.items import HealthTopicPage, PageFailed, PageNotModified
from crawler.progress import CLEAR_LINE, LiveLine, Progress, ProgressFigures

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_figures_line_with_rate_and_eta() -> None:
    figures = ProgressFigures(done=50, total=200, errors=2, not_modified=7, elapsed=25.0)
    assert figures.rate == 2.0
    assert figures.eta == 75.0
    assert figures.line() == (
        "50/200 pages (25%) | 2.0 pages/s | ETA 01:15 | 2 errors | 7 not modified"
    )


def test_eta_unknown_before_the_first_page() -> None:
    assert (
        ProgressFigures(done=0, total=10, errors=0, not_modified=0, elapsed=3.0)
        .line()
        .endswith("ETA --:-- | 0 errors | 0 not modified")
    )


def test_the_final_line_gives_the_total_and_the_elapsed_time() -> None:
    short = ProgressFigures(done=30, total=30, errors=1, not_modified=2, elapsed=5.0)
    assert (
        short.final_line()
        == "finished: 30 pages in 5.0 s (6.0 pages/s) | 1 errors | 2 not modified"
    )
    long = ProgressFigures(done=4000, total=4000, errors=0, not_modified=0, elapsed=4000.0)
    assert long.final_line().startswith("finished: 4000 pages in 1:06:40 (1.0 pages/s)")


def test_text_written_through_the_live_line_goes_above_it() -> None:
    terminal = io.StringIO()
    live = LiveLine(terminal)
    live.show("1/4 pages")
    live.write("a log line\n")
    live.show("2/4 pages")
    live.write("half a ")  # the status waits for the end of the line
    live.show("3/4 pages")
    live.write("line\n")
    live.finish("finished: 4 pages")
    assert terminal.getvalue() == (
        f"{CLEAR_LINE}1/4 pages"
        f"{CLEAR_LINE}a log line\n1/4 pages"
        f"{CLEAR_LINE}2/4 pages"
        f"{CLEAR_LINE}half a line\n3/4 pages"
        f"{CLEAR_LINE}finished: 4 pages\n"
    )


def _progress(live: bool) -> tuple[Progress, io.StringIO]:
    crawler = get_crawler(settings_dict={"PROGRESS_INTERVAL": 30})
    assert crawler.stats is not None
    crawler.stats.set_value("archive/discovery/topics", 4)
    stream = io.StringIO()
    return Progress(crawler, 30.0, stream, live=live), stream


def _page(slug: str) -> HealthTopicPage:
    return HealthTopicPage(
        url=f"https://medlineplus.gov/{slug}.html",
        language="en",
        slug=slug,
        title=slug,
        last_updated=date(2024, 1, 1),
    )


def _count_some(progress: Progress) -> None:
    progress.counted(_page("asthma"))
    progress.counted(
        PageNotModified(
            url="https://medlineplus.gov/anemia.html",
            language="en",
            slug="anemia",
            source_url="http://127.0.0.1/anemia.html",
            fetched_at=NOW,
        )
    )
    progress.counted(
        PageFailed(
            url="https://medlineplus.gov/acne.html",
            language="en",
            slug="acne",
            source_url="http://127.0.0.1/acne.html",
            fetched_at=NOW,
            http_status=500,
            error="HTTP 500",
        )
    )


def test_live_line_on_a_terminal() -> None:
    progress, stream = _progress(live=True)
    _count_some(progress)
    progress.report()
    assert stream.getvalue().startswith("\r\x1b[K3/4 pages (75%)")
    assert stream.getvalue().endswith("| 1 errors | 1 not modified")


def test_log_line_when_not_on_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    progress, stream = _progress(live=False)
    _count_some(progress)
    with caplog.at_level(logging.INFO, logger="crawler.progress"):
        progress.report()
    assert stream.getvalue() == ""
    (record,) = caplog.records
    assert record.getMessage().startswith("progress: 3/4 pages (75%) | ")
    assert record.getMessage().endswith(" | 1 errors | 1 not modified")
