"""The `health_topics` spider: discover every health-topic page, fetch it, extract it.

Discovery sources (one per run): the A-Z index pages (default), NLM's XML dump
(`from_xml`), a file of URLs (`urls`) or single pages (`url`); or no fetching at all: the
response records of a WARC file replayed (`from_warc`). Every fetched topic URL
ends in exactly one item: `HealthTopicPage`, `PageNotModified` (304), `PageGone`
(404/410, or an unlisted topic redirecting to another) or `PageFailed`. Redirects of
topic pages are followed here, not by Scrapy's RedirectMiddleware, whose redirected
requests the off-site and duplicate filters drop without a trace: one to another host,
or one too many (a loop), is a `PageFailed`.

Missing from the index is a reason to look, never evidence by itself: a letter page
left out of the navigation, or redirected to a page already fetched, is never requested
and never fails. So once a full index crawl has read every index page (the first
`spider_idle`), each topic the archive holds live that the index did not list
(`unlisted_topics()`) is requested at its own URL, conditionally like any other: it is
gone if it answers 404/410 or redirects to another topic page, and otherwise observed
as usual (counted as `archive/discovery/unlisted_but_served`). Only in a language whose
every index page answered: an index page that failed after retries
(`failed_index_pages`) may have listed any of its language's topics (the archive does
not record which page listed which topic), so none of them counts as unlisted. Nor
when more of a language are unlisted than the shrink guard allows (see
`pipelines.archiving`): then none is requested, and the run records why.

The XML dump is fetched and read before the crawl starts (see `crawler.parsing.xml_dump`), and
the URL file read: the crawl command hands them over as `xml_dump` and `urls_topics`
(an unreadable input is a usage error, not a failed run). An incremental crawl (`plan`,
see `pipelines.archive.incremental`) fetches only the pages its plan names and, when the plan says
so, reads the A-Z index as a cross-check (`indexed`): the topics it lists are compared
with the dump's, not fetched, and none is taken as unlisted.

Run it with `medlineplus-archive crawl` or `scrapy crawl health_topics -a base_url=...`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, NamedTuple, Self
from urllib.parse import urljoin, urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.parsing import parse_health_topic
from crawler.parsing.discovery import DiscoveryError, fetch_url, index_links, index_url, url_list
from crawler.parsing.errors import ExtractionError, ExtractionStoppedError
from crawler.parsing.health_topic import encoding_for
from crawler.parsing.items import (
    LANGUAGES,
    CrawlItem,
    HealthTopicPage,
    Language,
    PageFailed,
    PageGone,
    PageNotModified,
    RawResponse,
)
from crawler.parsing.urls import canonical_url, modern_url, topic_path
from crawler.parsing.xml_dump import Dump, DumpLimits, DumpUnreachableError, read_dump
from crawler.spiders.extraction_pool import ExtractionPool
from pipelines.archive.incremental import Plan, TopicId
from pipelines.archiving import ArchivePipeline
from pipelines.core.warc import ArchivedResponse, iter_responses, raw_from_archived
from pipelines.reachability import NETWORK_ERROR, network_error_text

logger = logging.getLogger(__name__)

GONE_STATUSES = (404, 410)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
HANDLED_STATUSES = [304, *GONE_STATUSES, *REDIRECT_STATUSES]
START_BATCH = 1000
"""Start requests queued in Scrapy's scheduler at most, beyond those being downloaded."""


class SpiderArgumentError(ValueError):
    """A spider argument is malformed; the message says which and why."""


class IndexFailure(NamedTuple):
    """An index page that could not be read after retries."""

    language: Language
    """The language of the index it belongs to."""
    reason: str
    """Why, e.g. "HTTP 500" or "Connection was refused by other side: ..."."""


def parse_languages(value: str | Iterable[str] | None) -> tuple[Language, ...]:
    """ "en,es" (or a list) -> ("en", "es"); raises SpiderArgumentError on an unknown code."""
    if value is None:
        return LANGUAGES
    codes = value.split(",") if isinstance(value, str) else list(value)
    chosen: list[Language] = []
    for code in (c.strip().lower() for c in codes):
        if not code:
            continue
        language = next((known for known in LANGUAGES if known == code), None)
        if language is None:
            raise SpiderArgumentError(f"unknown language {code!r} (choose from en, es)")
        if language not in chosen:
            chosen.append(language)
    if not chosen:
        raise SpiderArgumentError("no language chosen (choose from en, es)")
    return tuple(chosen)


def _as_list(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in value.split() if part]
    return list(value)


class HealthTopicsSpider(Spider):
    """Crawl MedlinePlus health-topic pages (see the module docstring)."""

    name = "health_topics"

    def __init__(
        self,
        base_url: str | None = None,
        languages: str | Iterable[str] | None = None,
        limit: str | int | None = None,
        from_xml: str | None = None,
        xml_dump: Dump | None = None,
        plan: Plan | None = None,
        from_warc: str | None = None,
        urls: str | None = None,
        urls_topics: Iterable[str] | None = None,
        url: str | Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_url_argument = base_url
        self.languages = parse_languages(languages)
        try:
            self.limit = int(limit) if limit not in (None, "") else None
        except ValueError as error:
            raise SpiderArgumentError(f"limit must be a whole number, not {limit!r}") from error
        if self.limit is not None and self.limit < 1:
            raise SpiderArgumentError("limit must be at least 1")
        self.from_xml = from_xml
        self.xml_dump = xml_dump
        """The XML dump `from_xml`, when the caller has read it."""
        self.plan = plan
        """An incremental crawl's plan (with `xml_dump`): only its pages are fetched."""
        self.indexed: set[TopicId] = set()
        """The topics the A-Z index listed, when an incremental crawl read it."""
        self.from_warc = from_warc
        self.urls_file = urls
        self.urls_topics = list(urls_topics) if urls_topics is not None else None
        """The URLs of the file `urls`, when the caller has read it."""
        self.single_urls = _as_list(url)
        self.scheduled: set[str] = set()
        """Canonical URLs of the topic pages requested so far."""
        self.listed: set[str] = set()
        """Canonical URLs of the topics the A-Z index listed (even past --limit)."""
        self.failed_index_pages: dict[str, IndexFailure] = {}
        """Index pages (fetched URLs) that could not be read, with their language and why."""
        self.unlisted_requested = False
        """True once the unlisted topics have been requested (or found too many to)."""
        self._extraction: ExtractionPool | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.request_unlisted, signal=signals.spider_idle)
        return spider

    # --- set-up ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        base = self.base_url_argument or self.settings.get("MEDLINEPLUS_BASE_URL")
        return str(base).rstrip("/")

    @property
    def discovery(self) -> str:
        """Which discovery source this run uses: index, xml, warc, urls or url; or
        incremental (incremental+index when it reads the A-Z index too)."""
        if self.plan is not None:
            return "incremental+index" if self.plan.read_index else "incremental"
        if self.from_xml:
            return "xml"
        if self.from_warc:
            return "warc"
        if self.urls_file:
            return "urls"
        if self.single_urls:
            return "url"
        return "index"

    def is_full_crawl(self) -> bool:
        """True when the run saw the whole index of every language: only then can a topic
        missing from it be called gone."""
        return self.discovery == "index" and self.limit is None and self.languages == LANGUAGES

    def unlisted_topics(self, known: Iterable[str]) -> dict[Language, list[str]]:
        """Of the `known` canonical topic URLs, those this full crawl did not find listed
        in a language whose index pages all answered, per language (sorted)."""
        if not self.is_full_crawl():
            return {}
        failed = {failure.language for failure in self.failed_index_pages.values()}
        unlisted: dict[Language, list[str]] = {}
        for url in sorted(known):
            path = topic_path(url)
            if url not in self.listed and path is not None and path[1] not in failed:
                unlisted.setdefault(path[1], []).append(url)
        return unlisted

    def request_unlisted(self) -> None:
        """On the first `spider_idle` of a full index crawl (every index page answered or
        failed): request the own URL of each live topic of the archive that the index no
        longer lists, unless more of a language are unlisted than the shrink guard allows
        (`ArchivePipeline.gone_limit`)."""
        engine = self.crawler.engine
        if self.unlisted_requested or not self.is_full_crawl() or engine is None:
            return
        self.unlisted_requested = True
        archive = self.crawler.get_item_pipeline(ArchivePipeline)
        if archive is None:
            return
        requests = []
        for language, urls in self.unlisted_topics(archive.live_topic_urls()).items():
            limit = archive.gone_limit(language)
            if len(urls) > limit:
                logger.warning(
                    "the %s index lists %d fewer topics than the archive holds, over the"
                    " shrink guard's limit of %d: none of them is requested or marked gone",
                    language,
                    len(urls),
                    limit,
                )
                continue
            for url in urls:
                logger.info("%s is no longer listed in the index: requesting it", url)
                self._inc("archive/discovery/unlisted_requested")
                requests.append(self._topic_request(url, url, unlisted=True))
        for request in requests:
            engine.crawl(request)
        if requests:
            raise DontCloseSpider

    def extraction(self) -> ExtractionPool:
        """Where fetched pages are extracted (worker processes, see MEDLINEPLUS_PARSE_WORKERS);
        started by the first page to extract, so a re-crawl answered 304 starts none."""
        if self._extraction is None:
            self._extraction = ExtractionPool(self.settings.getint("MEDLINEPLUS_PARSE_WORKERS", 1))
        return self._extraction

    @property
    def started_extraction(self) -> ExtractionPool | None:
        """The extraction pool, once the first page to extract has started it."""
        return self._extraction

    def closed(self, reason: str) -> None:
        if self._extraction is not None:
            self._extraction.close()

    async def start(self) -> AsyncIterator[Any]:
        """The start requests (or replayed items), START_BATCH at a time while the downloader
        is busy: Scrapy would otherwise queue a Request (~2 KB) for every URL of a list
        at once. (Waiting before each request instead costs a signal round trip per page,
        measured at a sixth of a mirror crawl's CPU.)"""
        queued = 0
        async for request_or_item in self._discovered():
            engine = self.crawler.engine
            if isinstance(request_or_item, Request) and engine is not None:
                queued += 1
                if queued > START_BATCH and engine.needs_backout():
                    await self.crawler.signals.wait_for(signals.scheduler_empty)
                    queued = 1
            yield request_or_item

    async def _discovered(self) -> AsyncIterator[Any]:
        host = urlsplit(self.base_url).hostname
        if host:
            self.allowed_domains = [host]
        source = self.discovery
        if self.plan is not None:
            for request in self._topic_requests(self.plan.fetch):
                yield request
            for language in self.languages if self.plan.read_index else ():
                yield self._index_request(index_url(self.base_url, language), language)
        elif source == "index":
            for language in self.languages:
                yield self._index_request(index_url(self.base_url, language), language)
        elif source == "xml":
            for request in self._topic_requests(self._xml_topics()):
                yield request
        elif source == "warc":
            assert self.from_warc is not None
            for archived in iter_responses(Path(self.from_warc)):
                for item in self._replayed(archived):
                    yield item
        elif source == "urls":
            assert self.urls_file is not None
            listed = self.urls_topics
            if listed is None:
                text = _read_local(self.urls_file).decode("utf-8", errors="replace")
                listed = list(url_list(text))
            for request in self._topic_requests(listed):
                yield request
        else:
            for request in self._topic_requests(self.single_urls):
                yield request

    # --- discovery -----------------------------------------------------------------------
    def _index_request(self, url: str, language: Language) -> Request:
        return Request(
            url,
            callback=self.parse_index,
            errback=self.index_failed,
            meta={"index_language": language},
        )

    def parse_index(self, response: Response) -> Iterator[Request]:
        self._inc("archive/discovery/index_pages")
        links = index_links(response.body, response.url, self.base_url)
        for page in links.index_pages:
            yield self._index_request(page, response.meta["index_language"])
        if self.plan is not None:  # a cross-check only: the plan says what is fetched
            self.indexed.update(filter(None, map(_topic_id, links.topic_pages)))
            return
        yield from self._topic_requests(links.topic_pages)

    def index_failed(self, failure: Failure) -> None:
        """An index page that did not answer 200 after retries (or was refused): the
        topics it listed are unknown, so none of its language's is taken as unlisted."""
        request: Request = failure.request  # type: ignore[attr-defined]
        reason = self._failure_reason(failure)
        self.failed_index_pages[request.url] = IndexFailure(request.meta["index_language"], reason)
        self._inc("archive/discovery/index_failed")
        logger.error("index page %s could not be read: %s", request.url, reason)

    def _xml_topics(self) -> list[str]:
        """The XML dump's topic URLs: as the crawl command read them before the crawl, or
        (`scrapy crawl health_topics -a from_xml=...`) read now, within the same bounds."""
        if self.xml_dump is None:
            assert self.from_xml is not None
            try:
                limits = DumpLimits.from_settings(self.settings)
                self.xml_dump = read_dump(self.from_xml, self.base_url, self.languages, limits)
            except (DiscoveryError, DumpUnreachableError) as error:
                logger.error("%s", error)
                self._inc("archive/discovery/xml_error")
                return []
        return self.xml_dump.urls

    def _topic_requests(self, urls: Iterable[str]) -> Iterator[Request]:
        for url in urls:
            path = topic_path(url)
            if path is None:
                logger.warning("not a health-topic URL, skipped: %s", url)
                self._inc("archive/discovery/out_of_scope")
                continue
            if path[1] not in self.languages:
                continue
            canonical = canonical_url(url)
            if self.discovery == "index":  # only a full index crawl reads it
                self.listed.add(canonical)
            if canonical in self.scheduled:
                continue
            if self.limit is not None and len(self.scheduled) >= self.limit:
                continue
            yield self._topic_request(url, canonical)

    def _topic_request(self, url: str, canonical: str, *, unlisted: bool = False) -> Request:
        """The request of the topic page `canonical`, fetched from `url` on the crawled site;
        `unlisted`: a live topic the index no longer lists, requested to find out whether
        it is gone."""
        self.scheduled.add(canonical)
        self._inc("archive/discovery/topics")
        meta: dict[str, Any] = {
            "canonical_url": canonical,
            "handle_httpstatus_list": HANDLED_STATUSES,
        }
        if unlisted:
            meta["unlisted"] = True
        return Request(
            fetch_url(url, self.base_url),
            callback=self.parse_topic,
            errback=self.topic_failed,
            meta=meta,
        )

    # --- replay ----------------------------------------------------------------------------
    def _replayed(self, archived: ArchivedResponse) -> Iterator[CrawlItem]:
        """The item of one response record of a WARC file, as if it had just been fetched."""
        canonical = canonical_url(modern_url(archived.target_uri))
        path = topic_path(canonical)
        if path is None or path[1] not in self.languages or canonical in self.scheduled:
            return
        if self.limit is not None and len(self.scheduled) >= self.limit:
            return
        self.scheduled.add(canonical)
        self._inc("archive/discovery/topics")
        fetched_at = _warc_date(archived.date)
        if archived.status in GONE_STATUSES:
            yield gone_page(
                canonical,
                archived.fetched_from,
                fetched_at,
                archived.status,
                f"HTTP {archived.status} (replayed)",
            )
            return
        headers = {name.lower(): value for name, value in archived.headers}
        try:
            page = parse_health_topic(
                archived.body,
                archived.fetched_from,
                encoding=encoding_for(archived.body, headers.get("content-type")),
                topic_url=canonical,
            )
        except ExtractionError as error:
            self._inc(f"archive/pages/extract_error/{error.field}")
            yield failed_page(
                canonical,
                archived.fetched_from,
                fetched_at,
                archived.status,
                error.reason,
                field=error.field,
            )
            return
        self._inc("archive/pages/parsed")
        self._flag_declared_elsewhere(page)
        page.fetched_at = fetched_at
        page.http_status = archived.status
        page.etag = headers.get("etag")
        page.last_modified = headers.get("last-modified")
        page.raw = raw_from_archived(archived, fetched_at)
        yield page

    # --- topic pages ---------------------------------------------------------------------
    async def parse_topic(self, response: Response) -> AsyncIterator[CrawlItem | Request]:
        canonical: str = response.meta["canonical_url"]
        slug, language = topic_path(canonical) or ("", "en")
        now = datetime.now(UTC)
        if response.status in REDIRECT_STATUSES:
            for item_or_request in self._redirected(response, canonical, now):
                yield item_or_request
            return
        unlisted = bool(response.meta.get("unlisted"))
        if unlisted and response.status not in GONE_STATUSES:
            self._inc("archive/discovery/unlisted_but_served")
            logger.warning(
                "%s is no longer listed in the index but still answers HTTP %d: not gone",
                canonical,
                response.status,
            )
        etag = _header(response, b"ETag")
        last_modified = _header(response, b"Last-Modified")
        if response.status == 304:
            self._inc("archive/pages/not_modified")
            yield PageNotModified(
                url=canonical,
                language=language,
                slug=slug,
                source_url=response.url,
                fetched_at=now,
                etag=etag or _header_sent(response, b"If-None-Match"),
                last_modified=last_modified or _header_sent(response, b"If-Modified-Since"),
            )
            return
        if response.status in GONE_STATUSES:
            self._inc("archive/pages/gone")
            yield gone_page(
                canonical,
                response.url,
                now,
                response.status,
                f"HTTP {response.status}" + ("; no longer listed in the index" if unlisted else ""),
            )
            return
        # the page is the topic fetched, after redirects between topic pages
        fetched = _topic_at(response.url) or canonical
        try:
            page = await self.extraction().extract(
                response.body,
                response.url,
                encoding_for(response.body, _header(response, b"Content-Type")),
                raw_response(response, now),
                fetched,
            )
        except ExtractionStoppedError:
            self._inc("archive/pages/extraction_stopped")
            logger.info("%s left out: the crawl stopped before it was extracted", canonical)
            return
        except ExtractionError as error:
            self._inc(f"archive/pages/extract_error/{error.field}")
            logger.warning("extraction failed: %s", error)
            yield failed_page(
                canonical, response.url, now, response.status, error.reason, field=error.field
            )
            return
        self._inc("archive/pages/parsed")
        self._flag_declared_elsewhere(page)
        page.fetched_at = now
        page.http_status = response.status
        page.etag = etag
        page.last_modified = last_modified
        yield page

    def _flag_declared_elsewhere(self, page: HealthTopicPage) -> None:
        """Count and log a page whose canonical link or og:url names another page."""
        if page.declared_url is not None:
            self._inc("archive/pages/declared_url_mismatch")
            logger.warning(
                "%s declares itself %s; stored as %s, the page fetched",
                page.source_url,
                page.declared_url,
                page.url,
            )

    def _redirected(
        self, response: Response, canonical: str, now: datetime
    ) -> Iterator[CrawlItem | Request]:
        """What a topic page's redirect leads to: the request following it; or, for an
        unlisted topic redirected to another topic page, the topic gone and a request of
        the other topic under its own URL; or a `PageFailed` when it is not followed."""
        target, problem = self._redirect_target(response)
        if target is None:
            self._inc("archive/pages/redirect_refused")
            logger.warning("%s: %s", canonical, problem)
            yield failed_page(canonical, response.url, now, response.status, problem)
            return
        moved_to = _topic_at(target)
        if not response.meta.get("unlisted") or moved_to in (None, canonical):
            yield self._follow(response, target)
            return
        self._inc("archive/pages/gone")
        yield gone_page(
            canonical,
            response.url,
            now,
            response.status,
            f"redirects to {moved_to}; no longer listed in the index",
        )
        if moved_to not in self.scheduled:
            yield self._topic_request(target, moved_to)

    def _redirect_target(self, response: Response) -> tuple[str | None, str]:
        """Where a topic page's redirect leads, or None and why it is not followed."""
        location = _header(response, b"Location")
        if not location:
            return None, f"HTTP {response.status} without a Location"
        target = urljoin(response.url, location)
        if urlsplit(target).netloc != urlsplit(response.url).netloc:
            return None, f"HTTP {response.status} redirect to another host, not followed: {target}"
        hops = int(response.meta.get("topic_redirects", 0))
        most = self.settings.getint("REDIRECT_MAX_TIMES", 20)
        if hops >= most:
            return (
                None,
                f"HTTP {response.status}: more than {most} redirects (a loop?), last to {target}",
            )
        return target, ""

    def _follow(self, response: Response, target: str) -> Request:
        """The request following a topic page's redirect to `target`."""
        assert response.request is not None
        # dont_filter: a redirect back to a URL fetched before must not vanish as a duplicate
        follow = response.request.replace(url=target, dont_filter=True)
        follow.meta["topic_redirects"] = int(response.meta.get("topic_redirects", 0)) + 1
        follow.meta.pop("retry_times", None)
        self._inc("archive/pages/redirect_followed")
        return follow

    def topic_failed(self, failure: Failure) -> Iterator[PageFailed]:
        request: Request = failure.request  # type: ignore[attr-defined]
        canonical: str = request.meta["canonical_url"]
        status: int | None = None
        error = failure.value
        if isinstance(error, HttpError):
            status = error.response.status
            reason = f"HTTP {status}"
        else:
            reason = f"{type(error).__name__}: {failure.getErrorMessage()}".strip()
        if _is_robots_refusal(failure):
            self._inc("archive/pages/robots_forbidden")
            logger.info("robots.txt forbids %s: not fetched", request.url)
            return
        if status is None:
            self._network_error(failure)
        self._inc(f"archive/pages/fetch_error/{status or type(error).__name__}")
        yield failed_page(canonical, request.url, datetime.now(UTC), status, reason)

    def _failure_reason(self, failure: Failure) -> str:
        """Why a discovery request failed: "HTTP <status>", or its network error."""
        if isinstance(failure.value, HttpError):
            return f"HTTP {failure.value.response.status}"
        return self._network_error(failure)

    def _network_error(self, failure: Failure) -> str:
        """What went wrong with a request that got no HTTP answer; noted (unless the
        request was refused before it was sent) for `pipelines.reachability`."""
        text = network_error_text(failure.value)
        if self.crawler.stats is not None and not isinstance(failure.value, IgnoreRequest):
            self.crawler.stats.set_value(NETWORK_ERROR, text)
        return text

    def _inc(self, key: str) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(key)


def _header_pairs(headers: Any) -> list[tuple[str, str]]:
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, values in headers.items()
        for value in values
    ]


def raw_response(response: Response, fetched_at: datetime) -> RawResponse:
    """The exchange as received, for the archive's WARC file."""
    request = response.request
    target = urlsplit(request.url if request is not None else response.url)
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    return RawResponse(
        url=response.url,
        status=response.status,
        reason=reason,
        headers=_header_pairs(response.headers),
        body=response.body,
        request_path=target.path + (f"?{target.query}" if target.query else ""),
        request_headers=_header_pairs(request.headers) if request is not None else [],
        fetched_at=fetched_at,
    )


def _warc_date(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return datetime.now(UTC)


def _topic_id(url: str) -> TopicId | None:
    path = topic_path(url)
    return (path[1], path[0]) if path is not None else None


def _read_local(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise SpiderArgumentError(f"cannot read {path}: {error.strerror or error}") from error


def gone_page(
    canonical: str, source_url: str, fetched_at: datetime, status: int, reason: str
) -> PageGone:
    """The `gone` item of the topic page at `canonical` (its slug and language come from
    the URL)."""
    slug, language = topic_path(canonical) or ("", "en")
    return PageGone(
        url=canonical,
        language=language,
        slug=slug,
        source_url=source_url,
        fetched_at=fetched_at,
        http_status=status,
        reason=reason,
    )


def failed_page(
    canonical: str,
    source_url: str,
    fetched_at: datetime,
    status: int | None,
    error: str,
    *,
    field: str | None = None,
) -> PageFailed:
    """The `error` observation of the topic page at `canonical` (its slug and language
    come from the URL)."""
    slug, language = topic_path(canonical) or ("", "en")
    return PageFailed(
        url=canonical,
        language=language,
        slug=slug,
        source_url=source_url,
        fetched_at=fetched_at,
        http_status=status,
        error=error,
        field=field,
    )


def _topic_at(url: str) -> str | None:
    """The canonical URL of the topic page fetched from `url`; None when `url` is not one."""
    return canonical_url(url) if topic_path(url) else None


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _header_sent(response: Response, name: bytes) -> str | None:
    value = response.request.headers.get(name) if response.request is not None else None
    return value.decode("latin-1") if value else None


def _is_robots_refusal(failure: Failure) -> bool:
    return isinstance(failure.value, IgnoreRequest) and "robots" in str(failure.value).lower()
