"""Words and ordering shared by the Markdown and HTML change reports."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from pipelines.changes.detection import (
    CHANGED_FIELDS,
    ChangedField,
    ChangeKind,
    ChangeSet,
    CrossCheckFinding,
    EntryChange,
    FieldChanges,
)

KIND_LABELS: dict[ChangeKind, str] = {
    "added": "Added",
    "removed": "Removed",
    "updated": "Updated",
    "same_date_edit": "Same-date edit",
    "date_only": "Date only",
}
KIND_DESCRIPTIONS: dict[ChangeKind, str] = {
    "added": "new topics",
    "removed": "topics no longer published",
    "updated": "date bumped and content changed",
    "same_date_edit": "content changed, date not bumped",
    "date_only": "date bumped, content identical",
}
FIELD_LABELS: dict[ChangedField, str] = {
    "title": "Title",
    "url": "Page URL",
    "also_called": "Also called",
    "other_names": "Other names",
    "meta_description": "Meta description",
    "summary": "Summary",
    "summary_html": "Summary markup (text unchanged)",
    "summary_attribution": "Summary attribution",
    "institute": "Primary NIH institute",
    "image": "Image",
    "mesh_headings": "MeSH headings",
    "groups": "Health-topic groups",
    "counterpart_url": "Other-language page",
    "related_topics": "Related topics",
    "links": "Links",
    "clinical_trials": "Clinical trials",
    "last_updated": "Last updated",
    "last_reviewed": "Last reviewed",
    "date_created": "Created",
}
_DATES: tuple[ChangedField, ...] = ("last_updated", "last_reviewed", "date_created")
DISPLAY_ORDER: tuple[ChangedField, ...] = (
    *_DATES,
    *(name for name in CHANGED_FIELDS if name not in _DATES),
)
"""Fields in the order reports show them: the dates first, then `CHANGED_FIELDS` order."""
LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
"""Month names for `human_date`, in English whatever the locale (reports are in English)."""


def human_date(day: date) -> str:
    """`day` as people write it: "20 November 2026"."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def displayed_fields(fields: FieldChanges) -> Iterator[tuple[ChangedField, Any]]:
    """(field, detail) for every changed field, in `DISPLAY_ORDER`."""
    for name in DISPLAY_ORDER:
        value = getattr(fields, name)
        if value is not None:
            yield name, value


def by_section(entries: Sequence[EntryChange]) -> list[tuple[str | None, list[EntryChange]]]:
    """Entries grouped by section, sections in order of first appearance."""
    groups: dict[str | None, list[EntryChange]] = {}
    for entry in entries:
        groups.setdefault(entry.section, []).append(entry)
    return list(groups.items())


def entry_move(entry: EntryChange) -> str:
    """Where a moved entry went, 1-based: "from Start Here #1 to #2" or "#3 → #1"."""
    old = "?" if entry.position_before is None else str(entry.position_before + 1)
    new = "?" if entry.position_after is None else str(entry.position_after + 1)
    if entry.section_before is not None and entry.section_before != entry.section:
        return f"from {entry.section_before} #{old} to #{new}"
    return f"#{old} → #{new}"


def language_label(language: str | None) -> str:
    return "all languages" if language is None else LANGUAGE_NAMES.get(language, language)


def no_changes_line(changes: ChangeSet) -> str:
    """What an empty report says: "No changes between RUN and RUN" (run ids, dates or
    "latest"; the language too when only one was compared)."""
    line = f"No changes between {changes.from_point.name} and {changes.to_point.name}"
    if changes.language is not None:
        line += f" ({language_label(changes.language)} topics)"
    return line


def finding_line(finding: CrossCheckFinding) -> str:
    """A cross-check finding as reports show it (run id aside): a note as recorded, a
    hidden change as "page change not in the XML dump: en/slug: section, ..."."""
    if finding.kind == "hidden_change":
        return f"page change not in the XML dump: {finding.text}"
    return finding.text
