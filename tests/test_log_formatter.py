"""The per-page DEBUG messages are built only when LOG_LEVEL shows them."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.log_formatter import STARTUP_MESSAGES, PageLogFormatter, demote_startup_messages
from crawler.spiders.health_topics import HealthTopicsSpider

PAGE = "https://medlineplus.gov/asthma.html"


@pytest.mark.parametrize(("level", "shown"), [("DEBUG", True), ("INFO", False), ("ERROR", False)])
def test_per_page_messages_follow_the_log_level(level: str, shown: bool) -> None:
    crawler = get_crawler(HealthTopicsSpider, {"LOG_LEVEL": level})
    formatter = PageLogFormatter.from_crawler(crawler)
    spider = HealthTopicsSpider.from_crawler(crawler)
    response = HtmlResponse(PAGE, body=b"<html></html>", request=Request(PAGE))
    crawled = formatter.crawled(response.request, response, spider)
    scraped = formatter.scraped({"url": PAGE}, response, spider)
    assert (crawled is not None, scraped is not None) == (shown, shown)
    if shown:
        assert crawled is not None
        assert "Crawled" in crawled["msg"]


def test_other_messages_are_scrapys() -> None:
    crawler = get_crawler(HealthTopicsSpider, {"LOG_LEVEL": "WARNING"})
    formatter = PageLogFormatter.from_crawler(crawler)
    spider = HealthTopicsSpider.from_crawler(crawler)
    response = HtmlResponse(PAGE, body=b"", request=Request(PAGE))
    dropped = formatter.dropped({"url": PAGE}, ValueError("duplicate"), response, spider)
    assert dropped is not None
    assert "Dropped" in dropped["msg"]


@pytest.fixture
def restored_scrapy_loggers() -> Iterator[None]:
    """Scrapy's loggers given back their filters after the test (they are global)."""
    loggers = [logging.getLogger(name) for name in STARTUP_MESSAGES]
    before = {id(logger): list(logger.filters) for logger in loggers}
    yield
    for logger in loggers:
        logger.filters[:] = before[id(logger)]


@pytest.mark.usefixtures("restored_scrapy_loggers")
def test_scrapys_startup_banner_and_dumps_are_logged_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    demote_startup_messages()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("scrapy.crawler").info(
            "Overridden settings:\n%(settings)s", {"settings": 1}
        )
        logging.getLogger("scrapy.middleware").info(
            "Enabled %(componentname)ss:\n%(enabledlist)s",
            {"componentname": "extension", "enabledlist": "[]"},
        )
        logging.getLogger("scrapy.statscollectors").info("Dumping Scrapy stats:\n{}")
        logging.getLogger("scrapy.crawler").info("Received SIGINT")  # not a start-up message
    assert [(record.name, record.levelname) for record in caplog.records] == [
        ("scrapy.crawler", "DEBUG"),
        ("scrapy.middleware", "DEBUG"),
        ("scrapy.statscollectors", "DEBUG"),
        ("scrapy.crawler", "INFO"),
    ]
