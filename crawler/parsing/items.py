"""Typed items: one page version of a MedlinePlus health topic is one `HealthTopicPage`.

These classes are the single source of truth for field names and types: the parser
fills them, the pipelines read them through `ItemAdapter`, and the Parquet schema is
built from them.  Field meanings follow DESIGN.md section 2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, get_args

Language = Literal["en", "es"]
LANGUAGES: tuple[Language, ...] = get_args(Language)


@dataclass(kw_only=True, slots=True)
class Institute:
    """An NIH institute, as named and linked on the page."""

    name: str
    """Display name, e.g. "National Cancer Institute"."""
    url: str | None
    """Link to the institute's site as published (absolute), None when not linked."""


@dataclass(kw_only=True, slots=True)
class Image:
    """The topic image in the sidebar (not the social-media og:image)."""

    url: str
    """Absolute image URL as published."""
    alt: str
    """Alternative text ("" when the page gives none)."""


@dataclass(kw_only=True, slots=True)
class RelatedTopic:
    """A link in the sidebar's "Related Health Topics" box."""

    title: str
    """Link text, e.g. "Adenoids"."""
    url: str
    """Absolute URL of the related topic page as published."""


@dataclass(kw_only=True, slots=True)
class TopicLink:
    """One entry of a link section (Start Here, Treatments and Therapies, ...)."""

    section: str
    """The section's h2 text, e.g. "Start Here" (Spanish pages: Spanish names)."""
    section_id: int | None
    """51 for `cat_51_section`; None when the section carries no such id."""
    position: int
    """0-based position of the entry within its section."""
    title: str
    """Text of the entry's main link."""
    url: str
    """Absolute URL of the entry's main (first) link as published."""
    organizations: list[str] = field(default_factory=list)
    """Publishing organisations, "(A; B)" -> ["A", "B"]."""
    badges: list[str] = field(default_factory=list)
    """"nih", "video", "easy-to-read", "infographic", or another badge's lower-cased alt text."""
    other_language_url: str | None = None
    """The "Also in Spanish" (or "También en inglés") link, when present."""
    site_id: str | None = None
    """MedlinePlus' own id of the linked resource (`data-sid`)."""


@dataclass(kw_only=True, slots=True)
class ClinicalTrial:
    """An entry of the Clinical Trials section (a ClinicalTrials.gov search)."""

    position: int
    """0-based position within the section."""
    title: str
    """Link text as published, e.g. "ClinicalTrials.gov: Lung Cancer"."""
    url: str
    """Absolute URL as published."""
    organizations: list[str] = field(default_factory=list)
    """Publishing organisations, usually ["National Institutes of Health"]."""
    nih: bool = False
    """True when the entry carries the "From the National Institutes of Health" badge."""


@dataclass(kw_only=True, slots=True)
class JournalArticle:
    """An "Article: ..." entry of the Journal Articles section (PubMed's latest)."""

    position: int
    """0-based position within the section (the "see more" link is not counted)."""
    title: str
    """Link text as published, "Article: " prefix included."""
    url: str
    """Absolute PubMed URL as published."""
    pmid: str | None
    """PubMed id taken from the URL, None when the URL carries none."""


@dataclass(kw_only=True, slots=True)
class HealthTopicPage:
    """One fetched version of one health-topic page, fully extracted."""

    url: str
    """Canonical page URL, always https://medlineplus.gov/..., even when crawled from a mirror."""
    language: Language
    """Page language."""
    slug: str
    """"lungcancer" for .../lungcancer.html (Spanish pages: the same slug under /spanish/)."""
    title: str
    """The h1 text."""
    also_called: list[str] = field(default_factory=list)
    """"Also called: A, B" split on ", "."""
    other_names: list[str] = field(default_factory=list)
    """`DC.Title.Alternate` metas: see-references that lead to this topic."""
    meta_description: str | None = None
    """`meta[name=description]` content."""
    summary_html: str = ""
    """Summary inner HTML, attribution removed, with only allowlisted elements and
    attributes (`crawler.parsing.html_text.SUMMARY_TAGS`): other elements are unwrapped to
    their content, scripts and the like dropped, links absolute."""
    summary_text: str = ""
    """Summary as plain text, one block (p, li, h3) per line."""
    summary_attribution: str | None = None
    """The summary's attribution line, e.g. "NIH: National Cancer Institute"."""
    primary_institute: Institute | None = None
    """Sidebar "primary NIH organization for research on ..."."""
    image: Image | None = None
    """Sidebar topic image."""
    mesh_headings: list[str] = field(default_factory=list)
    """`DC.Subject.MeSH` metas."""
    groups: list[str] = field(default_factory=list)
    """`DC.Relation.IsPartOf` metas: the health-topic groups this topic belongs to."""
    counterpart_url: str | None = None
    """URL of the same topic in the other language."""
    related_topics: list[RelatedTopic] = field(default_factory=list)
    """Sidebar "Related Health Topics"."""
    links: list[TopicLink] = field(default_factory=list)
    """Every entry of every section except Clinical Trials and Journal Articles."""
    clinical_trials: list[ClinicalTrial] = field(default_factory=list)
    """The Clinical Trials section."""
    journal_articles: list[JournalArticle] = field(default_factory=list)
    """The "Article:" entries (volatile: PubMed's latest, not part of the content hash)."""
    journal_articles_more_url: str | None = None
    """The Journal Articles section's "see more articles" search link."""
    date_created: date | None = None
    """`DC.Date.Created`."""
    last_updated: date
    """The page's own "last updated" date (valid time of this version). Required."""
    last_reviewed: date | None = None
    """"Topic last reviewed: ..." (older template only)."""
    content_hash: str = ""
    """sha256 of the editorial content: every field above except the page's own dates and
    journal articles, so a date-only change keeps the hash. Filled by the parser."""
    source_url: str = ""
    """The URL actually fetched (a mirror's URL when crawling a mirror)."""
    fetched_at: datetime | None = None
    """When the page was fetched (UTC); None for a page parsed from disk."""
    http_status: int | None = None
    """HTTP status of the fetch; None for a page parsed from disk."""
    etag: str | None = None
    """The response's ETag header, kept to revalidate the page on the next crawl."""
    last_modified: str | None = None
    """The response's Last-Modified header (as received), kept for the same purpose."""
    declared_url: str | None = None
    """The page's canonical link (or og:url) when it names another page than `url`, the
    one fetched: recorded and flagged by the crawl, never used to file the page. Not a
    column of the archive nor part of the JSON form (see NOT_ARCHIVED)."""
    raw: RawResponse | EncodedExchange | None = field(default=None, repr=False, compare=False)
    """The HTTP exchange as received (or already encoded as WARC records), for the
    archive's WARC file; not a column of the archive nor part of the JSON form (see
    NOT_ARCHIVED)."""


@dataclass(kw_only=True, slots=True)
class PageNotModified:
    """A re-crawled page the server answered 304 Not Modified: unchanged, nothing parsed."""

    url: str
    """Canonical page URL."""
    language: Language
    """Page language (from the URL)."""
    slug: str
    """Topic slug (from the URL)."""
    source_url: str
    """The URL actually fetched."""
    fetched_at: datetime
    """When the 304 arrived (UTC)."""
    etag: str | None = None
    """ETag sent with the 304 (or the one we asked with)."""
    last_modified: str | None = None
    """Last-Modified sent with the 304 (or the one we asked with)."""


@dataclass(kw_only=True, slots=True)
class PageGone:
    """A topic that no longer exists: its URL answered 404/410, or (a topic the index no
    longer lists) redirects to another topic page."""

    url: str
    """Canonical page URL."""
    language: Language
    """Page language (from the URL)."""
    slug: str
    """Topic slug (from the URL)."""
    source_url: str
    """The URL fetched."""
    fetched_at: datetime
    """When it was found gone (UTC)."""
    http_status: int
    """404 or 410, or the redirect's status."""
    reason: str
    """Why it counts as gone, for people reading the observations."""


@dataclass(kw_only=True, slots=True)
class PageFailed:
    """A topic page that could not be fetched or extracted: an `error` observation."""

    url: str
    """Canonical page URL (as discovered)."""
    language: Language
    """Page language (from the URL)."""
    slug: str
    """Topic slug (from the URL)."""
    source_url: str
    """The URL fetched."""
    fetched_at: datetime
    """When the failure happened (UTC)."""
    http_status: int | None
    """The HTTP status, None when no response arrived (timeout, reset, refused)."""
    error: str
    """One-line reason."""
    field: str | None = None
    """For extraction failures: the field that could not be extracted."""


@dataclass(kw_only=True, slots=True)
class RawResponse:
    """An HTTP exchange as received, kept to archive new versions in WARC files."""

    url: str
    """The URL fetched (a mirror's URL when crawling a mirror)."""
    status: int
    """HTTP status."""
    reason: str
    """HTTP reason phrase ("OK")."""
    headers: list[tuple[str, str]]
    """Response headers as received, in order."""
    body: bytes
    """The page as received (transfer and content encodings already decoded)."""
    request_path: str
    """Path and query of the request line."""
    request_headers: list[tuple[str, str]]
    """Request headers as sent."""
    fetched_at: datetime
    """When the response arrived (UTC)."""


@dataclass(kw_only=True, slots=True)
class EncodedExchange:
    """An HTTP exchange already encoded as WARC records (`pipelines.core.warc.encode_exchange`):
    a crawl encodes each page in the worker process that extracts it."""

    target_uri: str
    """The canonical page URL the records are filed under (the page's `url`)."""
    records: bytes
    """The response record, then the request record, each a gzip member."""


CrawlItem = HealthTopicPage | PageNotModified | PageGone | PageFailed
"""Everything the spider yields: one per fetched topic URL."""


HASHED_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(HealthTopicPage)
    if f.name
    not in {
        "last_updated",
        "last_reviewed",
        "date_created",
        "journal_articles",
        "journal_articles_more_url",
        "content_hash",
        "source_url",
        "fetched_at",
        "http_status",
        "etag",
        "last_modified",
        "declared_url",
        "raw",
    }
)
"""The fields whose values make up `content_hash`, in declaration order."""


NOT_ARCHIVED: tuple[str, ...] = ("declared_url", "raw")
"""HealthTopicPage fields kept out of the archive's tables and of the JSON form: the raw
response goes to the run's WARC file instead; `declared_url` is reported by the crawl
(a warning and the `archive/pages/declared_url_mismatch` count). A column for it would
change the tables' schema (SCHEMA_VERSION), which every archive's readers, `verify` and
compaction check file by file."""


def to_jsonable(value: Any) -> Any:
    """Turn an item (or any part of one) into plain JSON types: dates as ISO-8601 strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in NOT_ARCHIVED
        }
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
