"""Crawl progress: the figures, the live terminal line and the periodic log line."""

from __future__ import annotations

import io
import logging
from datetime import UTC, date, datetime

import pytest
from scrapy.utils.test import get_crawler

from crawler.items import HealthTopicPage, PageFailed, PageGone
from crawler.progress import Progress, ProgressFigures

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_figures_line_with_rate_and_eta() -> None:
    figures = ProgressFigures(done=50, total=200, errors=2, elapsed=25.0)
    assert figures.rate == 2.0
    assert figures.eta == 75.0
    assert figures.line() == "50/200 pages (25%) | 2.0 pages/s | ETA 01:15 | 2 errors"


def test_eta_unknown_before_the_first_page() -> None:
    assert (
        ProgressFigures(done=0, total=10, errors=0, elapsed=3.0)
        .line()
        .endswith("ETA --:-- | 0 errors")
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
    # topics no longer listed were not fetched: not counted as done
    progress.counted(
        PageGone(
            url="https://medlineplus.gov/old.html",
            language="en",
            slug="old",
            source_url=None,
            fetched_at=NOW,
            http_status=None,
            reason="no longer listed",
        )
    )


def test_live_line_on_a_terminal() -> None:
    progress, stream = _progress(live=True)
    _count_some(progress)
    progress.report()
    assert stream.getvalue().startswith("\r\x1b[K2/4 pages (50%)")
    assert stream.getvalue().endswith("| 1 errors")


def test_log_line_when_not_on_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    progress, stream = _progress(live=False)
    _count_some(progress)
    with caplog.at_level(logging.INFO, logger="crawler.progress"):
        progress.report()
    assert stream.getvalue() == ""
    (record,) = caplog.records
    assert record.getMessage().startswith("progress: 2/4 pages (50%) | ")
    assert record.getMessage().endswith(" | 1 errors")
