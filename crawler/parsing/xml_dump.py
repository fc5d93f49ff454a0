"""NLM's health-topic XML dump as a crawl's topic list: found, fetched, checked and read
within bounds, before the crawl starts.

`--from-xml` names a file, a URL or `latest`: the newest dump linked from the site's
`xml.html` (medlineplus.gov publishes `mplus_topics_YYYY-MM-DD.xml` and its zip
`mplus_topics_compressed_YYYY-MM-DD.zip` there every day). A URL is fetched because the
user asked for it, as curl would: robots.txt governs what the crawl discovers, not a URL
the user names (medlineplus.gov's disallows `/xml/`, where the dumps live), and it may be
on any host. It is fetched here with urllib and the crawl's User-Agent, not by Scrapy
(whose 10 MB page limit a full dump exceeds), so that a dump that cannot be used stops
the command (exit 2) before anything is crawled or written. The topic URLs it lists are
then crawled under all the usual rules.

Bounds: at most `max_bytes` are downloaded and at most `max_bytes` of XML are read
(decompressed from a zip, with a running count: a zip's stated sizes are not trusted).
The content type and the first bytes must be those of XML or a zip. The XML is parsed
as a stream, keeping only the record being read: no DTD is loaded, no entity may be
declared, nothing is fetched from the network.

Each `<health-topic>` record is kept whole as a `DumpTopic` (title, summary,
also-called, every site link with its categories and organisations, related topics, the
language pair...) with a fingerprint of those fields, so that an incremental crawl can
tell which topics changed since the previous dump (see `pipelines.archive.incremental`).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

from lxml import etree

from crawler.parsing.discovery import DiscoveryError, fetch_url, on_site
from crawler.parsing.errors import CrawlerError
from crawler.parsing.items import Language, to_jsonable
from crawler.parsing.urls import modern_url, topic_path

LATEST = "latest"
"""`--from-xml latest`: the newest dump linked from `<base URL>/xml.html`."""

_LANGUAGES: dict[str, Language] = {"english": "en", "spanish": "es"}
_CHUNK = 64 * 1024
"""Bytes downloaded, decompressed and parsed at a time."""
_ZIP_MAGIC = b"PK"
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"
_ENTITY = b"<!ENTITY"
_XML_TYPES = ("application/xml", "text/xml")
_ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/x-zip")
_UNTYPED = "application/octet-stream"
_DUMP_NAME = re.compile(
    r"^mplus_topics_(?P<compressed>compressed_)?(?P<date>\d{4}-\d{2}-\d{2})\.(?:xml|zip)$"
)
"""Names of the daily dump: mplus_topics_2025-03-04.xml, mplus_topics_compressed_2025-03-04.zip."""
_CLIENT_ERRORS_TO_RETRY = (408, 429)
"""4xx answers that say "not now" rather than "no such dump"."""


@dataclass(frozen=True, slots=True)
class DumpSite:
    """One `<site>` of a record: a link the topic page lists, with its section."""

    title: str
    url: str
    language_mapped_url: str | None = None
    """The link's counterpart in the other language, when the dump names one."""
    categories: list[str] = field(default_factory=list)
    """Its `<information-category>` entries, e.g. "Start Here", "Encyclopedia"."""
    organizations: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DumpTopic:
    """One `<health-topic>` record of the dump: what the XML says about a topic page.

    Texts have their runs of white space collapsed (NLM re-indents the file now and
    then); URLs are the modern https://medlineplus.gov ones. `fingerprint` is the sha256
    of every other field, so two dumps agree on a topic exactly when it is equal.
    """

    url: str
    """Canonical page URL."""
    language: Language
    slug: str
    title: str
    topic_id: str | None = None
    """NLM's id attribute."""
    meta_desc: str | None = None
    date_created: str | None = None
    """As written, MM/DD/YYYY."""
    summary: str | None = None
    """`<full-summary>`: the summary as escaped HTML text."""
    also_called: list[str] = field(default_factory=list)
    see_references: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    related_topics: list[str] = field(default_factory=list)
    """URLs of the `<related-topic>` entries."""
    language_mapped_url: str | None = None
    """URL of the `<language-mapped-topic>`: the same topic in the other language."""
    mesh_headings: list[str] = field(default_factory=list)
    primary_institute: str | None = None
    sites: list[DumpSite] = field(default_factory=list)
    fingerprint: str = ""
    """sha256 (hex) of the fields above; set by `dump_topic`."""


@dataclass(frozen=True, slots=True)
class Dump:
    """The records of a dump in the languages asked for, and the day it was generated."""

    dump_date: date | None
    """The `date-generated` day of the root element; None when absent or unreadable."""
    topics: list[DumpTopic]

    @property
    def urls(self) -> list[str]:
        """The topic URLs, in the dump's order."""
        return [topic.url for topic in self.topics]


def fingerprint(topic: DumpTopic) -> str:
    """sha256 (hex) of a record's fields but the fingerprint, as canonical JSON."""
    fields = to_jsonable(topic)
    fields.pop("fingerprint", None)
    encoded = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class DumpUnreachableError(CrawlerError):
    """The dump (or xml.html) could not be fetched: the site or the network failed."""


@dataclass(frozen=True, slots=True)
class DumpLimits:
    """How the dump is fetched and read (from the crawl's settings)."""

    max_bytes: int
    """Most bytes downloaded, and most bytes of XML read (MEDLINEPLUS_XML_MAX_BYTES)."""
    user_agent: str
    timeout: float
    """Seconds to wait for the server at each step (DOWNLOAD_TIMEOUT)."""

    @classmethod
    def from_settings(cls, settings: Any) -> DumpLimits:
        """The limits a crawl's Scrapy settings give: MEDLINEPLUS_XML_MAX_BYTES, and the
        crawl's USER_AGENT and DOWNLOAD_TIMEOUT."""
        return cls(
            max_bytes=settings.getint("MEDLINEPLUS_XML_MAX_BYTES"),
            user_agent=str(settings.get("USER_AGENT")),
            timeout=settings.getfloat("DOWNLOAD_TIMEOUT"),
        )


def read_dump(
    source: str, base_url: str, languages: Iterable[Language], limits: DumpLimits
) -> Dump:
    """The records in `languages` of the dump `source`: a local file, an http(s) URL, or
    `latest` (found on `base_url`'s xml.html).

    Raises DiscoveryError when the dump cannot be used (exit 2) and DumpUnreachableError
    when it cannot be fetched (exit 3).
    """
    if source == LATEST:
        source = _latest_dump(base_url, limits)
    if urlsplit(source).scheme in {"http", "https", "file"}:
        with tempfile.TemporaryFile() as dump:
            _download(source, dump, limits, accept=_is_dump_type)
            dump.seek(0)
            return parse_dump(dump, source, languages, limits.max_bytes)
    try:
        with Path(source).open("rb") as dump:
            return parse_dump(dump, source, languages, limits.max_bytes)
    except OSError as error:
        raise DiscoveryError(f"{source}: cannot be read ({error.strerror or error})") from error


def latest_dump_url(page: bytes, page_url: str, base_url: str) -> str | None:
    """The newest dump that the xml.html `page` links to (its zip when both are linked:
    the smaller download), as a URL on `base_url`'s site; None when it links none."""
    root = etree.fromstring(page, etree.HTMLParser()) if page.strip() else None
    newest: tuple[date, bool, str] | None = None
    for link in root.iter("a") if root is not None else ():
        url = urljoin(page_url, (link.get("href") or "").strip())
        match = _DUMP_NAME.match(PurePosixPath(urlsplit(url).path).name)
        if match is None:
            continue
        try:
            day = date.fromisoformat(match["date"])
        except ValueError:
            continue
        candidate = (day, match["compressed"] is not None, url)
        if newest is None or candidate[:2] > newest[:2]:
            newest = candidate
    if newest is None:
        return None
    url = newest[2]
    return fetch_url(url, base_url) if on_site(url, base_url) else url


def parse_dump(dump: IO[bytes], source: str, languages: Iterable[Language], max_bytes: int) -> Dump:
    """The records in `languages` of the dump in the seekable file `dump`: plain XML, or
    a zip holding it. DiscoveryError when it is neither, damaged, over `max_bytes` of
    XML, or lists no health topic in `languages`."""
    head = dump.read(len(_BYTE_ORDER_MARK) + 64)
    dump.seek(0)
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(dump) as archive:
                member = _xml_member(archive, source)
                with archive.open(member) as xml:
                    records = _records(xml, f"{source} ({member.filename})", max_bytes)
                    return _wanted(records, source, set(languages))
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            NotImplementedError,
            RuntimeError,
        ) as error:
            raise DiscoveryError(f"{source}: not a readable zip file ({error})") from error
    if not head.removeprefix(_BYTE_ORDER_MARK).lstrip().startswith(b"<"):
        raise DiscoveryError(f"{source}: neither XML nor a zip file (it starts {head[:16]!r})")
    return _wanted(_records(dump, source, max_bytes), source, set(languages))


def _wanted(records: Iterator[_Record], source: str, wanted: set[Language]) -> Dump:
    """The topic records of `records` in the `wanted` languages, each URL once, in order."""
    topics: dict[str, DumpTopic] = {}
    listed = 0
    dump_date = None
    for record in records:
        if isinstance(record, date):
            dump_date = record
            continue
        listed += 1
        if record.language in wanted and record.url not in topics:
            topics[record.url] = record
    if not listed:
        raise DiscoveryError(f"{source}: lists no <health-topic> record")
    if not topics:
        chosen = ", ".join(sorted(wanted))
        raise DiscoveryError(
            f"{source}: lists no health-topic page in the chosen languages ({chosen})"
        )
    return Dump(dump_date, list(topics.values()))


def _xml_member(archive: zipfile.ZipFile, source: str) -> zipfile.ZipInfo:
    """The zip's first .xml file (NLM's holds one). Its stated size is not trusted: the
    XML read from it is counted as it is decompressed."""
    members = [info for info in archive.infolist() if info.filename.lower().endswith(".xml")]
    if not members:
        raise DiscoveryError(f"{source}: the zip file holds no .xml file")
    return members[0]


_Record = DumpTopic | date
"""What `_records` yields: the dump's date (first, when it has one), then topic records."""


def _records(xml: IO[bytes], source: str, max_bytes: int) -> Iterator[_Record]:
    """The dump's date, then each `<health-topic>` record of a topic page, parsed
    `_CHUNK` bytes at a time. Each record is dropped once read, so memory holds only the
    one being read."""
    parser = etree.XMLPullParser(
        events=("start", "end"),
        # NLM's dump is UTF-8; read as anything else (UTF-16 declared or guessed), a
        # document would get past the byte search for entity declarations
        encoding="utf-8",
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
    )
    depth = 0
    read = 0
    in_prolog = True
    previous = b""
    try:
        while chunk := xml.read(_CHUNK):
            read += len(chunk)
            if read > max_bytes:
                raise _too_large(source, max_bytes)
            if in_prolog:
                _refuse_entity_declarations(previous[-len(_ENTITY) :] + chunk, source)
                previous = chunk
            parser.feed(chunk)
            for event, element in parser.read_events():
                if not isinstance(element, etree._Element):  # start and end events give elements
                    continue
                if event == "start":
                    if in_prolog:
                        _check_root(element, source)
                        in_prolog = False
                        generated = _generated_on(element.get("date-generated"))
                        if generated is not None:
                            yield generated
                    depth += 1
                    continue
                depth -= 1
                if depth > 1:  # inside a record: kept until the record ends
                    continue
                if depth == 1 and element.tag == "health-topic":
                    topic = dump_topic(element)
                    if topic is not None:
                        yield topic
                element.clear()
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]
        parser.close()
    except etree.XMLSyntaxError as error:
        raise DiscoveryError(f"{source}: not a readable XML file ({error})") from error


def dump_topic(record: etree._Element) -> DumpTopic | None:
    """The `<health-topic>` element `record` as a DumpTopic; None when its URL is no
    health-topic page's."""
    url = modern_url((record.get("url") or "").strip())
    path = topic_path(url)
    if path is None:
        return None
    slug, url_language = path
    language = _LANGUAGES.get((record.get("language") or "").strip().lower(), url_language)

    def texts(tag: str) -> list[str]:
        return [_text(child) for child in record.iterchildren(tag)]

    def first(tag: str) -> etree._Element | None:
        return next(record.iterchildren(tag), None)

    mapped = first("language-mapped-topic")
    institute = first("primary-institute")
    summary = first("full-summary")
    topic = DumpTopic(
        url=url,
        language=language,
        slug=slug,
        title=_clean(record.get("title")),
        topic_id=record.get("id"),
        meta_desc=_clean(record.get("meta-desc")) or None,
        date_created=record.get("date-created"),
        summary=_text(summary) if summary is not None else None,
        also_called=texts("also-called"),
        see_references=texts("see-reference"),
        groups=texts("group"),
        related_topics=[
            modern_url((child.get("url") or "").strip())
            for child in record.iterchildren("related-topic")
        ],
        language_mapped_url=modern_url(mapped.get("url") or "") if mapped is not None else None,
        mesh_headings=[
            _text(descriptor)
            for heading in record.iterchildren("mesh-heading")
            for descriptor in heading.iterchildren("descriptor")
        ],
        primary_institute=_text(institute) if institute is not None else None,
        sites=[
            DumpSite(
                title=_clean(site.get("title")),
                url=(site.get("url") or "").strip(),
                language_mapped_url=(site.get("language-mapped-url") or "").strip() or None,
                categories=[_text(c) for c in site.iterchildren("information-category")],
                organizations=[_text(o) for o in site.iterchildren("organization")],
            )
            for site in record.iterchildren("site")
        ],
    )
    return replace(topic, fingerprint=fingerprint(topic))


def _clean(text: str | None) -> str:
    """`text` with runs of white space collapsed to one space, stripped."""
    return " ".join((text or "").split())


def _text(element: etree._Element) -> str:
    return _clean("".join(str(text) for text in element.itertext()))


def _generated_on(value: str | None) -> date | None:
    """The day of a `date-generated` attribute ("03/04/2025 02:30:23"); None when absent."""
    try:
        return datetime.strptime((value or "").strip()[:10], "%m/%d/%Y").date()
    except ValueError:
        return None


def _refuse_entity_declarations(prolog: bytes, source: str) -> None:
    """Refuse a document that declares an entity: NLM's dump declares none, and lxml would
    expand internal ones in attribute values even with resolve_entities off. Declarations
    can only come before the root element, so only the chunks read until it opened are
    searched (a `<!ENTITY` in a comment there is refused too)."""
    if _ENTITY in prolog:
        raise DiscoveryError(f"{source}: declares XML entities; refused (entity expansion)")


def _check_root(root: etree._Element, source: str) -> None:
    if root.tag != "health-topics":
        raise DiscoveryError(
            f"{source}: not a MedlinePlus health-topics XML file (root element <{root.tag}>)"
        )


def _too_large(source: str, max_bytes: int) -> DiscoveryError:
    return DiscoveryError(
        f"{source}: more than {max_bytes:,} bytes of XML; refused"
        " (-s MEDLINEPLUS_XML_MAX_BYTES=N raises the limit)"
    )


def _is_dump_type(content_type: str) -> bool:
    return content_type in (*_XML_TYPES, *_ZIP_TYPES, _UNTYPED) or content_type.endswith("+xml")


def _latest_dump(base_url: str, limits: DumpLimits) -> str:
    page_url = f"{base_url.rstrip('/')}/xml.html"
    with tempfile.TemporaryFile() as page:
        _download(page_url, page, limits, accept=lambda content_type: True)
        page.seek(0)
        url = latest_dump_url(page.read(), page_url, base_url)
    if url is None:
        raise DiscoveryError(
            f"{page_url}: links no mplus_topics_YYYY-MM-DD.xml or"
            " mplus_topics_compressed_YYYY-MM-DD.zip dump"
        )
    return url


def _download(url: str, sink: IO[bytes], limits: DumpLimits, accept: Callable[[str], bool]) -> None:
    """Copy `url` into `sink`, at most `limits.max_bytes` bytes; DiscoveryError when its
    content type is not `accept`ed, it is too large or the server says it does not exist."""
    request = urllib.request.Request(url, headers={"User-Agent": limits.user_agent})
    try:
        with urllib.request.urlopen(request, timeout=limits.timeout) as response:
            raw_type = response.headers.get("Content-Type")
            content_type = raw_type.split(";")[0].strip().lower() if raw_type else _UNTYPED
            if urlsplit(url).scheme != "file" and not accept(content_type):
                raise DiscoveryError(f"{url}: served as {content_type}, not XML or a zip file")
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > limits.max_bytes:
                raise _too_large(url, limits.max_bytes)
            copied = 0
            while chunk := response.read(_CHUNK):
                copied += len(chunk)
                if copied > limits.max_bytes:
                    raise _too_large(url, limits.max_bytes)
                sink.write(chunk)
    except urllib.error.HTTPError as error:
        message = f"{url}: HTTP {error.code} {error.reason}"
        if 400 <= error.code < 500 and error.code not in _CLIENT_ERRORS_TO_RETRY:
            raise DiscoveryError(message) from error
        raise DumpUnreachableError(message) from error
    except urllib.error.URLError as error:
        if urlsplit(url).scheme == "file":
            raise DiscoveryError(f"{url}: cannot be read ({error.reason})") from error
        raise DumpUnreachableError(f"{url}: cannot be fetched ({error.reason})") from error
    except (OSError, HTTPException) as error:
        raise DumpUnreachableError(f"{url}: cannot be fetched ({error})") from error
