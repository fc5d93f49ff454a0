"""Parse one MedlinePlus health-topic page into a `HealthTopicPage`.

Pure: HTML bytes in, item out; imports lxml, never Scrapy. The document is parsed once
and walked once to find the landmarks (elements with an id, the h1, the section bodies);
everything else is read relative to those, which keeps the extraction cheaper than
the HTML parse itself (see bench/extract.py).

Handles the late-2025 template, the 2020 template ("Page last updated on ..."), the
short layout without a table of contents, and Spanish pages. See
../shared/docs/PAGE_STRUCTURE.md for where each field sits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import cast
from urllib.parse import urljoin

from lxml import etree

from crawler.parsing.content_hash import content_hash
from crawler.parsing.dates import (
    REVIEWED_MARKERS,
    UPDATED_MARKERS,
    find_marked_date,
    parse_iso_date,
    parse_written_date,
)
from crawler.parsing.errors import ExtractionError
from crawler.parsing.html_text import (
    HtmlElement,
    clean_markup,
    collapse,
    inner_html,
    make_links_absolute,
    markup_text_blocks,
    text_of,
)
from crawler.parsing.items import (
    LANGUAGES,
    ClinicalTrial,
    HealthTopicPage,
    Image,
    Institute,
    JournalArticle,
    Language,
    RelatedTopic,
    TopicLink,
)
from crawler.parsing.urls import canonical_url, modern_url, topic_path, without_dot_segments

_SECTION_ID = re.compile(r"^cat_(\d+)_section$")
_PMID = re.compile(r"/pubmed/(\d+)|pubmed\.ncbi\.nlm\.nih\.gov/(\d+)")

CLINICAL_TRIALS_SECTION_ID = 27
JOURNAL_ARTICLES_SECTION_ID = 59
_CLINICAL_TRIALS_NAMES = ("clinical trials", "ensayos clínicos", "ensayos clinicos")
_JOURNAL_ARTICLES_NAMES = ("journal articles", "artículos de revistas", "articulos de revistas")
_ARTICLE_PREFIXES = ("article:", "artículo:", "articulo:")

BADGES: dict[str, str] = {
    "from the national institutes of health": "nih",
    "de los institutos nacionales de la salud": "nih",
    "video": "video",
    "easy-to-read": "easy-to-read",
    "fácil de leer": "easy-to-read",
    "facil de leer": "easy-to-read",
    "infographic": "infographic",
    "infografía": "infographic",
    "infografia": "infographic",
}
"""Badge image alt texts (English and Spanish) and the badge names items carry."""

_ALSO_CALLED_LABELS = ("also called:", "otros nombres:", "también llamado:", "tambien llamado:")

MAX_PAGE_BYTES = 4 * 1024 * 1024
"""A larger body is refused before it is parsed. The largest real page of the corpus
(../shared/corpus/medlineplus/pages, late 2025) is breastcancer.html, 222,492 bytes: the
limit leaves a margin of 18 times."""
MAX_NESTING = 255
"""Elements nested deeper than this are refused. The limit is libxml2's own (256 levels,
the document node included, lxml's `huge_tree` off), beyond which it drops the rest of
the page: the parser reports that as an error instead of a page with content missing.
Real pages nest 14 elements deep (every page of the corpus): a margin of 18 times."""

_PARSERS: dict[str, etree.HTMLParser] = {}

_Absolute = Callable[[str], str]
"""Makes a published href absolute against the page."""


@dataclass(slots=True)
class _Landmarks:
    """Elements found by the single document walk."""

    by_id: dict[str, HtmlElement] = field(default_factory=dict)
    h1: HtmlElement | None = None
    also_called: HtmlElement | None = None
    footer: HtmlElement | None = None
    lastupdate: HtmlElement | None = None
    section_bodies: list[HtmlElement] = field(default_factory=list)


def parse_health_topic(
    body: bytes | str, url: str, *, encoding: str | None = None, topic_url: str | None = None
) -> HealthTopicPage:
    """Extract one health-topic page.

    `url` is the URL the page was fetched from (a mirror's is fine): relative links are
    resolved against it, and it names the page in errors. `encoding` overrides the
    page's own declaration (pass the HTTP header's charset when there is one).

    The page is stored under `topic_url` (the spider passes the topic page it fetched,
    after redirects); by default under `url` when that is a topic page's URL, else under
    the page's own canonical link (a page read from disk). A canonical link or og:url
    naming another page never changes that: it is kept in `declared_url`.

    Raises `ExtractionError` (naming the URL and the field) when the page is not a
    health topic, is larger than MAX_PAGE_BYTES or nested deeper than MAX_NESTING, or
    lacks its title, its summary or every form of last-updated date.
    """
    root = _parse_document(body, url, encoding)
    if root.get("id") != "health_topic":
        raise ExtractionError(url, "html#health_topic", "not a health-topic page")
    head = _head_values(root, url)
    marks = _find_landmarks(root)
    fetched = topic_url or url
    identity = head.canonical if topic_url is None and topic_path(url) is None else None
    canonical = canonical_url(identity or fetched)
    declared_url = _declared_elsewhere(head, canonical)
    base = canonical if declared_url is not None else head.canonical or url

    def absolute(href: str) -> str:
        href = href.strip()
        if href.startswith(("https://", "http://")):  # skip urljoin, this parser's hot spot
            return without_dot_segments(href) if "/." in href else href
        return urljoin(base, href)

    title = text_of(marks.h1) if marks.h1 is not None else ""
    if not title:
        raise ExtractionError(url, "title", "no h1 title on the page")
    last_updated, last_reviewed = _page_dates(root, marks, head)
    if last_updated is None:
        raise ExtractionError(
            url,
            "last_updated",
            "no last-updated date (looked for #lastupdate, 'Page last updated on'"
            " and DC.Date.Modified)",
        )

    path = topic_path(canonical)
    if path is None:
        raise ExtractionError(url, "url", f"canonical URL {canonical} is not a topic page URL")
    slug, path_language = path
    language = _language(root.get("lang"), path_language)

    summary_html, summary_text, attribution = _summary(marks.by_id.get("topic-summary"), absolute)
    if not summary_text:
        raise ExtractionError(url, "summary_text", "no summary text (#topic-summary)")
    links, trials, articles, more_url = _sections(marks.section_bodies, absolute)
    page = HealthTopicPage(
        url=canonical,
        language=language,
        slug=slug,
        title=title,
        also_called=_also_called(marks.also_called),
        other_names=head.metas.get("dc.title.alternate", []),
        meta_description=_first(head.metas.get("description")),
        summary_html=summary_html,
        summary_text=summary_text,
        summary_attribution=attribution,
        primary_institute=_institute(marks.by_id.get("primary-institute-section"), absolute),
        image=_image(marks.by_id.get("ht-img-section"), absolute),
        mesh_headings=head.metas.get("dc.subject.mesh", []),
        groups=head.metas.get("dc.relation.ispartof", []),
        counterpart_url=_counterpart(root, head, language, absolute),
        related_topics=_related(marks.by_id.get("related-topics"), absolute),
        links=links,
        clinical_trials=trials,
        journal_articles=articles,
        journal_articles_more_url=more_url,
        date_created=parse_iso_date(_first(head.metas.get("dc.date.created"))),
        last_updated=last_updated,
        last_reviewed=last_reviewed,
        source_url=url,
        declared_url=declared_url,
    )
    page.content_hash = content_hash(page)
    return page


def _parse_document(body: bytes | str, url: str, encoding: str | None) -> HtmlElement:
    """The parsed page; ExtractionError naming the cause when it is too large, nested too
    deep or not HTML at all."""
    if len(body) > MAX_PAGE_BYTES:
        raise ExtractionError(
            url, "html", f"page of {len(body):,} bytes, over the limit of {MAX_PAGE_BYTES:,}"
        )
    if isinstance(body, bytes) and encoding is None:
        encoding = declared_encoding(body) or "utf-8"
    parser = _parser_for(encoding)
    try:
        root = etree.fromstring(body, parser)
    except (etree.ParserError, ValueError) as error:
        raise ExtractionError(url, "html", f"unreadable HTML ({error})") from error
    for problem in parser.error_log:
        if problem.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
            reason = (
                f"elements nested more than {MAX_NESTING} deep"
                if "depth" in problem.message.lower()
                else f"beyond the HTML parser's limits ({problem.message.strip()})"
            )
            raise ExtractionError(url, "html", reason)
    if root is None:
        raise ExtractionError(url, "html", "empty document")
    return root


def _parser_for(encoding: str | None) -> etree.HTMLParser:
    """A cached HTML parser for `encoding`; an encoding libxml2 does not know is read as
    UTF-8, as browsers ignore an unknown charset label."""
    key = (encoding or "").lower()
    parser = _PARSERS.get(key)
    if parser is None:
        try:
            parser = etree.HTMLParser(
                encoding=encoding or None, remove_comments=True, remove_pis=True, collect_ids=False
            )
        except LookupError:
            parser = _parser_for("utf-8")
        _PARSERS[key] = parser
    return parser


_HEADER_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.IGNORECASE)


def encoding_for(body: bytes, content_type: str | None) -> str | None:
    """The encoding to parse `body` with, given its HTTP Content-Type header: None when the
    page declares its own (a byte-order mark or meta charset wins over the header, which
    is more often wrong), else the header's charset, else None (UTF-8)."""
    if declared_encoding(body) or not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return match[1] if match else None


_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def declared_encoding(body: bytes) -> str | None:
    """The charset a page declares in a meta tag near its start; a byte-order mark wins."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return encoding
    match = _META_CHARSET.search(body, 0, 4096)
    return match[1].decode("ascii") if match else None


@dataclass(slots=True)
class _Head:
    canonical: str | None = None
    og_url: str | None = None
    alternates: dict[str, str] = field(default_factory=dict)
    metas: dict[str, list[str]] = field(default_factory=dict)


def _head_values(root: HtmlElement, url: str) -> _Head:
    """Canonical link, hreflang alternates and every named meta, from one pass over <head>."""
    head = _Head()
    head_element = root.find("head")
    if head_element is None:
        return head
    for element in head_element.iterchildren("link", "meta"):
        if element.tag == "meta":
            name = element.get("name")
            content = element.get("content")
            if name and content is not None and (value := collapse(content)):
                head.metas.setdefault(name.lower(), []).append(value)
            elif content and head.og_url is None and element.get("property") == "og:url":
                head.og_url = urljoin(url, content.strip())
            continue
        rel = (element.get("rel") or "").lower()
        href = element.get("href")
        if not href:
            continue
        if rel == "canonical" and head.canonical is None:
            head.canonical = urljoin(url, href.strip())
        elif rel == "alternate" and (hreflang := element.get("hreflang")):
            head.alternates.setdefault(hreflang.lower()[:2], urljoin(url, href.strip()))
    if head.canonical is None and (identifier := _first(head.metas.get("dc.identifier.url"))):
        head.canonical = urljoin(url, identifier)
    return head


def _declared_elsewhere(head: _Head, canonical: str) -> str | None:
    """The page's canonical link or og:url when it names another page than `canonical`."""
    for declared in (head.canonical, head.og_url):
        if declared and declared != canonical and canonical_url(modern_url(declared)) != canonical:
            return declared
    return None


def _find_landmarks(root: HtmlElement) -> _Landmarks:
    """One walk over the document finds the elements the parser starts from.

    Only the tags that carry landmarks are visited: lxml filters tags in C, which is ten
    times cheaper than a Python loop over every element or an XPath with predicates.
    Spans, the most numerous, are looked for near the h1 and in the footer only.
    """
    marks = _Landmarks()
    for element in root.iter("div", "section", "h1", "footer"):
        element_id = element.get("id")
        if element_id and element_id not in marks.by_id:
            marks.by_id[element_id] = element
        tag = element.tag
        if tag == "div":
            classes = element.get("class")
            if classes and "section-body" in classes and "section-body" in classes.split():
                marks.section_bodies.append(element)
        elif tag == "h1":
            if marks.h1 is None:
                marks.h1 = element
        elif tag == "footer" and marks.footer is None:
            marks.footer = element
    if marks.h1 is not None:
        title_box = marks.h1.getparent()
        marks.also_called = _span(title_box if title_box is not None else root, "alsocalled")
    marks.lastupdate = (
        _span(marks.footer, "lastupdate", by_id=True) if marks.footer is not None else None
    )
    if marks.lastupdate is None:
        marks.lastupdate = _span(root, "lastupdate", by_id=True)
    return marks


def _span(scope: HtmlElement, name: str, *, by_id: bool = False) -> HtmlElement | None:
    """The first span under `scope` with id `name` (by_id) or with class `name`."""
    for span in scope.iter("span"):
        value = span.get("id") if by_id else span.get("class")
        if value and (value == name if by_id else name in value.split()):
            return span
    return None


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def _language(lang_attribute: str | None, path_language: Language) -> Language:
    code = (lang_attribute or "").strip().lower()[:2]
    for language in LANGUAGES:
        if code == language:
            return language
    return path_language


def _page_dates(
    root: HtmlElement, marks: _Landmarks, head: _Head
) -> tuple[date | None, date | None]:
    """(last_updated, last_reviewed): the page's printed dates, DC.Date.Modified as fallback."""
    lastupdate = marks.lastupdate
    if lastupdate is not None:
        holder = lastupdate.getparent()
        text = text_of(holder if holder is not None else lastupdate)
        updated = find_marked_date(text, UPDATED_MARKERS) or parse_written_date(text_of(lastupdate))
    else:
        footer = marks.footer if marks.footer is not None else marks.by_id.get("mplus-footer")
        text = text_of(footer if footer is not None else root)
        updated = find_marked_date(text, UPDATED_MARKERS)
    if updated is None:
        updated = parse_iso_date(_first(head.metas.get("dc.date.modified")))
    return updated, find_marked_date(text, REVIEWED_MARKERS)


def _also_called(element: HtmlElement | None) -> list[str]:
    if element is None:
        return []
    text = text_of(element)
    lowered = text.lower()
    for label in _ALSO_CALLED_LABELS:
        if lowered.startswith(label):
            text = text[len(label) :]
            break
    else:
        text = text.partition(":")[2] if ":" in text else text
    return [name for name in (collapse(part) for part in text.split(", ")) if name]


def _summary(element: HtmlElement | None, absolute: _Absolute) -> tuple[str, str, str | None]:
    """(allowlisted inner HTML, text blocks joined by newlines, attribution line).

    The attribution (class "attribution") is taken out wherever it sits: a `p` of the
    summary, or inside an element MedlinePlus' editor left in (Spanish pages: `<ph3>`).
    """
    if element is None:
        return "", "", None
    attribution: str | None = None
    classed = cast("list[HtmlElement]", _WITH_CLASS(element))
    found = [node for node in classed if "attribution" in (node.get("class") or "").split()]
    for node in found:
        attribution = attribution or text_of(node) or None
        _remove_keeping_tail(node)
    make_links_absolute(element, absolute)
    markup = clean_markup(inner_html(element))
    return markup, "\n".join(markup_text_blocks(markup)), attribution


_WITH_CLASS = etree.XPath("descendant::*[@class]")


def _remove_keeping_tail(element: HtmlElement) -> None:
    parent = element.getparent()
    if parent is None:
        return
    if element.tail and element.tail.strip():
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _sections(
    bodies: Iterable[HtmlElement], absolute: _Absolute
) -> tuple[list[TopicLink], list[ClinicalTrial], list[JournalArticle], str | None]:
    """Every section entry, sorted into links, clinical trials and journal articles."""
    links: list[TopicLink] = []
    trials: list[ClinicalTrial] = []
    articles: list[JournalArticle] = []
    more_url: str | None = None
    for body in bodies:
        if _in_sidebar(body):
            continue
        name, section_id = _section_name_and_id(body)
        entries: list[TopicLink] = []
        for li in _section_entries(body):
            entry = _entry(li, name, section_id, len(entries), absolute)
            if entry is not None:
                entries.append(entry)
        lowered = name.lower()
        if section_id == CLINICAL_TRIALS_SECTION_ID or lowered in _CLINICAL_TRIALS_NAMES:
            trials.extend(
                ClinicalTrial(
                    position=entry.position,
                    title=entry.title,
                    url=entry.url,
                    organizations=entry.organizations,
                    nih="nih" in entry.badges,
                )
                for entry in entries
            )
        elif section_id == JOURNAL_ARTICLES_SECTION_ID or lowered.startswith(
            _JOURNAL_ARTICLES_NAMES
        ):
            for entry in entries:
                pmid = _PMID.search(entry.url)
                if pmid or entry.title.lower().startswith(_ARTICLE_PREFIXES):
                    articles.append(
                        JournalArticle(
                            position=len(articles),
                            title=entry.title,
                            url=entry.url,
                            pmid=(pmid[1] or pmid[2]) if pmid else None,
                        )
                    )
                else:
                    more_url = entry.url
        else:
            links.extend(entries)
    return links, trials, articles, more_url


def _section_entries(body: HtmlElement) -> Iterator[HtmlElement]:
    """The `li` entries of a section body's lists (`ul > li`, also one wrapper level down)."""
    for child in body:
        lists = (child,) if child.tag == "ul" else child.iterchildren("ul")
        for entries in lists:
            yield from entries.iterchildren("li")


def _in_sidebar(element: HtmlElement) -> bool:
    """True inside the sidebar (aside, div.side); the walk stops at the main column."""
    for ancestor in element.iterancestors("aside", "div"):
        if ancestor.tag == "aside":
            return True
        names = ancestor.get("class")
        if not names or ("side" not in names and "main" not in names):  # cheap test first
            continue
        classes = names.split()
        if "side" in classes or "side-section" in classes:
            return True
        if "main" in classes:
            return False
    return False


def _section_name_and_id(body: HtmlElement) -> tuple[str, int | None]:
    """The section's h2 own text (a sub-heading span left out) and its numeric category id.

    The h2 sits in the section-header that precedes the body inside the same wrapper.
    """
    wrapper = body.getparent()
    heading = _first_h2(wrapper) if wrapper is not None else None
    name = (collapse(heading.text) or text_of(heading)) if heading is not None else ""
    section_id: int | None = None
    for ancestor in body.iterancestors("section"):
        match = _SECTION_ID.match(ancestor.get("id") or "")
        if match:
            section_id = int(match[1])
        break
    return name, section_id


def _first_h2(wrapper: HtmlElement) -> HtmlElement | None:
    """The first h2 in `wrapper`, in document order, looked for child by child: an lxml
    iterator finds the match after the one it yields before yielding it, so a search of
    the whole wrapper would also walk every entry of the section body after the header."""
    if wrapper.tag == "h2":
        return wrapper
    for child in wrapper:
        for heading in child.iter("h2"):
            return heading
    return None


def _entry(
    li: HtmlElement, section: str, section_id: int | None, position: int, absolute: _Absolute
) -> TopicLink | None:
    """One section entry: its first link is the main one; the one in span.also-lang is the
    other-language version. None for an entry without a link."""
    main: HtmlElement | None = None
    other_language_url: str | None = None
    organizations: list[str] = []
    badges: list[str] = []
    for element in li.iterdescendants():  # cheaper than a tag-filtered iterator here
        tag = element.tag
        if tag == "a":
            if main is None:
                main = element
        elif tag == "span":
            classes = element.get("class")
            if not classes:
                continue
            if "orgs" in classes:
                organizations = _organizations(text_of(element))
            elif "also-lang" in classes:
                other = next(element.iter("a"), None)
                href = other.get("href") if other is not None else None
                other_language_url = absolute(href) if href else None
        elif tag == "img" and "imgdesc" in (element.get("class") or ""):
            alt = collapse(element.get("alt")).lower()
            if alt:
                badges.append(BADGES.get(alt, alt))
    href = main.get("href") if main is not None else None
    if main is None or not href:
        return None
    return TopicLink(
        section=section,
        section_id=section_id,
        position=position,
        title=text_of(main),
        url=absolute(href),
        organizations=organizations,
        badges=badges,
        other_language_url=other_language_url,
        site_id=main.get("data-sid"),
    )


def _organizations(text: str) -> list[str]:
    """ " (A; B)" -> ["A", "B"]."""
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    return [name for name in (collapse(part) for part in text.split(";")) if name]


_INSTITUTE_NAMED = re.compile(r"\b(?:is the|es el|es la)\s+(?P<name>.+?)\.?$", re.IGNORECASE)
"""The institute named in plain text: "The primary NIH organization ... is the <name>"."""


def _institute(section: HtmlElement | None, absolute: _Absolute) -> Institute | None:
    """The sidebar's primary NIH institute: its link, or the name its sentence ends with."""
    if section is None:
        return None
    for link in section.iter("a"):
        name = text_of(link)
        if name:
            href = link.get("href")
            return Institute(name=name, url=absolute(href) if href else None)
    body = next(
        (div for div in section.iter("div") if "section-body" in (div.get("class") or "")), section
    )
    match = _INSTITUTE_NAMED.search(text_of(body))
    return Institute(name=match["name"], url=None) if match else None


def _image(section: HtmlElement | None, absolute: _Absolute) -> Image | None:
    if section is None:
        return None
    for img in section.iter("img"):
        src = img.get("src")
        if src:
            return Image(url=absolute(src), alt=collapse(img.get("alt")))
    return None


def _related(section: HtmlElement | None, absolute: _Absolute) -> list[RelatedTopic]:
    if section is None:
        return []
    related: list[RelatedTopic] = []
    for link in section.iter("a"):
        href = link.get("href")
        title = text_of(link)
        parent = link.getparent()
        if href and title and parent is not None and parent.tag == "li":
            related.append(RelatedTopic(title=title, url=absolute(href)))
    return related


def _counterpart(
    root: HtmlElement, head: _Head, language: Language, absolute: _Absolute
) -> str | None:
    """The same topic in the other language: the hreflang alternate, else the language
    toggle's link when it leads to a topic page in the other language (the older
    template's toggle may lead to the other language's home page instead)."""
    other = "es" if language == "en" else "en"
    if other in head.alternates:
        return head.alternates[other]
    for link in root.iter("a"):
        if link.get("id") == "mplus-lang-toggle":
            href = link.get("href")
            url = absolute(href) if href else None
            path = topic_path(url) if url else None
            return url if path is not None and path[1] == other else None
    return None
