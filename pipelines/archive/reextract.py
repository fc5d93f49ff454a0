"""Re-extraction: run the current parser over the raw pages kept in the run WARC files.

For each stored version with a WARC record, the page is parsed again and compared, field
by field, with what the archive holds: a parser fix shows exactly which versions it
changes. Pure: no Scrapy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from crawler.parsing import parse_health_topic
from crawler.parsing.errors import ExtractionError
from crawler.parsing.health_topic import encoding_for
from crawler.parsing.items import HealthTopicPage
from pipelines.archive.index import classify
from pipelines.archive.keys import version_key
from pipelines.archive.recorder import RunRecorder
from pipelines.archive.state import ArchiveState
from pipelines.core.records import Observation, RunRecord, VersionRecord
from pipelines.core.schema import VERSION_KEY, clinical_trials_table, links_table, topics_table
from pipelines.core.store import ArchiveStore, new_run_id
from pipelines.core.warc import ArchivedResponse, WarcLocation, raw_from_archived

Parser = Callable[..., HealthTopicPage]

NOT_COMPARED = frozenset(
    {
        "run_id",
        "observed_at",
        "fetched_at",
        "source_url",
        "http_status",
        "etag",
        "last_modified",
        "warc_file",
        "warc_offset",
    }
)
"""Columns about the fetch or the storing, not what the parser extracts."""

_ENTRY_TABLES: dict[str, Callable[[Sequence[VersionRecord]], Any]] = {
    "links": links_table,
    "clinical_trials": clinical_trials_table,
}


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of one stored version that the current parser extracts differently."""

    language: str
    slug: str
    last_updated: date
    content_hash: str
    field: str
    stored: Any
    extracted: Any


@dataclass(frozen=True, slots=True)
class Reextracted:
    """One stored version parsed again from its WARC record."""

    key: tuple[str, str, date, str]
    run_id: str
    page: HealthTopicPage | None
    """The page as extracted now; None when the current parser rejects it."""
    error: str | None
    changes: tuple[FieldChange, ...]


def _entry_rows(table: Any) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in table.to_pylist():
        grouped[tuple(row[name] for name in VERSION_KEY)].append(_entry(row))
    return grouped


def _content(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name not in NOT_COMPARED}


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    """An entry row without its version key: a changed hash alone does not change entries."""
    return {name: value for name, value in _content(row).items() if name not in VERSION_KEY}


def _parse_again(archived: ArchivedResponse, parse: Parser, topic_url: str) -> HealthTopicPage:
    """The page parsed again, filed under the topic it is stored as (`topic_url`)."""
    content_type = next((v for k, v in archived.headers if k.lower() == "content-type"), None)
    encoding = encoding_for(archived.body, content_type)
    return parse(archived.body, archived.fetched_from, encoding=encoding, topic_url=topic_url)


def reextract(
    archive: Path | str, run_ids: Iterable[str] | None = None, parse: Parser = parse_health_topic
) -> list[Reextracted]:
    """Every stored version of `run_ids` (all runs when None) that has a WARC record,
    parsed again with `parse` and compared with the archive, field by field."""
    with ArchiveStore.open(Path(archive), read_only=True) as store:
        selected = list(run_ids) if run_ids is not None else None
        topics = store.read_table("topics", run_ids=selected).to_pylist()
        entries = {
            table: _entry_rows(store.read_table(table, run_ids=selected))  # type: ignore[arg-type]
            for table in _ENTRY_TABLES
        }
        return [
            _compared(row, store.read_response(_location(row)), parse, entries)
            for row in topics
            if row.get("warc_file")
        ]


def _location(row: dict[str, Any]) -> WarcLocation:
    return WarcLocation(file=row["warc_file"], offset=int(row["warc_offset"]))


def _compared(
    row: dict[str, Any],
    archived: ArchivedResponse,
    parse: Parser,
    entries: dict[str, dict[tuple[Any, ...], list[dict[str, Any]]]],
) -> Reextracted:
    """The stored version `row` parsed again from its WARC record `archived`, compared
    with the row and its `entries` (per entry table, per version key)."""
    key = (row["language"], row["slug"], row["last_updated"], row["content_hash"])
    try:
        page = _parse_again(archived, parse, row["url"])
    except ExtractionError as error:
        return Reextracted(key, row["run_id"], None, str(error), ())
    page.fetched_at = row["fetched_at"]
    page.http_status = row["http_status"]
    page.etag, page.last_modified = row["etag"], row["last_modified"]
    page.raw = raw_from_archived(archived, row["fetched_at"])
    record = VersionRecord(page=page, run_id=row["run_id"], observed_at=row["observed_at"])
    fresh = _content(topics_table([record]).to_pylist()[0])
    stored = _content(row)
    changes = [
        FieldChange(*key, field=name, stored=stored.get(name), extracted=value)
        for name, value in fresh.items()
        if stored.get(name) != value
    ]
    for table, build in _ENTRY_TABLES.items():
        now = [_entry(r) for r in build([record]).to_pylist()]
        before = entries[table].get(key, [])
        if now != before:
            changes.append(FieldChange(*key, field=table, stored=before, extracted=now))
    return Reextracted(key, row["run_id"], page, None, tuple(changes))


def commit_reextracted(
    archive: Path | str, results: Iterable[Reextracted], now: datetime
) -> tuple[str | None, list[Reextracted]]:
    """Write the re-extracted versions whose version key changed as one new run.

    Old files are never rewritten: a corrected page is a new version (its observation says
    "new", or "same_date_edit" when only its content hash changed), stored with its raw
    page again in the new run's WARC file. A correction that leaves the key unchanged
    (say, of date_created) cannot be stored, as a version is written once: those are
    returned as skipped. Returns (the new run id or None when nothing was written, skipped).
    """
    root = Path(archive)
    changed = [result for result in results if result.page is not None and result.changes]
    skipped: list[Reextracted] = []
    with ArchiveStore.open(root) as store:
        pending = [
            r
            for r in changed
            if r.page is not None
            and version_key(r.page) not in ArchiveState.of(store).index().versions
        ]
        skipped = [r for r in changed if r not in pending]
        if not pending:
            return None, skipped
        last = store.run_ids[-1] if store.run_ids else None
        writer = RunRecorder.begin(store, new_run_id(now, after=last), now)
        try:
            for result in pending:
                page = result.page
                assert page is not None
                outcome = classify(page, writer.index)
                observation = Observation.of_page(
                    page, run_id=writer.run_id, observed_at=now, outcome=outcome
                )
                # A re-extraction fetches nothing: it brings no validators.
                writer.add_observation(replace(observation, etag=None, last_modified=None))
                writer.add_version(page, writer.run_id, now)
            counts = writer.outcome_counts()
            writer.commit(
                RunRecord(
                    run_id=writer.run_id,
                    started_at=now,
                    finished_at=datetime.now(UTC),
                    status="success",
                    finish_reason="reextract",
                    pages_fetched=0,
                    pages_new=counts.get("new", 0),
                    pages_same_date_edit=counts.get("same_date_edit", 0),
                    settings_digest="reextract",
                    base_url="",
                    languages=sorted({r.key[0] for r in pending}),  # type: ignore[misc]
                    discovery="reextract",
                )
            )
        except BaseException:
            writer.abort()
            raise
        return writer.run_id, skipped
