"""Typed rows of the archive besides page content, and the run manifest.

`Observation` (one fetch of one page in one run) and `RunRecord` (one crawl run) are
the observations and runs tables; `JournalArticleRecord` is the journal_articles table;
`VersionRecord` stamps a `HealthTopicPage` with the run that stored it, `XmlRecord` a
record of NLM's XML dump (the xml_records table). `RunManifest`
is the `_runs/<run_id>.json` file that commits a run, `CompactionManifest` the
`_compactions/<id>.json` file that commits a compaction. Like the items, these classes
are the single source of truth for their tables' columns (see `pipelines.core.schema`).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, TypeVar, get_args

from crawler.parsing.items import HealthTopicPage, Language, to_jsonable
from crawler.parsing.xml_dump import DumpTopic

Outcome = Literal["new", "unchanged", "same_date_edit", "error", "gone"]
"""What one fetch of a page found.

* new: a version not stored before (a first sighting, or the date was bumped);
* unchanged: a version already stored (also a 304 answer);
* same_date_edit: the content changed but the page's date did not;
* error: the fetch or the extraction failed, or a 404/410 the shrink guard did not
  take as gone; says nothing about the page itself;
* gone: the page no longer exists (404/410, or dropped from an index that answered in
  full).
"""
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
SUCCESS_OUTCOMES: tuple[Outcome, ...] = ("new", "unchanged", "same_date_edit")
"""Outcomes of a fetch that showed the page (so the topic is live)."""

RunStatus = Literal["success", "partial", "failed"]
"""How a committed run ended.

* success: the crawl went through its whole list of pages;
* partial: stopped early on purpose (--limit, Ctrl-C, a close-spider condition), or
  could not trust the index to say what is gone (an index page failed, the shrink
  guard held removals back: then with its `failure_reasons`, and exit 1); what it
  observed is committed, but topics it did not reach say nothing;
* failed: the crawl could not do its job (the topic list unreachable, too many
  errors); what it did observe is still committed. (A crawl that could not reach the
  site at all commits no run.)
"""
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)


@dataclass(kw_only=True, slots=True)
class Observation:
    """One fetch of one health-topic page in one run: a row of the observations table."""

    run_id: str
    """The run that made the fetch."""
    observed_at: datetime
    """When the response arrived (timezone-aware, stored as UTC)."""
    url: str
    """Canonical page URL (https://medlineplus.gov/...), the key for conditional requests."""
    source_url: str
    """The URL actually fetched (a mirror's URL when crawling a mirror)."""
    language: Language
    """Page language."""
    slug: str
    """Topic slug, e.g. "lungcancer"."""
    outcome: Outcome
    """What the fetch found; see `Outcome`."""
    http_status: int | None = None
    """HTTP status of the response; None when no response arrived (DNS error, timeout)."""
    revalidated: bool = False
    """True when the server answered 304 Not Modified to a conditional request."""
    last_updated: date | None = None
    """The version's "last updated" date: of the page parsed, or of the stored version a
    304 confirmed. None for errors and gone pages."""
    content_hash: str | None = None
    """The version's content hash, alongside `last_updated`."""
    error: str | None = None
    """What went wrong, for outcome "error" (and optionally "gone")."""
    error_field: str | None = None
    """The item field that could not be extracted, when extraction failed."""
    etag: str | None = None
    """The response's ETag header, as received."""
    last_modified: str | None = None
    """The response's Last-Modified header, as received (not parsed)."""

    @classmethod
    def of_page(
        cls, page: HealthTopicPage, *, run_id: str, observed_at: datetime, outcome: Outcome
    ) -> Observation:
        """The observation of a parsed page: its URLs, topic, status, date, content hash
        and validators."""
        return cls(
            run_id=run_id,
            observed_at=observed_at,
            url=page.url,
            source_url=page.source_url,
            language=page.language,
            slug=page.slug,
            outcome=outcome,
            http_status=page.http_status,
            last_updated=page.last_updated,
            content_hash=page.content_hash,
            etag=page.etag,
            last_modified=page.last_modified,
        )


@dataclass(kw_only=True, slots=True)
class RunRecord:
    """One crawl run: a row of the runs table, also kept in the run's manifest."""

    run_id: str
    """Sortable unique id, e.g. "20261124T002400Z-3fa2" (see `pipelines.core.store.new_run_id`)."""
    started_at: datetime
    """When the crawl started (timezone-aware, stored as UTC)."""
    finished_at: datetime
    """When the crawl finished, just before the run was committed."""
    status: RunStatus
    """How the run ended; see `RunStatus`."""
    finish_reason: str | None = None
    """The crawler's own close reason, e.g. "finished", "shutdown", "closespider_pagecount"."""
    pages_fetched: int = 0
    """Responses received for health-topic pages, 304s included."""
    pages_new: int = 0
    """Observations with outcome "new"."""
    pages_unchanged: int = 0
    """Observations with outcome "unchanged"."""
    pages_same_date_edit: int = 0
    """Observations with outcome "same_date_edit"."""
    pages_error: int = 0
    """Observations with outcome "error"."""
    pages_gone: int = 0
    """Observations with outcome "gone"."""
    settings_digest: str
    """sha256 of the crawl settings that shape results (base URL, languages, limits...)."""
    base_url: str
    """The site crawled: https://medlineplus.gov or a mirror's base URL."""
    languages: list[Language] = field(default_factory=list)
    """Languages crawled."""
    discovery: str
    """How pages were found: "sitemap", "xml", "urls", "url"... as the crawler names it."""
    failure_reasons: list[str] = field(default_factory=list)
    """Why the run is "failed" or "partial", one reason per entry; empty for a success."""
    notes: list[str] = field(default_factory=list)
    """What the run found worth a look that does not make it fail: the incremental plan's
    cross-check of the XML dump against the archive and the index (see
    `pipelines.archive.incremental`), one finding per entry."""
    hidden_changes: list[str] = field(default_factory=list)
    """Page changes the XML dump did not show, found by revalidation: one entry per page,
    "<language>/<slug>: <section>, <section>" (see `pipelines.archive.xml_records`)."""

    def count(self, outcome: Outcome) -> int:
        """The run's count of observations with `outcome`."""
        value: int = getattr(self, outcome_count_field(outcome))
        return value


def outcome_count_field(outcome: Outcome) -> str:
    """The `RunRecord` field counting `outcome`, e.g. "pages_gone"."""
    return f"pages_{outcome}"


@dataclass(kw_only=True, slots=True)
class JournalArticleRecord:
    """A journal article the first time it is seen on a topic: a row of journal_articles."""

    language: Language
    """Language of the topic page that listed the article."""
    slug: str
    """Slug of the topic page that listed the article."""
    pmid: str
    """PubMed id; articles whose URL carries none are not archived."""
    title: str
    """Link text as first seen, "Article: " prefix included."""
    url: str
    """PubMed URL as first seen."""
    position: int
    """0-based position in the section when first seen."""
    first_seen_run: str
    """The run that first saw the article on this topic."""
    first_seen_at: datetime
    """When that run fetched the page (UTC)."""


@dataclass(kw_only=True, slots=True, frozen=True)
class VersionRecord:
    """A page version as stored: the page and the run that first observed it."""

    page: HealthTopicPage
    """The extracted page; its (language, slug, last_updated, content_hash) is the key."""
    run_id: str
    """The run that stored the version (transaction time)."""
    observed_at: datetime
    """When that run fetched it (UTC)."""
    warc_file: str | None = None
    """The WARC file holding the raw page (warc/<run_id>.warc.gz), None when not kept."""
    warc_offset: int | None = None
    """Byte offset of the page's response record in `warc_file`."""


@dataclass(kw_only=True, slots=True, frozen=True)
class XmlRecord:
    """A topic's record in NLM's XML dump, as stored: a row of the xml_records table.

    A row is stored when a topic's record is first seen or its fingerprint changed, and
    only once the run has fetched the page (see `pipelines.archive.xml_records`)."""

    record: DumpTopic
    """The record; its (language, slug) names the topic, its fingerprint the version."""
    run_id: str
    """The run that stored it."""
    dump_date: date | None
    """The day the dump was generated (its date-generated attribute)."""


@dataclass(kw_only=True, slots=True, frozen=True)
class ManifestFile:
    """One Parquet file committed by a run or a compaction."""

    table: str
    """The table the file belongs to, e.g. "topics"."""
    path: str
    """Path relative to the archive root, with "/" separators: "topics/part-<run_id>.parquet"
    (a compaction's: "topics/compacted-<compaction_id>.parquet"). Once a compaction has
    replaced it, the file lives on at "_retired/<path>"."""
    rows: int
    """Number of rows in the file."""
    bytes: int
    """File size in bytes."""
    sha256: str
    """sha256 (hex) of the file's bytes."""

    @classmethod
    def from_json(cls, data: Any) -> ManifestFile:
        """Parse one entry (a fast path of `decode_dataclass`: manifests hold many)."""
        if not isinstance(data, Mapping) or set(data) != _MANIFEST_FILE_FIELDS:
            return decode_dataclass(cls, data)
        table, path, rows, size, sha256 = (
            data["table"],
            data["path"],
            data["rows"],
            data["bytes"],
            data["sha256"],
        )
        if not (isinstance(table, str) and isinstance(path, str) and isinstance(sha256, str)):
            return decode_dataclass(cls, data)
        if type(rows) is not int or type(size) is not int:
            return decode_dataclass(cls, data)
        return cls(table=table, path=path, rows=rows, bytes=size, sha256=sha256)


_MANIFEST_FILE_FIELDS = frozenset({"table", "path", "rows", "bytes", "sha256"})


MANIFEST_FORMAT = "medlineplus-archive/run-manifest"
_Record = TypeVar("_Record")


@dataclass(kw_only=True, slots=True, frozen=True)
class RunManifest:
    """The `_runs/<run_id>.json` file: written last, it is what commits a run."""

    run_id: str
    """The run committed."""
    schema_version: int
    """`pipelines.core.schema.SCHEMA_VERSION` of the code that wrote the run."""
    committed_at: datetime
    """When the manifest was written (UTC)."""
    files: tuple[ManifestFile, ...]
    """Every file of the run, one per table."""
    run: RunRecord
    """The run record (also the run's row in the runs table)."""
    warc: ManifestFile | None = None
    """The run's WARC file of raw pages (table "warc", rows = records); None when the run
    stored no new version."""

    def to_json(self) -> dict[str, Any]:
        """The manifest as plain JSON types."""
        data = {
            "format": MANIFEST_FORMAT,
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "committed_at": self.committed_at.isoformat(),
            "files": [to_jsonable(entry) for entry in self.files],
            "run": to_jsonable(self.run),
        }
        if self.warc is not None:
            data["warc"] = to_jsonable(self.warc)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunManifest:
        """Parse a manifest; raises ValueError, TypeError or KeyError when malformed."""
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"not a run manifest (format {data.get('format')!r})")
        return cls(
            run_id=_decode(str, data["run_id"]),
            schema_version=_decode(int, data["schema_version"]),
            committed_at=_decode(datetime, data["committed_at"]),
            files=tuple(ManifestFile.from_json(entry) for entry in data["files"]),
            run=decode_dataclass(RunRecord, data["run"]),
            warc=ManifestFile.from_json(data["warc"]) if data.get("warc") else None,
        )


COMPACTION_FORMAT = "medlineplus-archive/compaction-manifest"


@dataclass(kw_only=True, slots=True, frozen=True)
class CompactedTable:
    """One table's part of a compaction: the files merged and the file made of them."""

    table: str
    """The table, e.g. "topics"."""
    inputs: tuple[ManifestFile, ...]
    """The files replaced, oldest runs first, as committed (they move to "_retired/")."""
    output: ManifestFile
    """The file holding every row of the inputs, in the same order."""


@dataclass(kw_only=True, slots=True, frozen=True)
class CompactionManifest:
    """The `_compactions/<compaction_id>.json` file: written after the compacted files are in
    place and before their inputs are retired, it is what commits a compaction."""

    compaction_id: str
    """Unique and sortable in commit order: "<last_run>-L<level>"."""
    schema_version: int
    """`pipelines.core.schema.SCHEMA_VERSION` of the code that wrote the compaction."""
    committed_at: datetime
    """When the manifest was written (UTC)."""
    level: int
    """1 for a merge of runs' own files, n + 1 for a merge of level-n files."""
    first_run: str
    """The oldest run whose rows the compacted files hold."""
    last_run: str
    """The newest run whose rows the compacted files hold."""
    tables: tuple[CompactedTable, ...]
    """One entry per table."""

    def to_json(self) -> dict[str, Any]:
        """The manifest as plain JSON types."""
        return {
            "format": COMPACTION_FORMAT,
            "schema_version": self.schema_version,
            "compaction_id": self.compaction_id,
            "committed_at": self.committed_at.isoformat(),
            "level": self.level,
            "first_run": self.first_run,
            "last_run": self.last_run,
            "tables": [to_jsonable(entry) for entry in self.tables],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CompactionManifest:
        """Parse a manifest; raises ValueError, TypeError or KeyError when malformed."""
        if data.get("format") != COMPACTION_FORMAT:
            raise ValueError(f"not a compaction manifest (format {data.get('format')!r})")
        tables = []
        for entry in data["tables"]:
            if not isinstance(entry, Mapping) or set(entry) != {"table", "inputs", "output"}:
                raise ValueError(f"malformed table entry {entry!r}")
            tables.append(
                CompactedTable(
                    table=_decode(str, entry["table"]),
                    inputs=tuple(ManifestFile.from_json(item) for item in entry["inputs"]),
                    output=ManifestFile.from_json(entry["output"]),
                )
            )
        return cls(
            compaction_id=_decode(str, data["compaction_id"]),
            schema_version=_decode(int, data["schema_version"]),
            committed_at=_decode(datetime, data["committed_at"]),
            level=_decode(int, data["level"]),
            first_run=_decode(str, data["first_run"]),
            last_run=_decode(str, data["last_run"]),
            tables=tuple(tables),
        )


VACUUM_FORMAT = "medlineplus-archive/vacuum-record"


@dataclass(kw_only=True, slots=True, frozen=True)
class VacuumRecord:
    """The `_vacuumed/<vacuum_id>.json` file: written before `vacuum` deletes retired files,
    it lists them, so that `verify` tells a file deleted on purpose from one lost."""

    vacuum_id: str
    """Unique and sortable: "<UTC time>-<random>"."""
    vacuumed_at: datetime
    """When the record was written (UTC)."""
    retain_days: int
    """Files retired fewer days ago than this were kept."""
    files: tuple[ManifestFile, ...]
    """The retired files deleted, as committed (`path` is where they were in use; they
    were deleted from "_retired/<path>")."""

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON types."""
        return {
            "format": VACUUM_FORMAT,
            "vacuum_id": self.vacuum_id,
            "vacuumed_at": self.vacuumed_at.isoformat(),
            "retain_days": self.retain_days,
            "files": [to_jsonable(entry) for entry in self.files],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VacuumRecord:
        """Parse a record; raises ValueError, TypeError or KeyError when malformed."""
        if data.get("format") != VACUUM_FORMAT:
            raise ValueError(f"not a vacuum record (format {data.get('format')!r})")
        return cls(
            vacuum_id=_decode(str, data["vacuum_id"]),
            vacuumed_at=_decode(datetime, data["vacuumed_at"]),
            retain_days=_decode(int, data["retain_days"]),
            files=tuple(ManifestFile.from_json(entry) for entry in data["files"]),
        )


def decode_dataclass(cls: type[_Record], data: Mapping[str, Any]) -> _Record:
    """Build a flat record dataclass from the JSON `to_jsonable` made of it.

    Missing fields take their defaults; unknown keys are an error (they mean a newer writer).
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints, names = _fields_of(typing.cast(type, cls))
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    values = {name: _decode(hints[name], value) for name, value in data.items()}
    return cls(**values)


def decode_value(hint: Any, value: Any) -> Any:
    """`value` (plain JSON) as the Python type `hint` (str, int, date, list[str]...), checked;
    TypeError or ValueError when it does not fit."""
    return _decode(hint, value)


@functools.cache
def _fields_of(cls: type) -> tuple[dict[str, Any], frozenset[str]]:
    """Type hints and field names of a record class (cached: manifests hold thousands)."""
    names = frozenset(f.name for f in dataclasses.fields(cls))
    return typing.get_type_hints(cls), names


def _decode(hint: Any, value: Any) -> Any:
    """`value` (plain JSON) as the Python type `hint`, checked."""
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode(inner, value)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ValueError(f"{value!r} is not one of {typing.get_args(hint)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        (inner,) = typing.get_args(hint)
        return [_decode(inner, item) for item in value]
    if hint is datetime:
        return datetime.fromisoformat(_checked(str, value))
    if hint is date:
        return date.fromisoformat(_checked(str, value))
    if hint is int and isinstance(value, bool):
        raise TypeError(f"expected int, got {value!r}")
    return _checked(hint, value)


def _checked(kind: type, value: Any) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value
