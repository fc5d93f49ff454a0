"""Page extraction in worker processes: same pages as in-process, the exchange encoded as
WARC records, errors intact, no page lost when a worker dies, no worker left behind when
the crawl is killed."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.parsing import parse_health_topic
from crawler.parsing.errors import ExtractionError
from crawler.parsing.items import EncodedExchange, HealthTopicPage, RawResponse
from crawler.spiders.extraction_pool import ExtractionPool
from pipelines.core.warc import iter_responses, read_response

PAGES = Path(__file__).parent / "fixtures" / "pages"
TOPIC = (PAGES / "heatillness_full.html").read_bytes()
NOT_A_TOPIC = (PAGES / "not_a_topic_az_index.html").read_bytes()
URL = "http://127.0.0.1:8000/heatillness.html"


def _parse(pool: ExtractionPool, body: bytes, url: str = URL) -> HealthTopicPage:
    return asyncio.run(pool.extract(body, url, None))


@pytest.fixture
def pool() -> Iterator[ExtractionPool]:
    extraction = ExtractionPool(1)
    yield extraction
    extraction.close()


def test_a_worker_extracts_the_same_page_as_this_process(pool: ExtractionPool) -> None:
    assert not pool.in_process
    assert _parse(pool, TOPIC) == parse_health_topic(TOPIC, URL)


def test_the_exchange_comes_back_as_warc_records_of_the_canonical_url(
    pool: ExtractionPool, tmp_path: Path
) -> None:
    exchange = RawResponse(
        url=URL,
        status=200,
        reason="OK",
        headers=[("Content-Type", "text/html; charset=utf-8")],
        body=TOPIC,
        request_path="/heatillness.html",
        request_headers=[("User-Agent", "test")],
        fetched_at=datetime(2026, 11, 24, 3, 0, tzinfo=UTC),
    )
    page = asyncio.run(pool.extract(TOPIC, URL, None, exchange))
    assert isinstance(page.raw, EncodedExchange)
    assert page.raw.target_uri == page.url == "https://medlineplus.gov/heatillness.html"
    warc = tmp_path / "run.warc.gz"
    warc.write_bytes(page.raw.records)
    (archived,) = iter_responses(warc)
    assert (archived.target_uri, archived.fetched_from, archived.body) == (page.url, URL, TOPIC)
    assert read_response(warc, 0).status == 200  # digests checked


def test_an_extraction_error_crosses_from_the_worker_intact(pool: ExtractionPool) -> None:
    with pytest.raises(ExtractionError) as raised:
        _parse(pool, NOT_A_TOPIC, "http://127.0.0.1:8000/healthtopics.html")
    assert raised.value.url == "http://127.0.0.1:8000/healthtopics.html"
    assert raised.value.field == "html#health_topic"
    assert raised.value.reason == "not a health-topic page"


def test_no_workers_extracts_in_this_process() -> None:
    pool = ExtractionPool(0)
    assert pool.in_process
    assert _parse(pool, TOPIC).title == parse_health_topic(TOPIC, URL).title
    pool.close()


def test_a_dead_worker_loses_no_page(
    pool: ExtractionPool, caplog: pytest.LogCaptureFixture
) -> None:
    _parse(pool, TOPIC)  # the worker is up
    (worker,) = _worker_pids(pool)
    os.kill(worker, signal.SIGKILL)
    _wait_gone(worker)
    with caplog.at_level(logging.ERROR, logger="crawler.spiders.extraction_pool"):
        pages = [_parse(pool, TOPIC) for _ in range(3)]
    assert all(page == pages[0] for page in pages)
    assert pool.in_process
    assert "page extraction worker died" in caplog.text


_KILLED_CRAWL = """
import asyncio, os, signal, sys
from crawler.spiders.extraction_pool import ExtractionPool
pool = ExtractionPool(1)
asyncio.run(pool.extract(open(sys.argv[1], "rb").read(), "http://127.0.0.1/x.html", None))
print(*pool._executor._processes, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_workers_exit_when_their_crawl_is_killed(tmp_path: Path) -> None:
    printed = tmp_path / "workers.txt"
    with printed.open("w") as stdout:  # a file: a surviving worker would hold a pipe open
        killed = subprocess.run(
            [sys.executable, "-c", _KILLED_CRAWL, str(PAGES / "heatillness_full.html")],
            stdout=stdout,
            timeout=60,
            check=False,
        )
    assert killed.returncode == -signal.SIGKILL
    (worker,) = map(int, printed.read_text().split())
    _wait_gone(worker)


def _worker_pids(pool: ExtractionPool) -> list[int]:
    executor = pool._executor
    assert executor is not None
    return list(executor._processes)  # type: ignore[attr-defined]


def _wait_gone(pid: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still running after {seconds} s"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited; only its parent's wait is missing
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
