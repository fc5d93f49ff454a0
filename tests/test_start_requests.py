"""Start requests are handed to Scrapy a batch at a time while the downloader is busy, so
a long URL list never becomes that many queued Requests at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from scrapy import Request, signals
from scrapy.utils.test import get_crawler

from crawler.spiders import health_topics
from crawler.spiders.health_topics import HealthTopicsSpider


class _Engine:
    def __init__(self, busy: bool) -> None:
        self.busy = busy

    def needs_backout(self) -> bool:
        return self.busy


def _handed_over(tmp_path: Path, urls: int, busy: bool) -> tuple[int, list[int]]:
    """(requests yielded, how many had been yielded at each wait for an empty scheduler)."""
    listing = tmp_path / "urls.txt"
    listing.write_text(
        "".join(f"https://medlineplus.gov/topic{n}.html\n" for n in range(urls)), "utf-8"
    )
    crawler = get_crawler(HealthTopicsSpider)
    spider = HealthTopicsSpider.from_crawler(
        crawler, urls=str(listing), base_url="https://medlineplus.gov"
    )
    crawler.spider = spider
    crawler.engine = _Engine(busy)  # type: ignore[assignment]
    yielded: list[Any] = []
    waits: list[int] = []

    async def wait_for(signal: object) -> None:
        assert signal is signals.scheduler_empty
        waits.append(len(yielded))

    crawler.signals.wait_for = wait_for  # type: ignore[method-assign]

    async def run() -> None:
        async for request in spider.start():
            assert isinstance(request, Request)
            yielded.append(request)

    asyncio.run(run())
    return len(yielded), waits


def test_a_busy_downloader_gets_the_list_a_batch_at_a_time(tmp_path: Path) -> None:
    batch = health_topics.START_BATCH
    count, waits = _handed_over(tmp_path, 2 * batch + 500, busy=True)
    assert count == 2 * batch + 500
    assert waits == [batch, 2 * batch]


def test_an_idle_downloader_is_never_made_to_wait(tmp_path: Path) -> None:
    count, waits = _handed_over(tmp_path, health_topics.START_BATCH + 10, busy=False)
    assert count == health_topics.START_BATCH + 10
    assert waits == []
