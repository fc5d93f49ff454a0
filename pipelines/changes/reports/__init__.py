"""Change reports: one `ChangeSet` rendered as Markdown, HTML or JSON.

`render(changes, "md" | "html" | "json")` returns the report text. Every format is
deterministic (no time of rendering in it; the change set's order is kept), so reports
of the same archive and points are byte-identical and can be kept as golden files.
The Atom feed of changes (`pipelines.changes.reports.atom`) is rendered apart: it also needs when
each comparison was recorded, and takes several comparisons (`changes --format atom`,
`feed`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from pipelines.changes.detection import ChangeSet
from pipelines.changes.reports.html import render_html
from pipelines.changes.reports.json_report import render_json
from pipelines.changes.reports.markdown import render_markdown

ReportFormat = Literal["md", "html", "json"]
"""md: for terminals and e-mail; html: for people (one self-contained file); json: for
machines (see `pipelines.changes.reports.json_report` for its schema)."""
REPORT_FORMATS: tuple[ReportFormat, ...] = get_args(ReportFormat)

_RENDERERS: dict[ReportFormat, Callable[[ChangeSet], str]] = {
    "md": render_markdown,
    "html": render_html,
    "json": render_json,
}


def render(changes: ChangeSet, report_format: ReportFormat) -> str:
    """The report of `changes` in `report_format`."""
    return _RENDERERS[report_format](changes)


__all__ = ["REPORT_FORMATS", "ReportFormat", "render"]
