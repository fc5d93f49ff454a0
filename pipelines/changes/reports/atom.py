"""The Atom 1.0 feed of changes (RFC 4287): for feed readers and watch services.

One entry per changed topic version of each comparison given (a `RecordedChanges`):

* id: `urn:uuid:` of a name-based UUID (uuid5) of the language, slug, change kind, the
  two points compared and the version (date and content hash) at each of them, so the
  same change always has the same id, whenever and however often the feed is made;
* title: "Updated: Asthma (en)"; link: the topic's page on medlineplus.gov;
* updated: when the archive recorded the later point (the run's end);
* category: the change kind (`added`, `removed`, `updated`, `same_date_edit`,
  `date_only`), for filtering;
* summary (plain text, one line per item): the kind, the points, the page's "last
  updated" dates, then one line per changed field (the word counts of a summary diff,
  the entries added, removed, moved or edited in links, trials and related topics...).

Entries come newest comparison first, then in the change set's order. The feed's own id
depends only on the language; its `updated` is the newest entry's (`last_checked` when
there is none), so an unchanged archive gives byte-identical feeds. The XML is built
with lxml (every text escaped by it; characters XML 1.0 cannot hold are dropped), never
by joining strings.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from lxml import etree

from pipelines.changes.detection import (
    ChangeSet,
    DateChange,
    EntryChange,
    ImageChange,
    InstituteChange,
    ListChange,
    SummaryChange,
    TextChange,
    TopicChange,
    VersionRef,
)
from pipelines.changes.reports.labels import (
    FIELD_LABELS,
    KIND_DESCRIPTIONS,
    KIND_LABELS,
    displayed_fields,
    language_label,
)

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
FEED_TITLE = "MedlinePlus health-topic changes"
GENERATOR = "medlineplus-archive"
SITE = "https://medlineplus.gov"
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, f"{SITE}/healthtopics.html")
"""The namespace of every feed and entry id (uuid5 names are "medlineplus-archive/...")."""
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordedChanges:
    """The changes between two points, and when the archive recorded the later one."""

    changes: ChangeSet
    recorded_at: datetime
    """The end of the run of the later point (timezone-aware): its entries' updated time."""


def render_atom(
    recorded: Sequence[RecordedChanges],
    *,
    language: str | None,
    subtitle: str,
    last_checked: datetime,
) -> str:
    """The Atom feed (UTF-8 XML text) of every change in `recorded`.

    `language`: the language compared (None: all), in the feed's id and title;
    `last_checked`: the feed's updated time when it has no entry (the archive's last run).
    """
    # None is the default namespace's prefix, which lxml takes and its stubs do not know.
    feed = etree.Element(_tag("feed"), nsmap={None: ATOM_NAMESPACE})  # type: ignore[dict-item]
    title = FEED_TITLE if language is None else f"{FEED_TITLE} ({language_label(language)})"
    _child(feed, "id", _urn("feed", language or "all"))
    _child(feed, "title", title)
    _child(feed, "subtitle", subtitle)
    index = "/spanish/healthtopics.html" if language == "es" else "/healthtopics.html"
    _child(feed, "link", rel="alternate", type="text/html", href=f"{SITE}{index}")
    author = _child(feed, "author")
    _child(author, "name", GENERATOR)
    _child(feed, "generator", GENERATOR)
    newest = max((item.recorded_at for item in recorded if item.changes.changes), default=None)
    _child(feed, "updated", _timestamp(newest or last_checked))
    for item in sorted(recorded, key=lambda item: item.recorded_at, reverse=True):
        for change in item.changes.changes:
            _entry(feed, item, change)
    text: str = etree.tostring(feed, encoding="unicode", pretty_print=True)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + text


def entry_id(changes: ChangeSet, change: TopicChange) -> str:
    """The entry's stable id: `urn:uuid:` of a uuid5 of what identifies the change."""
    return _urn(
        "entry",
        change.language,
        change.slug,
        change.kind,
        changes.from_point.name,
        changes.to_point.name,
        _version(change.before),
        _version(change.after),
    )


def _entry(feed: etree._Element, item: RecordedChanges, change: TopicChange) -> None:
    entry = _child(feed, "entry")
    _child(entry, "id", entry_id(item.changes, change))
    _child(entry, "title", f"{KIND_LABELS[change.kind]}: {change.title} ({change.language})")
    _child(entry, "link", rel="alternate", type="text/html", href=change.url)
    _child(entry, "updated", _timestamp(item.recorded_at))
    _child(entry, "category", term=change.kind, label=KIND_LABELS[change.kind])
    _child(entry, "summary", "\n".join(summary_lines(item.changes, change)))


def summary_lines(changes: ChangeSet, change: TopicChange) -> Iterator[str]:
    """What changed, as lines of plain text."""
    yield (
        f"{KIND_LABELS[change.kind]}: {KIND_DESCRIPTIONS[change.kind]} "
        f"({changes.from_point.label} → {changes.to_point.label})."
    )
    dates = [ref.last_updated.isoformat() for ref in (change.before, change.after) if ref]
    yield f"Last updated: {' → '.join(dict.fromkeys(dates))}"
    for name, detail in displayed_fields(change.fields):
        if name == "last_updated":
            continue  # said above
        yield f"{FIELD_LABELS[name]}: {_field(name, detail)}"


def _field(name: str, detail: Any) -> str:
    if isinstance(detail, TextChange) and name == "summary_html":
        return "changed"
    if isinstance(detail, TextChange):
        return f"{_quoted(detail.before)} → {_quoted(detail.after)}"
    if isinstance(detail, DateChange):
        return f"{_day(detail.before)} → {_day(detail.after)}"
    if isinstance(detail, InstituteChange):
        before, after = (part.name if part else None for part in (detail.before, detail.after))
        return f"{_quoted(before)} → {_quoted(after)}"
    if isinstance(detail, ImageChange):
        before, after = (part.url if part else None for part in (detail.before, detail.after))
        return f"{_quoted(before)} → {_quoted(after)}"
    if isinstance(detail, SummaryChange):
        return f"{detail.words_added} words added, {detail.words_removed} removed"
    if isinstance(detail, ListChange):
        groups = [("added", detail.added), ("removed", detail.removed), ("reordered", detail.moved)]
        return _groups(groups)
    if isinstance(detail, list):
        entries: list[EntryChange] = detail
        kinds = ("added", "removed", "moved", "edited")
        return _groups(
            [(kind, [entry.title for entry in entries if entry.change == kind]) for kind in kinds]
        )
    raise TypeError(f"no feed text for {type(detail).__name__}")


def _groups(groups: Sequence[tuple[str, Sequence[str]]]) -> str:
    """`added "A", "B"; removed "C"` for the non-empty groups."""
    return "; ".join(
        f"{verb} {', '.join(_quoted(value) for value in values)}"
        for verb, values in groups
        if values
    )


def _quoted(text: str | None) -> str:
    return "(none)" if text is None else f'"{text}"'


def _day(value: date | None) -> str:
    return "(none)" if value is None else value.isoformat()


def _version(ref: VersionRef | None) -> str:
    return "-" if ref is None else f"{ref.last_updated.isoformat()}/{ref.content_hash}"


def _urn(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, '/'.join([GENERATOR, *parts]))}"


def _timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, to the second: "2024-03-05T01:00:00Z"."""
    if moment.tzinfo is None:
        raise ValueError(f"a feed time must be timezone-aware, not {moment!r}")
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _tag(name: str) -> str:
    return f"{{{ATOM_NAMESPACE}}}{name}"


def _child(
    parent: etree._Element, name: str, text: str | None = None, **attributes: str
) -> etree._Element:
    element = etree.SubElement(
        parent, _tag(name), {key: _xml(value) for key, value in attributes.items()}
    )
    if text is not None:
        element.text = _xml(text)
    return element


def _xml(text: str) -> str:
    """`text` without the characters XML 1.0 cannot hold (control characters...)."""
    return _NOT_XML.sub("", text)
