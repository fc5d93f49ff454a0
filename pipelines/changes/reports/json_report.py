"""The JSON change report: for machines. Its JSON Schema is `change-report.schema.json`
beside this module (`report_schema()` loads it); this docstring says the same in words.

One object, keys in this order, UTF-8, dates as "YYYY-MM-DD", nothing of "now" in it (the
same archive and points always give the same bytes):

* format: "medlineplus-archive/change-report"; format_version: 1 (bumped on any
  incompatible change);
* from, to: the two points compared: {"kind": "run" | "date" | "latest", "run_id":
  str | null, "date": "YYYY-MM-DD" | null};
* language: "en", "es", or null for all languages;
* topics: {"before": int, "after": int}: topics live at each point;
* counts: {"added", "removed", "updated", "same_date_edit", "date_only", "total"}: ints;
* changes: one object per changed topic, ordered by kind (in the order above), language,
  slug:

  * language, slug, kind, title (at `to`, at `from` when removed), url (the canonical
    page URL, likewise);
  * before, after: {"last_updated", "content_hash", "run_id"} of the version at each
    point, null on the side where the topic is absent;
  * changed_fields: the keys of `fields`, in this order: title, url, also_called,
    other_names, meta_description, summary, summary_html, summary_attribution,
    institute, image, mesh_headings, groups, counterpart_url, related_topics, links,
    clinical_trials, last_updated, last_reviewed, date_created (empty for added and
    removed topics, only dates for date_only);
  * fields: one key per changed field:

    * title, url, meta_description, summary_html (a markup-only change: the text is the
      same), summary_attribution, counterpart_url: {"before": str|null, "after": str|null};
    * last_updated, last_reviewed, date_created: {"before": date|null, "after": date|null};
    * institute: {"before": {"name", "url"}|null, "after": ...}; image: {"before":
      {"url", "alt"}|null, "after": ...};
    * also_called, other_names, mesh_headings, groups: {"added": [str], "removed":
      [str], "moved": [str]};
    * summary: {"segments": [{"op": "equal"|"insert"|"delete", "text": str}],
      "words_added": int, "words_removed": int}: the word diff of the summary text; a
      segment's text starts with the space separating it from the previous segment in
      display order, so concatenating every segment's text gives the display text,
      line breaks ("\\n") included;
    * links, clinical_trials, related_topics: a list of entry changes in page order:
      {"change": "added"|"removed"|"moved"|"edited", "title", "url" (as published; the
      old ones for a removed entry), "section" (links: the section it is in, or was in
      when removed; null otherwise), "section_before" (links: its section at `from`,
      null when added), "position_before", "position_after" (0-based, in the section for
      links; null on the side where it is absent), "organizations": [str], "edits":
      [{"attribute": "title"|"url"|"organizations"|"badges"|"other_language_url"|
      "site_id"|"nih", "before": str|null, "after": str|null}] (lists joined with "; "
      or ", ", nih as "yes"/"no"; a moved entry may carry edits too)}.

* cross_check: the cross-check findings of the runs in the compared range
  (`pipelines.changes.detection.CrossCheckFinding`), always present, [] when none: {"run_id",
  "kind": "note"|"hidden_change", "text"}. Reports written before this key existed lack
  it; the schema allows that.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from crawler.parsing.items import to_jsonable
from pipelines.changes.detection import CHANGED_FIELDS, ChangeSet, Point, TopicChange

REPORT_FORMAT = "medlineplus-archive/change-report"
REPORT_FORMAT_VERSION = 1
SCHEMA_FILE = "change-report.schema.json"


def point_json(point: Point) -> dict[str, Any]:
    """A point as JSON: {"kind", "run_id", "date"}."""
    return {
        "kind": point.kind,
        "run_id": point.run_id,
        "date": point.day.isoformat() if point.day is not None else None,
    }


def topic_json(change: TopicChange) -> dict[str, Any]:
    """One changed topic as JSON; `fields` holds only the changed fields."""
    return {
        "language": change.language,
        "slug": change.slug,
        "kind": change.kind,
        "title": change.title,
        "url": change.url,
        "before": to_jsonable(change.before),
        "after": to_jsonable(change.after),
        "changed_fields": list(change.changed_fields),
        "fields": {
            name: to_jsonable(getattr(change.fields, name))
            for name in CHANGED_FIELDS
            if getattr(change.fields, name) is not None
        },
    }


def report_json(changes: ChangeSet) -> dict[str, Any]:
    """The whole report as plain JSON types (see the module docstring)."""
    counts = {str(kind): count for kind, count in changes.counts().items()}
    counts["total"] = len(changes.changes)
    return {
        "format": REPORT_FORMAT,
        "format_version": REPORT_FORMAT_VERSION,
        "from": point_json(changes.from_point),
        "to": point_json(changes.to_point),
        "language": changes.language,
        "topics": {"before": changes.topics_before, "after": changes.topics_after},
        "counts": counts,
        "changes": [topic_json(change) for change in changes.changes],
        "cross_check": [to_jsonable(finding) for finding in changes.cross_check],
    }


def render_json(changes: ChangeSet) -> str:
    """The report as indented JSON text, ending with a newline."""
    return json.dumps(report_json(changes), ensure_ascii=False, indent=2) + "\n"


@cache
def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the report."""
    text = (
        resources.files(__package__ or "pipelines.changes.reports")
        .joinpath(SCHEMA_FILE)
        .read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema
