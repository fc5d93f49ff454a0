"""The Markdown change report: for terminals and e-mail.

Plain enough to read unrendered: a count table, then one `###` section per changed topic
with a bullet per changed field. Summary diffs use git's word-diff markers,
`[-removed words-]{+added words+}`, in a quote block, long unchanged stretches shortened
to a few words of context. Page-derived text is backslash-escaped wherever Markdown
would read it as markup, so a title can neither break the layout nor inject HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pipelines.changes.detection import (
    CHANGE_KINDS,
    ChangedField,
    ChangeSet,
    DateChange,
    DiffSegment,
    EntryChange,
    ImageChange,
    InstituteChange,
    ListChange,
    SummaryChange,
    TextChange,
    TopicChange,
    markup_diff,
)
from pipelines.changes.reports.labels import (
    FIELD_LABELS,
    KIND_DESCRIPTIONS,
    KIND_LABELS,
    by_section,
    displayed_fields,
    entry_move,
    finding_line,
    language_label,
    no_changes_line,
)

CONTEXT_WORDS = 8
"""Unchanged words kept on each side of a change in a summary diff."""

_SPECIAL = re.compile(r"([\\`*_\[\]{}<>|~])")
_URL = re.compile(r"https?://[^\s<>]+\Z", re.IGNORECASE)
_TOKENS = re.compile(r"\s|[^\s]+")


def escape(text: str) -> str:
    """`text` with every character Markdown could read as markup backslash-escaped."""
    return _SPECIAL.sub(r"\\\1", text)


def _quoted(text: str | None) -> str:
    return "(none)" if text is None else f'"{escape(text)}"'


def _url(url: str | None) -> str:
    if url is None:
        return "(none)"
    return f"<{url}>" if _URL.match(url) else escape(url)


def render_markdown(changes: ChangeSet) -> str:
    """The report as Markdown text, ending with a newline."""
    lines: list[str] = []
    for line in _lines(changes):
        if line or (lines and lines[-1]):  # one blank line between blocks, never two
            lines.append(line)
    return "\n".join(lines).rstrip("\n") + "\n"


def _lines(changes: ChangeSet) -> Iterator[str]:
    counts = changes.counts()
    yield "# MedlinePlus health-topic changes"
    yield ""
    yield (
        f"From **{escape(changes.from_point.label)}** to **{escape(changes.to_point.label)}**, "
        f"{language_label(changes.language)}: {changes.topics_before} topics before, "
        f"{changes.topics_after} after."
    )
    yield ""
    yield "| Change | Topics | Meaning |"
    yield "|---|--:|---|"
    for kind in CHANGE_KINDS:
        yield f"| {KIND_LABELS[kind]} | {counts[kind]} | {KIND_DESCRIPTIONS[kind]} |"
    yield f"| **Total** | **{len(changes.changes)}** | |"
    yield from _cross_check(changes)
    if not changes.changes:
        yield ""
        yield f"{escape(no_changes_line(changes))}."
        return
    yield ""
    yield "Summary diffs mark removed words `[-like this-]` and added words `{+like this+}`."
    for kind in CHANGE_KINDS:
        topics = [change for change in changes.changes if change.kind == kind]
        if not topics:
            continue
        yield ""
        yield f"## {KIND_LABELS[kind]} ({len(topics)})"
        for change in topics:
            yield ""
            yield from _topic(change)


def _cross_check(changes: ChangeSet) -> Iterator[str]:
    """The runs' cross-check findings, when there are any."""
    if not changes.cross_check:
        return
    yield ""
    yield "## Cross-check"
    yield ""
    for finding in changes.cross_check:
        yield f"- run {escape(finding.run_id)}: {escape(finding_line(finding))}"


def _topic(change: TopicChange) -> Iterator[str]:
    yield f"### {escape(change.title)} ({change.language}: {escape(change.slug)})"
    yield ""
    yield _url(change.url)
    yield ""
    if change.kind == "added" and change.after is not None:
        yield f"- Last updated {change.after.last_updated.isoformat()}"
    elif change.kind == "removed" and change.before is not None:
        yield f"- Last updated {change.before.last_updated.isoformat()} (last version seen)"
    elif not change.changed_fields:
        yield "- No field-level difference found (the content hash differs)."
    for name, detail in displayed_fields(change.fields):
        yield from _field(name, detail)


def _field(name: ChangedField, detail: Any) -> Iterator[str]:
    label = FIELD_LABELS[name]
    if isinstance(detail, TextChange) and name == "summary_html":
        yield f"- {label}:"
        yield ""
        yield from _diff_block(markup_diff(detail.before or "", detail.after or ""))
        yield ""
    elif isinstance(detail, TextChange):
        yield f"- {label}: {_quoted(detail.before)} → {_quoted(detail.after)}"
    elif isinstance(detail, DateChange):
        before = detail.before.isoformat() if detail.before else "(none)"
        after = detail.after.isoformat() if detail.after else "(none)"
        yield f"- {label}: {before} → {after}"
    elif isinstance(detail, InstituteChange):
        before = _quoted(detail.before.name) if detail.before else "(none)"
        after = _quoted(detail.after.name) if detail.after else "(none)"
        yield f"- {label}: {before} → {after}"
    elif isinstance(detail, ImageChange):
        before = _url(detail.before.url) if detail.before else "(none)"
        after = _url(detail.after.url) if detail.after else "(none)"
        yield f"- {label}: {before} → {after}"
    elif isinstance(detail, ListChange):
        parts = [
            f"{verb} {', '.join(_quoted(value) for value in values)}"
            for verb, values in (
                ("added", detail.added),
                ("removed", detail.removed),
                ("reordered", detail.moved),
            )
            if values
        ]
        yield f"- {label}: {'; '.join(parts)}"
    elif isinstance(detail, SummaryChange):
        yield f"- {label}: {detail.words_added} words added, {detail.words_removed} removed"
        yield ""
        yield from _diff_block(detail.segments)
        yield ""
    elif isinstance(detail, list):
        for section, entries in by_section(detail):
            heading = f"{label}, {escape(section)}" if section is not None else label
            yield f"- {heading}:"
            for entry in entries:
                yield f"  - {_entry(entry)}"


def _entry(entry: EntryChange) -> str:
    text = f"{entry.change}"
    if entry.change == "moved":
        text += f" {escape(entry_move(entry))}"
    text += f": {escape(entry.title)} {_url(entry.url)}"
    if entry.organizations:
        text += f" ({escape('; '.join(entry.organizations))})"
    if entry.edits:
        text += "; " + "; ".join(
            f"{edit.attribute} {_quoted(edit.before)} → {_quoted(edit.after)}"
            for edit in entry.edits
        )
    return text


def _diff_block(segments: list[DiffSegment]) -> Iterator[str]:
    """The diff as a quote block, indented under its bullet."""
    text = "".join(_diff_text(segments))
    for line in text.split("\n"):
        yield f"  > {line}".rstrip()


def _diff_text(segments: list[DiffSegment]) -> Iterator[str]:
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment.op == "equal":
            yield escape(_shortened(segment.text, keep_start=index != 0, keep_end=index != last))
            continue
        marks = ("[-", "-]") if segment.op == "delete" else ("{+", "+}")
        # The separating space stays outside the markers; each line is marked on its own.
        leading = segment.text[: len(segment.text) - len(segment.text.lstrip(" "))]
        lines = segment.text[len(leading) :].split("\n")
        yield leading + "\n".join(
            f"{marks[0]}{escape(line)}{marks[1]}" if line else "" for line in lines
        )


def _shortened(text: str, *, keep_start: bool, keep_end: bool) -> str:
    """`text` with its middle replaced by "…" when long: CONTEXT_WORDS words kept at its
    start when a change precedes it (`keep_start`), at its end when one follows."""
    tokens = _TOKENS.findall(text)
    words = [index for index, token in enumerate(tokens) if not token.isspace()]
    kept = CONTEXT_WORDS * (keep_start + keep_end)
    if len(words) <= kept + 2:
        return text
    start = "".join(tokens[: words[CONTEXT_WORDS - 1] + 1]) if keep_start else ""
    end = "".join(tokens[words[-CONTEXT_WORDS] :]) if keep_end else ""
    if start and end:
        return f"{start} … {end}"
    return f"{start} …" if start else f"… {end}"
