"""Conditional re-crawls: revalidate pages with the validators of the previous run.

A topic page the archive already holds is requested with If-None-Match (its last ETag)
and If-Modified-Since (its last Last-Modified); a 304 answer is an `unchanged`
observation that costs no download of the page and no parse.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Self

from scrapy.exceptions import NotConfigured

from pipelines.archive.versions import Validators
from pipelines.session import ArchiveSession

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class ConditionalRequestMiddleware:
    """Downloader middleware adding If-None-Match / If-Modified-Since to known topic pages.

    Requests opt in through `meta["canonical_url"]` (the spider sets it on topic pages);
    `meta["dont_revalidate"]` opts out.
    """

    def __init__(self, validators: Mapping[str, Validators]) -> None:
        self.validators = validators

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("ARCHIVE_REVALIDATE", True):
            raise NotConfigured("ARCHIVE_REVALIDATE is off")
        # An archive that could not be opened has no validators; the snapshot pipeline
        # reports it and stops the crawl.
        validators = ArchiveSession.of(crawler).index().validators
        logger.info("revalidating against %d archived pages", len(validators))
        return cls(validators)

    def process_request(self, request: Request) -> None:
        canonical = request.meta.get("canonical_url")
        if canonical is None or request.meta.get("dont_revalidate"):
            return
        known = self.validators.get(canonical)
        if known is None:
            return
        if known.etag:
            request.headers.setdefault(b"If-None-Match", known.etag.encode("latin-1"))
        if known.last_modified:
            request.headers.setdefault(b"If-Modified-Since", known.last_modified.encode("latin-1"))
