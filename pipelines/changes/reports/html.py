"""The HTML change report: for people, in a browser or as an e-mail attachment.

ONE self-contained file: inline CSS, an inline SVG bar chart, no scripts, no images, no
fonts or anything else fetched (a Content-Security-Policy meta tag forbids it, so a
hostile page text could not load anything either). A summary of counts per kind with
the chart comes first, then one section per changed topic grouped by kind: its dates,
the summary's word diff with `<ins>`/`<del>` highlighted, link changes per section,
trials, related topics and the other changed fields. Dates are shown ISO and as people
write them ("2026-11-20 (20 November 2026)"). Every page-derived text is HTML-escaped,
and only http(s) URLs become links. Nothing of "now" is in the page, so the same change
set always renders the same bytes.

Each changed topic links to its live page and, when the caller wrote them, to the
archived copies of its versions before and after: files beside the report, linked by
relative URL (`archived`), never inlined, since an archived page is untrusted HTML.

The layout holds from a phone (400 px, no horizontal scroll) to a desktop: long URLs and
words wrap anywhere, the chart scales down, the field grid becomes one column.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from pipelines.archive.keys import VersionKey
from pipelines.changes.detection import (
    CHANGE_KINDS,
    ChangeKind,
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
    VersionRef,
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
    human_date,
    language_label,
    no_changes_line,
)

KIND_COLORS: dict[ChangeKind, str] = {
    "added": "#1a7f37",
    "removed": "#cf222e",
    "updated": "#0969da",
    "same_date_edit": "#8250df",
    "date_only": "#6e7781",
}

_HTTP_URL = re.compile(r"https?://", re.IGNORECASE)
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: #1f2328; background: #fff; margin: 0; }
main { max-width: 64rem; margin: 0 auto; padding: 1.5rem 2rem 3rem; overflow-wrap: anywhere; }
h1 { font-size: 1.75rem; margin: 0 0 .25rem; }
h2 { font-size: 1.35rem; margin: 2.25rem 0 .75rem; padding-bottom: .3rem;
  border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.1rem; margin: 0 0 .25rem; }
h4 { font-size: .95rem; margin: .5rem 0 .25rem; color: #59636e; }
a { color: #0969da; }
.points { color: #59636e; margin: 0 0 1rem; }
.overview { display: flex; flex-wrap: wrap; gap: 2rem; align-items: flex-start; }
.overview > * { max-width: 100%; }
.scroll { max-width: 100%; overflow-x: auto; }
table.counts { border-collapse: collapse; min-width: min(22rem, 100%); overflow-wrap: normal; }
table.counts th, table.counts td { padding: .35rem .75rem; border-bottom: 1px solid #d0d7de;
  text-align: left; }
table.counts td.count { text-align: right; font-variant-numeric: tabular-nums;
  font-weight: 600; }
table.counts td.meaning { color: #59636e; font-size: .9rem; }
table.counts tr.total th, table.counts tr.total td { border-top: 2px solid #1f2328;
  border-bottom: none; }
.swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px;
  margin-right: .5rem; vertical-align: -1px; }
figure.chart { margin: 0; }
figure.chart figcaption { color: #59636e; font-size: .85rem; }
svg.chart { max-width: 100%; height: auto; }
svg text { font: 13px system-ui, sans-serif; fill: #1f2328; }
nav.toc { margin-top: 1.5rem; }
nav.toc ol { columns: 2; padding-left: 1.25rem; }
article.topic { border: 1px solid #d0d7de; border-left: 6px solid var(--kind); border-radius: 6px;
  padding: .9rem 1.1rem; margin: 0 0 1rem; }
.badge { display: inline-block; font-size: .75rem; font-weight: 600; color: #fff;
  background: var(--kind); border-radius: 1rem; padding: 0 .55rem; vertical-align: 2px; }
.lang { font-size: .8rem; color: #59636e; border: 1px solid #d0d7de; border-radius: 3px;
  padding: 0 .3rem; vertical-align: 2px; }
.meta { color: #59636e; font-size: .9rem; margin: 0 0 .5rem; overflow-wrap: anywhere; }
dl.fields { margin: .5rem 0 0; display: grid; grid-template-columns: 11rem 1fr;
  gap: .4rem 1rem; }
dl.fields dt { font-weight: 600; }
dl.fields dd { margin: 0; min-width: 0; }
.diff { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
  padding: .6rem .8rem; margin: 0 0 .25rem; }
.diff.markup { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem;
  word-break: break-all; }
ins { background: #aceebb; color: #0a3622; text-decoration: none; border-radius: 3px;
  padding: 0 2px; box-shadow: inset 0 -2px 0 #1a7f37; }
del { background: #ffcecb; color: #6e011a; text-decoration: line-through; border-radius: 3px;
  padding: 0 2px; }
.words { color: #59636e; font-size: .85rem; margin: 0; }
ul.entries { margin: 0 0 .25rem; padding-left: 1.1rem; }
ul.entries li { margin: .15rem 0; }
.tag { display: inline-block; min-width: 4.2rem; font-size: .75rem; font-weight: 600;
  text-transform: uppercase; letter-spacing: .02em; }
.tag.added { color: #1a7f37; } .tag.removed { color: #cf222e; }
.tag.moved { color: #9a6700; } .tag.edited { color: #8250df; }
.orgs, .where { color: #59636e; font-size: .9rem; }
ul.edits { margin: .1rem 0 .2rem; padding-left: 1.2rem; font-size: .9rem; }
.none { color: #59636e; font-style: italic; }
.human { color: #59636e; }
time, .human { white-space: nowrap; }
.pages { font-size: .9rem; margin: 0 0 .5rem; }
footer { color: #59636e; font-size: .85rem; margin-top: 3rem; }
@media (max-width: 40rem) {
  main { padding: 1rem .75rem 2rem; }
  h1 { font-size: 1.4rem; }
  .overview { gap: 1rem; }
  nav.toc ol { columns: 1; }
  article.topic { padding: .75rem; }
  dl.fields { grid-template-columns: minmax(0, 1fr); gap: .2rem; }
  dl.fields dd { margin-bottom: .5rem; }
  table.counts th, table.counts td { padding: .3rem .4rem; }
}
"""


def _text(value: str) -> str:
    return html.escape(value, quote=True)


def _link(url: str | None, text: str | None = None) -> str:
    """An anchor for an http(s) URL; anything else (javascript:...) is shown as text."""
    if url is None:
        return '<span class="none">none</span>'
    label = _text(text if text is not None else url)
    if _HTTP_URL.match(url):
        return f'<a href="{_text(url)}">{label}</a>'
    return label


def _value(value: str | None) -> str:
    return '<span class="none">none</span>' if value is None else _text(value)


def _before_after(before: str, after: str) -> str:
    """Old and new value: markup already escaped."""
    return f"<del>{before}</del> → <ins>{after}</ins>"


def render_html(changes: ChangeSet, archived: Mapping[VersionKey, str] | None = None) -> str:
    """The report as one self-contained HTML document.

    `archived`: the relative URL of the archived copy of each version, for the versions
    whose copy the caller wrote beside the report; None when it wrote none (the report
    then says so once).
    """
    return "\n".join(_document(changes, archived)) + "\n"


def _date(day: date) -> str:
    """A date ISO and as people write it: "2026-11-20 (20 November 2026)"."""
    iso = day.isoformat()
    return f'<time datetime="{iso}">{iso}</time> <span class="human">({human_date(day)})</span>'


def _point(label: str, day: date | None) -> str:
    """A point of comparison as the header shows it, a date one with its human date."""
    shown = f"<strong>{_text(label)}</strong>"
    return shown if day is None else f'{shown} <span class="human">({human_date(day)})</span>'


def _document(changes: ChangeSet, archived: Mapping[VersionKey, str] | None) -> Iterator[str]:
    title = f"MedlinePlus changes: {changes.from_point.label} → {changes.to_point.label}"
    yield "<!DOCTYPE html>"
    yield '<html lang="en">'
    yield "<head>"
    yield '<meta charset="utf-8">'
    yield (
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
    )
    yield '<meta name="viewport" content="width=device-width, initial-scale=1">'
    yield f"<title>{_text(title)}</title>"
    yield f"<style>{_CSS}</style>"
    yield "</head>"
    yield "<body>"
    yield "<main>"
    yield "<h1>MedlinePlus health-topic changes</h1>"
    yield (
        f'<p class="points">From {_point(changes.from_point.label, changes.from_point.day)} '
        f"to {_point(changes.to_point.label, changes.to_point.day)} · "
        f"{_text(language_label(changes.language))} · {changes.topics_before} topics before, "
        f"{changes.topics_after} after</p>"
    )
    if archived is None and changes.changes:
        yield (
            '<p class="points" id="no-archived-copies">Links go to the live pages only: '
            "this report was written without archived copies of the pages (<code>changes "
            "--format html --out FILE</code> writes them beside the report).</p>"
        )
    yield from _summary(changes)
    yield from _cross_check(changes)
    for kind in CHANGE_KINDS:
        topics = [change for change in changes.changes if change.kind == kind]
        if not topics:
            continue
        yield f'<section class="kind" id="kind-{kind}" style="--kind: {KIND_COLORS[kind]}">'
        yield (
            f"<h2>{KIND_LABELS[kind]} <small>({len(topics)}: "
            f"{_text(KIND_DESCRIPTIONS[kind])})</small></h2>"
        )
        for change in topics:
            yield from _topic(change, archived)
        yield "</section>"
    yield (
        "<footer>Made by <code>medlineplus-archive changes</code> from the archive's "
        "committed runs. Summary diffs: <del>removed words</del> <ins>added words</ins>."
        "</footer>"
    )
    yield "</main>"
    yield "</body>"
    yield "</html>"


def _summary(changes: ChangeSet) -> Iterator[str]:
    counts = changes.counts()
    yield '<section id="summary">'
    yield "<h2>Summary</h2>"
    yield '<div class="overview">'
    yield '<div class="scroll">'
    yield '<table class="counts">'
    yield "<thead><tr><th>Change</th><th>Topics</th><th>Meaning</th></tr></thead>"
    yield "<tbody>"
    for kind in CHANGE_KINDS:
        yield (
            f'<tr data-kind="{kind}"><th scope="row"><span class="swatch" '
            f'style="background: {KIND_COLORS[kind]}"></span>{KIND_LABELS[kind]}</th>'
            f'<td class="count" data-kind="{kind}">{counts[kind]}</td>'
            f'<td class="meaning">{_text(KIND_DESCRIPTIONS[kind])}</td></tr>'
        )
    yield (
        f'<tr class="total"><th scope="row">Total</th>'
        f'<td class="count" data-kind="total">{len(changes.changes)}</td><td></td></tr>'
    )
    yield "</tbody>"
    yield "</table>"
    yield "</div>"
    yield '<figure class="chart">'
    yield _chart(counts)
    yield "<figcaption>Changed topics per kind</figcaption>"
    yield "</figure>"
    yield "</div>"
    if changes.changes:
        yield '<nav class="toc"><h3>Changed topics</h3><ol>'
        for change in changes.changes:
            yield (
                f'<li><a href="#{_anchor(change)}">{_text(change.title)}</a> '
                f'<span class="lang">{change.language}</span> '
                f'<span class="where">{KIND_LABELS[change.kind]}</span></li>'
            )
        yield "</ol></nav>"
    else:
        yield f'<p class="none">{_text(no_changes_line(changes))}.</p>'
    yield "</section>"


def _cross_check(changes: ChangeSet) -> Iterator[str]:
    """The runs' cross-check findings, when there are any."""
    if not changes.cross_check:
        return
    yield '<section id="cross-check">'
    yield "<h2>Cross-check</h2>"
    yield "<ul>"
    for finding in changes.cross_check:
        yield (
            f'<li data-kind="{finding.kind}">run <code>{_text(finding.run_id)}</code>: '
            f"{_text(finding_line(finding))}</li>"
        )
    yield "</ul>"
    yield "</section>"


def _chart(counts: dict[ChangeKind, int]) -> str:
    """A horizontal bar chart of `counts`, as inline SVG."""
    label_width, bar_width, row, bar = 130, 260, 30, 20
    height = row * len(CHANGE_KINDS) + 10
    width = label_width + bar_width + 50
    top = max(counts.values()) or 1
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="chart-title" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        '<title id="chart-title">Changed topics per kind</title>',
        f'<line x1="{label_width}" y1="4" x2="{label_width}" y2="{height - 4}" '
        'stroke="#8c959f" stroke-width="1"/>',
    ]
    for index, kind in enumerate(CHANGE_KINDS):
        y = 8 + index * row
        length = round(bar_width * counts[kind] / top, 1)
        parts.append(
            f'<g class="bar" data-kind="{kind}">'
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end">'
            f"{KIND_LABELS[kind]}</text>"
            f'<rect x="{label_width}" y="{y}" width="{length}" height="{bar}" rx="3" '
            f'fill="{KIND_COLORS[kind]}"/>'
            f'<text class="value" x="{label_width + length + 6}" y="{y + 15}">'
            f"{counts[kind]}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _anchor(change: TopicChange) -> str:
    return f"topic-{change.language}-{_UNSAFE_ID.sub('-', change.slug)}"


def _topic(change: TopicChange, archived: Mapping[VersionKey, str] | None) -> Iterator[str]:
    yield f'<article class="topic" id="{_anchor(change)}" lang="{change.language}">'
    yield (
        f"<h3>{_link(change.url, change.title)} "
        f'<span class="lang">{change.language}</span> '
        f'<span class="badge">{KIND_LABELS[change.kind]}</span></h3>'
    )
    versions = [
        f"{_date(version.last_updated)}, run {_text(version.run_id)}"
        for version in (change.before, change.after)
        if version is not None
    ]
    yield (
        f'<p class="meta"><code>{_text(change.slug)}</code> · last updated '
        f"{' → '.join(versions)}</p>"
    )
    yield _pages(change, archived)
    if change.kind in ("updated", "same_date_edit") and not change.changed_fields:
        yield '<p class="none">No field-level difference found (the content hash differs).</p>'
    if change.changed_fields:
        yield '<dl class="fields">'
        for name, detail in displayed_fields(change.fields):
            yield f'<dt class="field-{name}">{FIELD_LABELS[name]}</dt>'
            yield f'<dd class="field-{name}">{_field(name, detail)}</dd>'
        yield "</dl>"
    yield "</article>"


def _pages(change: TopicChange, archived: Mapping[VersionKey, str] | None) -> str:
    """Links to the archived copies of the versions before and after, and to the live page."""
    links = []
    sides: tuple[tuple[str, VersionRef | None], ...] = (
        ("before", change.before),
        ("after", change.after),
    )
    for side, version in sides:
        if version is None or archived is None:
            continue
        key = VersionKey(change.language, change.slug, version.last_updated, version.content_hash)
        href = archived.get(key)
        label = f"archived page {side} ({human_date(version.last_updated)})"
        if href is None:
            links.append(f'<span class="none" data-side="{side}">{label}: not kept</span>')
        else:
            links.append(
                f'<a class="archived" data-side="{side}" href="{_text(href)}" '
                f'rel="noopener noreferrer">{label}</a>'
            )
    if _HTTP_URL.match(change.url):
        links.append(f'<a class="live" href="{_text(change.url)}">live page</a>')
    return f'<p class="pages">{" · ".join(links)}</p>'


def _field(name: str, detail: Any) -> str:
    if isinstance(detail, TextChange) and name == "summary_html":
        segments = markup_diff(detail.before or "", detail.after or "")
        return f'<p class="diff markup">{_diff(segments)}</p>'
    if isinstance(detail, TextChange):
        if name.endswith("url"):
            return _before_after(_link(detail.before), _link(detail.after))
        return _before_after(_value(detail.before), _value(detail.after))
    if isinstance(detail, DateChange):
        return _before_after(
            _date(detail.before) if detail.before else _value(None),
            _date(detail.after) if detail.after else _value(None),
        )
    if isinstance(detail, InstituteChange):
        before = _link(detail.before.url, detail.before.name) if detail.before else _value(None)
        after = _link(detail.after.url, detail.after.name) if detail.after else _value(None)
        return _before_after(before, after)
    if isinstance(detail, ImageChange):
        before = (
            _link(detail.before.url, detail.before.alt or None) if detail.before else _value(None)
        )
        after = _link(detail.after.url, detail.after.alt or None) if detail.after else _value(None)
        return _before_after(before, after)
    if isinstance(detail, ListChange):
        items = [
            f'<li><span class="tag {tag}">{verb}</span> {_wrapped(tag, value)}</li>'
            for tag, verb, values in (
                ("added", "added", detail.added),
                ("removed", "removed", detail.removed),
                ("moved", "reordered", detail.moved),
            )
            for value in values
        ]
        return f'<ul class="entries">{"".join(items)}</ul>'
    if isinstance(detail, SummaryChange):
        return (
            f'<p class="diff summary-diff">{_diff(detail.segments)}</p>'
            f'<p class="words">{detail.words_added} words added, '
            f"{detail.words_removed} removed</p>"
        )
    if isinstance(detail, list):
        return "".join(_entries(detail))
    raise TypeError(f"no HTML for {type(detail).__name__}")


def _wrapped(tag: str, value: str) -> str:
    element = {"added": "ins", "removed": "del"}.get(tag)
    return f"<{element}>{_text(value)}</{element}>" if element else _text(value)


def _entries(entries: list[EntryChange]) -> Iterator[str]:
    for section, group in by_section(entries):
        if section is not None:
            yield f"<h4>{_text(section)}</h4>"
        yield '<ul class="entries">'
        for entry in group:
            yield f'<li class="entry entry-{entry.change}">{_entry(entry)}</li>'
        yield "</ul>"


def _entry(entry: EntryChange) -> str:
    text = f'<span class="tag {entry.change}">{entry.change}</span> '
    link = _link(entry.url, entry.title)
    text += f"<del>{link}</del>" if entry.change == "removed" else link
    if entry.organizations:
        text += f' <span class="orgs">({_text("; ".join(entry.organizations))})</span>'
    if entry.change == "moved":
        text += f' <span class="where">{_text(entry_move(entry))}</span>'
    if entry.edits:
        edits = "".join(
            f"<li>{edit.attribute}: {_before_after(_value(edit.before), _value(edit.after))}</li>"
            for edit in entry.edits
        )
        text += f'<ul class="edits">{edits}</ul>'
    return text


def _diff(segments: list[DiffSegment]) -> str:
    """A word diff as HTML: <ins>/<del> per line of each changed run, <br> for breaks."""
    parts = []
    for segment in segments:
        body = segment.text.lstrip(" ")
        leading = segment.text[: len(segment.text) - len(body)]
        lines = body.split("\n")
        if segment.op == "equal":
            marked = [_text(line) for line in lines]
        else:
            tag = "ins" if segment.op == "insert" else "del"
            marked = [f"<{tag}>{_text(line)}</{tag}>" if line else "" for line in lines]
        parts.append(leading + "<br>".join(marked))
    return "".join(parts)
