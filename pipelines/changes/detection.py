"""Change detection: what changed in the health topics between two points of the archive.

A point is a committed run id (transaction time: what the archive held right after that
run), a date (valid time: each topic's newest version dated on or before it) or None
(the latest state), exactly as `Archive.topics(as_of=...)` reads them. `compare(archive,
a, b)` takes the topics live at `a` and at `b` and classifies every topic whose version
differs (DESIGN.md section 4):

* added: live at `b`, not at `a`;
* removed: live at `a`, not at `b`;
* updated: the page's `last_updated` date changed and its content hash changed;
* same_date_edit: the content hash changed but the date did not;
* date_only: the date changed but the content hash did not.

"Content" is the parser's `content_hash`: journal articles (PubMed's volatile feed) and
the page's own dates are not part of it, so a change of journal articles alone is no
change at all, and a changed `last_reviewed` only shows as date detail.

Each change of a topic present at both points carries field-level detail
(`FieldChanges`): old and new values of scalar fields (title, institute...), a word-level
diff of the summary text, and for lists entries added, removed, moved and edited. List
entries are matched by a key: link, clinical-trial and related-topic entries by their
canonical URL (w3lib, for comparison only: the published URL is what is reported),
string lists (also called, MeSH headings...) by the string itself; an entry repeated on
a page is matched by occurrence. A matched link in another section, or out of order
relative to the other matched entries of its section (the fewest entries that explain
the new order, by difflib), is "moved"; a matched entry whose attributes differ
(title, organisations, badges...) is "edited" (a moved entry carries its edits too).
Content detail is computed for updated and same_date_edit only: a date_only change has
the same content by definition, so only its dates are compared.

Everything is computed on whole tables: merges on keys for classification and entry
matching, vectorised comparisons for fields; Python loops touch only changed topics
(the summary's word diff, the order of reordered sections, building the result).

A ChangeSet also carries the cross-check findings (`CrossCheckFinding`) of the runs in
the compared range, as the incremental plan recorded them in each run's `notes` and
`hidden_changes` (`pipelines.core.records.RunRecord`): the runs after point `a` up to and
including point `b`. A run point includes that run; a date point the runs started by
the end of that day (UTC); "latest" every committed run. When `b` is not after `a` the
range is empty. Findings are not filtered by language, and old runs (written before
these fields existed) have none.

`ChangeSet.to_frame()` (and `Archive.changes(a, b)`) gives the result as a DataFrame
with ONE ROW PER CHANGED TOPIC: `language, slug, kind, title, url`, the version at each
point (`before_last_updated, before_content_hash, before_run_id`, `after_...`, null for
an added or removed topic's missing side), `changed_fields` (list of `ChangedField`,
in that order), then one `diff_<field>` column per `ChangedField` holding that field's
detail (structs and lists of structs, null when the field did not change). The JSON
report (`pipelines.changes.reports.json_report`) holds the same rows, field by field.

Never imports scrapy, so a notebook can use it without Twisted.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from w3lib.url import canonicalize_url

from crawler.parsing.items import LANGUAGES, Image, Institute, Language
from pipelines.archive.as_of import AsOf, DateCut, RunCut, resolve_as_of
from pipelines.archive.load import ArchiveReader
from pipelines.archive.versions import day_end
from pipelines.core.schema import TOPIC_KEY, VERSION_KEY, arrow_type

# --- vocabularies ---------------------------------------------------------------------

ChangeKind = Literal["added", "removed", "updated", "same_date_edit", "date_only"]
"""How a topic differs between two points; see the module docstring."""
CHANGE_KINDS: tuple[ChangeKind, ...] = get_args(ChangeKind)
CONTENT_CHANGE_KINDS: tuple[ChangeKind, ...] = ("updated", "same_date_edit")
"""Kinds whose content (hash) changed: the ones that get content detail."""

ChangedField = Literal[
    "title",
    "url",
    "also_called",
    "other_names",
    "meta_description",
    "summary",
    "summary_html",
    "summary_attribution",
    "institute",
    "image",
    "mesh_headings",
    "groups",
    "counterpart_url",
    "related_topics",
    "links",
    "clinical_trials",
    "last_updated",
    "last_reviewed",
    "date_created",
]
"""A field whose change is reported, in report order. "summary" is the word diff of the
summary text; "summary_html" a change of the summary's markup alone (text unchanged);
"institute" the primary NIH institute; the last three are the page's own dates."""
CHANGED_FIELDS: tuple[ChangedField, ...] = get_args(ChangedField)

EntryChangeKind = Literal["added", "removed", "moved", "edited"]
"""What happened to one entry of a list (a link, a trial, a related topic)."""
ENTRY_CHANGE_KINDS: tuple[EntryChangeKind, ...] = get_args(EntryChangeKind)

EntryAttribute = Literal[
    "title", "url", "organizations", "badges", "other_language_url", "site_id", "nih"
]
"""An attribute of a list entry that an "edited" change reports."""
ENTRY_ATTRIBUTES: tuple[EntryAttribute, ...] = get_args(EntryAttribute)

DiffOp = Literal["equal", "insert", "delete"]
"""A word-diff segment: words in both texts, only in the new one, only in the old one."""

PointKind = Literal["run", "date", "latest"]
"""A point of comparison: a committed run, a date (valid time), or the latest state."""


FindingKind = Literal["note", "hidden_change"]
"""A cross-check finding: a run's note (topics in the XML dump and not in the archive or
the index, or the reverse), or a page change the XML dump did not show."""
FINDING_KINDS: tuple[FindingKind, ...] = get_args(FindingKind)


# --- results --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Point:
    """One side of a comparison."""

    kind: PointKind
    """"run", "date" or "latest"."""
    run_id: str | None = None
    """The run, for kind "run"."""
    day: date | None = None
    """The date, for kind "date" (reported as "date" in JSON)."""

    @property
    def as_of(self) -> AsOf:
        """The `as_of` argument of `Archive.topics` for this point."""
        if self.kind == "run":
            return self.run_id
        if self.kind == "date":
            return self.day
        return None

    @property
    def name(self) -> str:
        """The point as the command line takes it: a run id, a date or "latest"."""
        if self.kind == "run" and self.run_id is not None:
            return self.run_id
        if self.kind == "date" and self.day is not None:
            return self.day.isoformat()
        return "latest"

    @property
    def label(self) -> str:
        """How reports name the point: "run <id>", "as of 2024-03-01", "latest"."""
        if self.kind == "run":
            return f"run {self.run_id}"
        if self.kind == "date" and self.day is not None:
            return f"as of {self.day.isoformat()}"
        return "latest"


@dataclass(frozen=True, kw_only=True, slots=True)
class VersionRef:
    """The version of a topic at one point."""

    last_updated: date
    """The page's own date."""
    content_hash: str
    """Its content hash."""
    run_id: str
    """The run that stored the version."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TextChange:
    """A text field's old and new value (None: absent)."""

    before: str | None
    after: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class DateChange:
    """A date field's old and new value (None: absent)."""

    before: date | None
    after: date | None


@dataclass(frozen=True, kw_only=True, slots=True)
class InstituteChange:
    """The primary NIH institute, before and after (None: none named)."""

    before: Institute | None
    after: Institute | None


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageChange:
    """The sidebar image, before and after (None: no image)."""

    before: Image | None
    after: Image | None


@dataclass(frozen=True, kw_only=True, slots=True)
class ListChange:
    """A list of strings (also called, other names, MeSH headings, groups)."""

    added: list[str] = field(default_factory=list)
    """Strings only in the new list, in its order."""
    removed: list[str] = field(default_factory=list)
    """Strings only in the old list, in its order."""
    moved: list[str] = field(default_factory=list)
    """Strings in both lists whose relative order changed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class DiffSegment:
    """A run of words of a word diff."""

    op: DiffOp
    """"equal" (in both texts), "insert" (new text only) or "delete" (old text only)."""
    text: str
    """The words, single-spaced, line breaks kept as "\\n". It starts with a space when
    a word precedes it in a text it belongs to, so the segments without inserts rebuild
    the old text and those without deletes the new one (whitespace normalised)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SummaryChange:
    """A word-level diff of the summary text."""

    segments: list[DiffSegment]
    """The whole text as equal/insert/delete runs, in order (a replacement is a delete
    followed by an insert)."""
    words_added: int
    """Words inserted."""
    words_removed: int
    """Words deleted."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AttributeEdit:
    """One changed attribute of a list entry; lists shown joined ("; " or ", ")."""

    attribute: EntryAttribute
    before: str | None
    after: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class EntryChange:
    """What happened to one entry of links, clinical trials or related topics."""

    change: EntryChangeKind
    """added, removed, moved (possibly edited too) or edited (in place)."""
    title: str
    """The entry's title: the new one, the old one for a removed entry."""
    url: str
    """Its URL as published: the new one, the old one for a removed entry."""
    section: str | None
    """Links: the section it is in (was in, when removed); None for trials and related
    topics."""
    section_before: str | None
    """Links: its section at the first point; None when added (and for non-links)."""
    position_before: int | None
    """0-based position (in its section for links) at the first point; None when added."""
    position_after: int | None
    """0-based position at the second point; None when removed."""
    organizations: list[str] = field(default_factory=list)
    """Publishing organisations (new, or old when removed); empty for related topics."""
    edits: list[AttributeEdit] = field(default_factory=list)
    """Changed attributes of a matched entry; empty for added and removed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FieldChanges:
    """Field-level detail of one topic's change: one attribute per `ChangedField`,
    None when that field did not change."""

    title: TextChange | None = None
    url: TextChange | None = None
    also_called: ListChange | None = None
    other_names: ListChange | None = None
    meta_description: TextChange | None = None
    summary: SummaryChange | None = None
    summary_html: TextChange | None = None
    summary_attribution: TextChange | None = None
    institute: InstituteChange | None = None
    image: ImageChange | None = None
    mesh_headings: ListChange | None = None
    groups: ListChange | None = None
    counterpart_url: TextChange | None = None
    related_topics: list[EntryChange] | None = None
    links: list[EntryChange] | None = None
    clinical_trials: list[EntryChange] | None = None
    last_updated: DateChange | None = None
    last_reviewed: DateChange | None = None
    date_created: DateChange | None = None

    def changed(self) -> list[ChangedField]:
        """The fields that changed, in `CHANGED_FIELDS` order."""
        return [name for name in CHANGED_FIELDS if getattr(self, name) is not None]


@dataclass(frozen=True, kw_only=True, slots=True)
class TopicChange:
    """One changed topic."""

    language: Language
    slug: str
    kind: ChangeKind
    title: str
    """The topic's title at the second point (at the first, when removed)."""
    url: str
    """Its canonical page URL at the second point (at the first, when removed)."""
    before: VersionRef | None
    """Its version at the first point; None when added."""
    after: VersionRef | None
    """Its version at the second point; None when removed."""
    changed_fields: list[ChangedField]
    """The fields with detail in `fields`, in `CHANGED_FIELDS` order (empty for added and
    removed topics)."""
    fields: FieldChanges
    """Field-level detail."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CrossCheckFinding:
    """One cross-check line of a run in the compared range."""

    run_id: str
    """The run that recorded it."""
    kind: FindingKind
    """"note" or "hidden_change"."""
    text: str
    """The line as the run recorded it."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ChangeSet:
    """Every changed topic between two points, ordered by kind (`CHANGE_KINDS` order),
    then language and slug."""

    from_point: Point
    to_point: Point
    language: Language | None
    """The language compared; None for all."""
    topics_before: int
    """Topics live at the first point (of `language`)."""
    topics_after: int
    """Topics live at the second point."""
    changes: tuple[TopicChange, ...]
    cross_check: tuple[CrossCheckFinding, ...] = ()
    """Cross-check findings of the runs in the compared range, oldest run first, each
    run's notes before its hidden changes (see the module docstring)."""

    def counts(self) -> dict[ChangeKind, int]:
        """Changed topics per kind, every kind present (zeros included)."""
        counts = dict.fromkeys(CHANGE_KINDS, 0)
        for change in self.changes:
            counts[change.kind] += 1
        return counts

    def to_frame(self) -> pd.DataFrame:
        """One row per changed topic (see the module docstring), pyarrow dtypes."""
        frame: pd.DataFrame = self.to_table().to_pandas(types_mapper=pd.ArrowDtype)
        return frame

    def to_table(self) -> pa.Table:
        """`to_frame`'s rows as an Arrow table (`CHANGES_FRAME_SCHEMA`)."""
        rows = [_frame_row(change) for change in self.changes]
        return pa.Table.from_pylist(rows, schema=CHANGES_FRAME_SCHEMA)


def _frame_columns() -> list[pa.Field]:
    hints = typing.get_type_hints(TopicChange)
    version_hints = typing.get_type_hints(VersionRef)
    field_hints = typing.get_type_hints(FieldChanges)
    columns = [pa.field(name, *arrow_type(hints[name])) for name in _FRAME_TOPIC_COLUMNS]
    for side in ("before", "after"):
        columns += [
            pa.field(f"{side}_{name}", arrow_type(hint)[0], nullable=True)
            for name, hint in version_hints.items()
        ]
    columns.append(pa.field("changed_fields", *arrow_type(hints["changed_fields"])))
    columns += [pa.field(f"diff_{name}", *arrow_type(field_hints[name])) for name in CHANGED_FIELDS]
    return columns


_FRAME_TOPIC_COLUMNS = ("language", "slug", "kind", "title", "url")

CHANGES_FRAME_SCHEMA = pa.schema(_frame_columns())
"""Columns of `ChangeSet.to_frame()`, built from the result classes (never inferred)."""


def _frame_row(change: TopicChange) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(change, name) for name in _FRAME_TOPIC_COLUMNS}
    for side, ref in (("before", change.before), ("after", change.after)):
        for ref_field in dataclasses.fields(VersionRef):
            row[f"{side}_{ref_field.name}"] = getattr(ref, ref_field.name, None)
    row["changed_fields"] = list(change.changed_fields)
    for name in CHANGED_FIELDS:
        value = getattr(change.fields, name)
        row[f"diff_{name}"] = _plain(value)
    return row


def _plain(value: Any) -> Any:
    """Dataclasses as dicts, recursively; dates and scalars as they are (for Arrow)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# --- points ---------------------------------------------------------------------------


def resolve_point(archive: ArchiveReader, value: AsOf) -> Point:
    """`value` (a run id, a date, an ISO date string, or None for the latest) as a Point
    (`pipelines.archive.as_of.resolve_as_of`: UnknownRunError, BadAsOfDateError)."""
    cut = resolve_as_of(value, archive.run_ids, archive.path)
    if isinstance(cut, RunCut):
        return Point(kind="run", run_id=cut.last_run)
    if isinstance(cut, DateCut):
        return Point(kind="date", day=cut.day)
    return Point(kind="latest")


# --- comparison -----------------------------------------------------------------------


def compare(archive: ArchiveReader, a: AsOf, b: AsOf, *, language: str | None = None) -> ChangeSet:
    """Every topic that differs between points `a` and `b` (of `language`, or all)."""
    checked_language = _language(language)
    from_point, to_point = resolve_point(archive, a), resolve_point(archive, b)
    before = _live_topics(archive, from_point, language)
    after = _live_topics(archive, to_point, language)
    pairs = _classify(before, after)
    detail = _FieldDiffer(archive, from_point, to_point, before, after, pairs).detail()
    changes = tuple(_topic_change(row, detail) for row in pairs.to_dict("records"))
    return ChangeSet(
        from_point=from_point,
        to_point=to_point,
        language=checked_language,
        topics_before=len(before),
        topics_after=len(after),
        changes=changes,
        cross_check=cross_check_findings(archive, from_point, to_point),
    )


def cross_check_findings(
    archive: ArchiveReader, from_point: Point, to_point: Point
) -> tuple[CrossCheckFinding, ...]:
    """The notes and hidden changes of the runs after `from_point` up to and including
    `to_point` (see the module docstring for how each kind of point cuts the runs)."""
    first, last = _runs_through(archive, from_point), _runs_through(archive, to_point)
    findings: list[CrossCheckFinding] = []
    for manifest in archive.store.manifests[first:last]:
        run = manifest.run
        findings += [CrossCheckFinding(run_id=run.run_id, kind="note", text=t) for t in run.notes]
        findings += [
            CrossCheckFinding(run_id=run.run_id, kind="hidden_change", text=text)
            for text in run.hidden_changes
        ]
    return tuple(findings)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _runs_through(archive: ArchiveReader, point: Point) -> int:
    """How many committed runs (oldest first) a point includes."""
    run_ids = archive.run_ids
    if point.kind == "run" and point.run_id is not None:
        return run_ids.index(point.run_id) + 1
    if point.kind == "date" and point.day is not None:
        until = day_end(point.day)
        return sum(
            1
            for manifest in archive.store.manifests
            if (manifest.run.started_at - _EPOCH) // _MICROSECOND < until
        )
    return len(run_ids)


def _language(language: str | None) -> Language | None:
    for known in LANGUAGES:
        if language == known:
            return known
    if language is not None:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    return None


def _live_topics(archive: ArchiveReader, point: Point, language: str | None) -> pd.DataFrame:
    frame = archive.topics(as_of=point.as_of)
    if language is not None:
        frame = frame[frame["language"] == language]
    return frame.reset_index(drop=True)


_PAIR_COLUMNS = ["last_updated", "content_hash", "run_id", "title", "url"]
_KIND_ORDER = {kind: order for order, kind in enumerate(CHANGE_KINDS)}


def _classify(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """One row per changed topic: TOPIC_KEY, kind, `<column>_before/_after` of the
    version columns (null on a missing side), ordered by kind, language, slug."""
    key = list(TOPIC_KEY)
    pairs = before[[*key, *_PAIR_COLUMNS]].merge(
        after[[*key, *_PAIR_COLUMNS]],
        on=key,
        how="outer",
        suffixes=("_before", "_after"),
        indicator=True,
    )
    side = pairs.pop("_merge").astype(str).to_numpy()
    both = side == "both"
    same_hash = _equal(pairs["content_hash_before"], pairs["content_hash_after"])
    same_date = _equal(pairs["last_updated_before"], pairs["last_updated_after"])
    kind = np.select(
        [
            side == "right_only",
            side == "left_only",
            both & ~same_hash & ~same_date,
            both & ~same_hash & same_date,
            both & same_hash & ~same_date,
        ],
        list(CHANGE_KINDS),
        default="",
    )
    pairs["kind"] = kind
    pairs = pairs[kind != ""]
    order = pairs["kind"].map(_KIND_ORDER)
    ordered: pd.DataFrame = (
        pairs.assign(_order=order)
        .sort_values(["_order", *key], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    return ordered


def _equal(before: pd.Series, after: pd.Series) -> np.ndarray:
    """Element-wise equality where two missing values are equal (numpy bool array)."""
    before_na = before.isna().to_numpy(dtype=bool)
    after_na = after.isna().to_numpy(dtype=bool)
    same = (before == after).to_numpy(dtype=bool, na_value=False)
    return (before_na & after_na) | (same & ~before_na & ~after_na)


def _topic_change(
    row: Mapping[Hashable, Any], detail: Mapping[tuple[str, str], FieldChanges]
) -> TopicChange:
    kind: ChangeKind = row["kind"]
    topic = (row["language"], row["slug"])
    fields = detail.get(topic, FieldChanges())
    present = "after" if kind != "removed" else "before"
    return TopicChange(
        language=row["language"],
        slug=row["slug"],
        kind=kind,
        title=row[f"title_{present}"],
        url=row[f"url_{present}"],
        before=_version_ref(row, "before"),
        after=_version_ref(row, "after"),
        changed_fields=fields.changed(),
        fields=fields,
    )


def _version_ref(row: Mapping[Hashable, Any], side: str) -> VersionRef | None:
    if pd.isna(row[f"content_hash_{side}"]):
        return None
    return VersionRef(
        last_updated=row[f"last_updated_{side}"],
        content_hash=row[f"content_hash_{side}"],
        run_id=row[f"run_id_{side}"],
    )


# --- field detail ---------------------------------------------------------------------

_TEXT_FIELDS: tuple[ChangedField, ...] = (
    "title",
    "url",
    "meta_description",
    "summary_attribution",
    "counterpart_url",
)
_DATE_FIELDS: tuple[ChangedField, ...] = ("last_updated", "last_reviewed", "date_created")
_STRING_LIST_FIELDS: tuple[ChangedField, ...] = (
    "also_called",
    "other_names",
    "mesh_headings",
    "groups",
)
_PARTS: dict[ChangedField, tuple[str, type[Institute] | type[Image]]] = {
    "institute": ("primary_institute", Institute),
    "image": ("image", Image),
}

_ENTRY_COLUMNS = pa.schema(
    [
        pa.field("language", pa.string()),
        pa.field("slug", pa.string()),
        pa.field("field", pa.string()),
        pa.field("key", pa.string()),
        pa.field("section", pa.string()),
        pa.field("position", pa.int64()),
        pa.field("ordinal", pa.int64()),
        pa.field("title", pa.string()),
        pa.field("url", pa.string()),
        pa.field("organizations", pa.list_(pa.string())),
        *(pa.field(f"attr_{name}", pa.string()) for name in ENTRY_ATTRIBUTES),
    ]
)
"""The long table every list field is turned into for matching: one row per entry."""
_ENTRY_ID = ["language", "slug", "field"]


class _FieldDiffer:
    """Field-level detail for every changed topic present at both points."""

    def __init__(
        self,
        archive: ArchiveReader,
        from_point: Point,
        to_point: Point,
        before: pd.DataFrame,
        after: pd.DataFrame,
        pairs: pd.DataFrame,
    ) -> None:
        self._archive = archive
        self._points = (from_point, to_point)
        key = list(TOPIC_KEY)
        both = pairs.loc[pairs["kind"].isin(["updated", "same_date_edit", "date_only"]), key]
        content = pairs.loc[pairs["kind"].isin(CONTENT_CHANGE_KINDS), key]
        self._dated = both.merge(before, on=key).merge(after, on=key, suffixes=("_b", "_a"))
        self._content = content.merge(before, on=key).merge(after, on=key, suffixes=("_b", "_a"))
        self._values: defaultdict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
        self._url_keys: dict[str, str] = {}
        """Canonical form of every entry URL seen, shared by both points."""

    def detail(self) -> dict[tuple[str, str], FieldChanges]:
        self._dates()
        if len(self._content):
            self._texts()
            self._parts()
            self._summary()
            self._entries()
        return {topic: FieldChanges(**values) for topic, values in self._values.items()}

    def _set(self, frame: pd.DataFrame, name: str, values: Iterable[Any]) -> None:
        for language, slug, value in zip(frame["language"], frame["slug"], values, strict=True):
            self._values[(language, slug)][name] = value

    def _changed_rows(self, frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
        differs = np.zeros(len(frame), dtype=bool)
        for column in columns:
            differs |= ~_equal(frame[f"{column}_b"], frame[f"{column}_a"])
        return frame[differs]

    def _dates(self) -> None:
        for name in _DATE_FIELDS:
            rows = self._changed_rows(self._dated, [name])
            values = [
                DateChange(before=_none(old), after=_none(new))
                for old, new in zip(rows[f"{name}_b"], rows[f"{name}_a"], strict=True)
            ]
            self._set(rows, name, values)

    def _texts(self) -> None:
        for name in _TEXT_FIELDS:
            rows = self._changed_rows(self._content, [name])
            values = [
                TextChange(before=_none(old), after=_none(new))
                for old, new in zip(rows[f"{name}_b"], rows[f"{name}_a"], strict=True)
            ]
            self._set(rows, name, values)

    def _parts(self) -> None:
        for name, (prefix, part) in _PARTS.items():
            columns = [f"{prefix}_{f.name}" for f in dataclasses.fields(part)]
            rows = self._changed_rows(self._content, columns)
            values = [
                _part_change(name, part, record, columns) for record in rows.to_dict("records")
            ]
            self._set(rows, name, values)

    def _summary(self) -> None:
        text_changed = self._changed_rows(self._content, ["summary_text"])
        diffs = [
            word_diff(old or "", new or "")
            for old, new in zip(
                text_changed["summary_text_b"], text_changed["summary_text_a"], strict=True
            )
        ]
        self._set(text_changed, "summary", diffs)
        same_text = self._content[
            _equal(self._content["summary_text_b"], self._content["summary_text_a"])
        ]
        markup_changed = self._changed_rows(same_text, ["summary_html"])
        values = [
            TextChange(before=_none(old), after=_none(new))
            for old, new in zip(
                markup_changed["summary_html_b"], markup_changed["summary_html_a"], strict=True
            )
        ]
        self._set(markup_changed, "summary_html", values)

    # list fields

    def _entries(self) -> None:
        before = self._entry_table("_b", 0)
        after = self._entry_table("_a", 1)
        changes, edits = match_entries(before, after)
        edits_by_row: defaultdict[int, list[AttributeEdit]] = defaultdict(list)
        for row_id, attribute, old, new in zip(
            edits["row_id"], edits["attribute"], edits["before"], edits["after"], strict=True
        ):
            edits_by_row[row_id].append(
                AttributeEdit(attribute=attribute, before=_none(old), after=_none(new))
            )
        entry_changes: defaultdict[tuple[str, str, str], list[EntryChange]] = defaultdict(list)
        string_changes: defaultdict[tuple[str, str, str], dict[str, list[str]]] = defaultdict(
            lambda: {"added": [], "removed": [], "moved": []}
        )
        for record in changes.to_dict("records"):
            where = (record["language"], record["slug"], record["field"])
            if record["field"] in _STRING_LIST_FIELDS:
                string_changes[where][record["change"]].append(record["key"])
                continue
            entry_changes[where].append(
                EntryChange(
                    change=record["change"],
                    title=record["title"],
                    url=record["url"],
                    section=_none(record["section"]),
                    section_before=_none(record["section_before"]),
                    position_before=_none(record["position_before"]),
                    position_after=_none(record["position_after"]),
                    organizations=list(_none(record["organizations"]) or []),
                    edits=edits_by_row.get(record["row_id"], []),
                )
            )
        for (language, slug, name), entries in entry_changes.items():
            self._values[(language, slug)][name] = entries
        for (language, slug, name), lists in string_changes.items():
            self._values[(language, slug)][name] = ListChange(**lists)

    def _entry_table(self, suffix: str, point: int) -> pa.Table:
        """The long entry table of every list field of the content-changed versions at
        one point."""
        frame = self._content
        versions = frame[["language", "slug", f"last_updated{suffix}", f"content_hash{suffix}"]]
        versions = versions.set_axis(list(VERSION_KEY), axis=1)
        as_of = self._points[point].as_of
        parts = [_string_list_entries(frame, name, suffix) for name in _STRING_LIST_FIELDS]
        parts.append(_related_entries(frame, suffix, self._url_keys))
        links = self._archive.links(as_of=as_of).merge(versions, on=list(VERSION_KEY))
        parts.append(_link_entries(links, self._url_keys))
        trials = self._archive.clinical_trials(as_of=as_of).merge(versions, on=list(VERSION_KEY))
        parts.append(_trial_entries(trials, self._url_keys))
        return pa.concat_tables(parts)


def _none(value: Any) -> Any:
    """None for a missing value (NA, NaN, None), else the value."""
    if value is None or (not isinstance(value, list | np.ndarray) and pd.isna(value)):
        return None
    return value


def _part_change(
    name: str,
    part: type[Institute] | type[Image],
    record: Mapping[Hashable, Any],
    columns: list[str],
) -> InstituteChange | ImageChange:
    sides: list[Any] = []
    for suffix in ("_b", "_a"):
        values = {
            f.name: _none(record[f"{column}{suffix}"])
            for f, column in zip(dataclasses.fields(part), columns, strict=True)
        }
        present = any(value is not None for value in values.values())
        sides.append(part(**values) if present else None)
    if name == "institute":
        return InstituteChange(before=sides[0], after=sides[1])
    return ImageChange(before=sides[0], after=sides[1])


# --- entry tables ---------------------------------------------------------------------


def _arrow(series: pd.Series | Any, data_type: pa.DataType) -> pa.Array:
    return pa.array(series, type=data_type, from_pandas=True)


def _entry_table(columns: Mapping[str, Any], rows: int) -> pa.Table:
    """A table with `_ENTRY_COLUMNS`: the given columns, nulls for the others."""
    arrays = []
    for column in _ENTRY_COLUMNS:
        if column.name in columns:
            value = columns[column.name]
            if isinstance(value, pa.Array | pa.ChunkedArray):
                arrays.append(value.cast(column.type))
            elif isinstance(value, str):
                arrays.append(pa.array([value] * rows, type=column.type))
            else:
                arrays.append(_arrow(value, column.type))
        else:
            arrays.append(pa.nulls(rows, type=column.type))
    return pa.Table.from_arrays(arrays, schema=_ENTRY_COLUMNS)


def _exploded(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """One row per list element: language, slug, value, position (0-based)."""
    long = frame[["language", "slug", column]].explode(column).rename(columns={column: "value"})
    long["position"] = long.groupby(level=0).cumcount()
    long = long[long["value"].notna()]
    return long.reset_index(drop=True)


def _string_list_entries(frame: pd.DataFrame, name: str, suffix: str) -> pa.Table:
    long = _exploded(frame, f"{name}{suffix}")
    return _entry_table(
        {
            "language": long["language"],
            "slug": long["slug"],
            "field": name,
            "key": long["value"],
            "position": long["position"],
            "ordinal": long["position"],
            "title": long["value"],
            "url": pa.nulls(len(long), pa.string()),
        },
        len(long),
    )


def _related_entries(frame: pd.DataFrame, suffix: str, known: dict[str, str]) -> pa.Table:
    long = _exploded(frame, f"related_topics{suffix}")
    parts = long["value"].struct.explode() if len(long) else pd.DataFrame({"title": [], "url": []})
    return _entry_table(
        {
            "language": long["language"],
            "slug": long["slug"],
            "field": "related_topics",
            "key": url_keys(parts["url"], known),
            "position": long["position"],
            "ordinal": long["position"],
            "title": parts["title"],
            "url": parts["url"],
            "attr_title": parts["title"],
            "attr_url": parts["url"],
        },
        len(long),
    )


def _ordinals(frame: pd.DataFrame) -> pd.Series:
    """Page order of each entry within its topic (entries come in page order)."""
    ordinals: pd.Series = frame.groupby(["language", "slug"], sort=False).cumcount()
    return ordinals


def _link_entries(links: pd.DataFrame, known: dict[str, str]) -> pa.Table:
    return _entry_table(
        {
            "language": links["language"],
            "slug": links["slug"],
            "field": "links",
            "key": url_keys(links["url"], known),
            "section": links["section"],
            "position": links["position"],
            "ordinal": _ordinals(links),
            "title": links["title"],
            "url": links["url"],
            "organizations": links["organizations"],
            "attr_title": links["title"],
            "attr_url": links["url"],
            "attr_organizations": _joined(links["organizations"], "; "),
            "attr_badges": _joined(links["badges"], ", "),
            "attr_other_language_url": links["other_language_url"],
            "attr_site_id": links["site_id"],
        },
        len(links),
    )


def _trial_entries(trials: pd.DataFrame, known: dict[str, str]) -> pa.Table:
    nih = _arrow(trials["nih"], pa.bool_())
    return _entry_table(
        {
            "language": trials["language"],
            "slug": trials["slug"],
            "field": "clinical_trials",
            "key": url_keys(trials["url"], known),
            "position": trials["position"],
            "ordinal": _ordinals(trials),
            "title": trials["title"],
            "url": trials["url"],
            "organizations": trials["organizations"],
            "attr_title": trials["title"],
            "attr_url": trials["url"],
            "attr_organizations": _joined(trials["organizations"], "; "),
            "attr_nih": pc.if_else(nih, "yes", "no"),
        },
        len(trials),
    )


def _joined(lists: pd.Series, separator: str) -> pa.Array:
    return pc.binary_join(_arrow(lists, pa.list_(pa.string())), separator)


def url_keys(urls: pd.Series, known: dict[str, str] | None = None) -> pa.Array:
    """Canonical forms of `urls` (w3lib), for matching entries. Each distinct URL is
    canonicalised once; `known` (URL -> canonical form) is reused and filled in."""
    cache = {} if known is None else known
    values = pd.Series(urls, dtype=object)
    for url in values.dropna().unique():
        if url not in cache:
            cache[url] = canonicalize_url(url)
    return pa.array(values.map(cache), type=pa.string(), from_pandas=True)


# --- entry matching -------------------------------------------------------------------


def match_entries(before: pa.Table, after: pa.Table) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Match the entries of two long tables (`_ENTRY_COLUMNS`) and say what changed.

    Returns (changes, edits). changes: one row per added, removed, moved or edited entry
    with language, slug, field, change, key, title, url, organizations, section,
    section_before, position_before, position_after and a row_id, ordered by topic,
    field and page order. edits: row_id, attribute, before, after for every changed
    attribute of a matched entry.
    """
    old = before.to_pandas(types_mapper=pd.ArrowDtype)
    new = after.to_pandas(types_mapper=pd.ArrowDtype)
    match_key = [*_ENTRY_ID, "key", "occurrence"]
    for side in (old, new):
        side["occurrence"] = side.groupby([*_ENTRY_ID, "key"], sort=False).cumcount()
    merged = old.merge(new, on=match_key, how="outer", suffixes=("_b", "_a"), indicator=True)
    side_of = merged.pop("_merge").astype(str).to_numpy()
    both = side_of == "both"
    other_section = both & ~_equal(merged["section_b"], merged["section_a"])
    reordered = _reordered(merged, both & ~other_section)
    differs = {
        name: both & ~_equal(merged[f"attr_{name}_b"], merged[f"attr_{name}_a"])
        for name in ENTRY_ATTRIBUTES
    }
    edited = np.zeros(len(merged), dtype=bool)
    for attribute_differs in differs.values():
        edited |= attribute_differs
    change = np.select(
        [side_of == "right_only", side_of == "left_only", other_section | reordered, edited],
        ["added", "removed", "moved", "edited"],
        default="",
    )
    merged["change"] = change
    merged["row_id"] = np.arange(len(merged))
    edits = pd.concat(
        [
            pd.DataFrame(
                {
                    "row_id": merged.loc[mask, "row_id"],
                    "attribute": name,
                    "before": merged.loc[mask, f"attr_{name}_b"].astype(object),
                    "after": merged.loc[mask, f"attr_{name}_a"].astype(object),
                }
            )
            for name, mask in differs.items()
        ],
        ignore_index=True,
    )
    changed: pd.DataFrame = merged[change != ""]
    removed = changed["change"].to_numpy() == "removed"

    def current(column: str) -> pd.Series:
        """The new side's value, the old side's for a removed entry."""
        return changed[f"{column}_a"].where(~removed, changed[f"{column}_b"])

    result = pd.DataFrame(
        {
            "language": changed["language"],
            "slug": changed["slug"],
            "field": changed["field"],
            "change": changed["change"],
            "key": changed["key"],
            "title": current("title"),
            "url": current("url"),
            "organizations": current("organizations"),
            "section": current("section"),
            "section_before": changed["section_b"],
            "position_before": changed["position_b"],
            "position_after": changed["position_a"],
            "row_id": changed["row_id"],
            "_ordinal": changed["ordinal_a"].where(~removed, changed["ordinal_b"]),
            "_change_order": changed["change"].map(
                {kind: order for order, kind in enumerate(ENTRY_CHANGE_KINDS)}
            ),
        }
    )
    result = result.sort_values(
        [*_ENTRY_ID, "_ordinal", "_change_order", "key"], kind="stable"
    ).drop(columns=["_ordinal", "_change_order"])
    edits = edits[edits["row_id"].isin(result["row_id"])]
    return result.reset_index(drop=True), edits.sort_values(["row_id"], kind="stable")


def _reordered(merged: pd.DataFrame, kept: np.ndarray) -> np.ndarray:
    """Entries matched in the same section whose order relative to the other matched
    entries of that section changed: the fewest that explain the new order."""
    group = [*_ENTRY_ID, "section_b"]
    same = merged.loc[kept, [*group, "key", "occurrence", "position_b", "position_a"]]
    rank_before = (
        same.sort_values("position_b", kind="stable").groupby(group, dropna=False).cumcount()
    )
    rank_after = (
        same.sort_values("position_a", kind="stable").groupby(group, dropna=False).cumcount()
    )
    out_of_place = (rank_before.sort_index() != rank_after.sort_index()).to_numpy()
    moved = np.zeros(len(merged), dtype=bool)
    if not out_of_place.any():
        return moved
    suspects = same[out_of_place][group].drop_duplicates()
    candidates = same.reset_index().merge(suspects, on=group)
    # Only the (rare) reordered sections get a per-section sequence match.
    for _, section in candidates.groupby(group, sort=False, dropna=False):
        old_order = section.sort_values("position_b", kind="stable")
        new_order = section.sort_values("position_a", kind="stable")
        old_ids = list(zip(old_order["key"], old_order["occurrence"], strict=True))
        new_ids = list(zip(new_order["key"], new_order["occurrence"], strict=True))
        matcher = difflib.SequenceMatcher(None, old_ids, new_ids, autojunk=False)
        in_place = {
            old_ids[block.a + offset]
            for block in matcher.get_matching_blocks()
            for offset in range(block.size)
        }
        for index, key, occurrence in zip(
            section["index"], section["key"], section["occurrence"], strict=True
        ):
            if (key, occurrence) not in in_place:
                moved[index] = True
    return moved


# --- word diff ------------------------------------------------------------------------

_TOKEN = re.compile(r"\n|[^\s]+")


def _words(text: str) -> list[str]:
    """Words and line breaks of `text`."""
    return _TOKEN.findall(text)


def word_diff(before: str, after: str) -> SummaryChange:
    """A word-level diff of two texts (difflib on word lists; line breaks are tokens)."""
    old, new = _words(before), _words(after)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    runs: list[tuple[DiffOp, list[str]]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("delete", "replace"):
            runs.append(("delete", old[i1:i2]))
        if tag in ("insert", "replace"):
            runs.append(("insert", new[j1:j2]))
        if tag == "equal":
            runs.append(("equal", old[i1:i2]))
    segments: list[DiffSegment] = []
    counts = {"insert": 0, "delete": 0, "equal": 0}
    # The last token of each text so far: a word gets a space before it when a word
    # precedes it in a text it belongs to, so neither text ever runs two words together.
    last_old: str | None = None
    last_new: str | None = None
    for op, tokens in runs:
        text = []
        for token in tokens:
            previous = [last_old if op != "insert" else None, last_new if op != "delete" else None]
            if token != "\n" and any(p is not None and p != "\n" for p in previous):
                text.append(" ")
            text.append(token)
            if op != "insert":
                last_old = token
            if op != "delete":
                last_new = token
        segments.append(DiffSegment(op=op, text="".join(text)))
        counts[op] += sum(1 for token in tokens if token != "\n")
    return SummaryChange(
        segments=segments, words_added=counts["insert"], words_removed=counts["delete"]
    )


_MARKUP_TOKEN = re.compile(r"<[^>]*>|\s+|[^\s<]+")


def markup_diff(before: str, after: str) -> list[DiffSegment]:
    """A diff of two HTML fragments by tags, words and whitespace, for showing a
    markup-only change: the segments concatenate to the exact texts (no added spaces)."""
    old, new = _MARKUP_TOKEN.findall(before), _MARKUP_TOKEN.findall(after)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    segments: list[DiffSegment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("delete", "replace"):
            segments.append(DiffSegment(op="delete", text="".join(old[i1:i2])))
        if tag in ("insert", "replace"):
            segments.append(DiffSegment(op="insert", text="".join(new[j1:j2])))
        if tag == "equal":
            segments.append(DiffSegment(op="equal", text="".join(old[i1:i2])))
    return segments
