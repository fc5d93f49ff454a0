"""Re-extraction: run the current parser over the raw pages kept in the run WARC files.

For each stored version with a WARC record, the page is parsed again and compared, field
by field, with what the archive holds: a parser fix shows exactly which versions it
changes. Pure: no Scrapy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from crawler.errors import ExtractionError
from crawler.items import HealthTopicPage
from crawler.parsing import parse_health_topic
from crawler.parsing.health_topic import declared_encoding
from pipelines.records import VersionRecord
from pipelines.schema import VERSION_KEY, clinical_trials_table, links_table, topics_table
from pipelines.store import ArchiveStore
from pipelines.warc import ArchivedResponse, read_response

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


def _parse_again(archived: ArchivedResponse, parse: Parser) -> HealthTopicPage:
    charset = None
    if not declared_encoding(archived.body):
        for name, value in archived.headers:
            if name.lower() == "content-type" and "charset=" in value.lower():
                charset = value.lower().split("charset=", 1)[1].split(";")[0].strip()
    return parse(archived.body, archived.fetched_from, encoding=charset)


def reextract(
    archive: Path | str, run_ids: Iterable[str] | None = None, parse: Parser = parse_health_topic
) -> list[Reextracted]:
    """Every stored version of `run_ids` (all runs when None) that has a WARC record,
    parsed again with `parse` and compared with the archive, field by field."""
    root = Path(archive)
    with ArchiveStore.open(root, read_only=True) as store:
        selected = list(run_ids) if run_ids is not None else None
        topics = store.read_table("topics", run_ids=selected).to_pylist()
        entries = {
            table: _entry_rows(store.read_table(table, run_ids=selected))  # type: ignore[arg-type]
            for table in _ENTRY_TABLES
        }
    results: list[Reextracted] = []
    for row in topics:
        if not row.get("warc_file"):
            continue
        key = (row["language"], row["slug"], row["last_updated"], row["content_hash"])
        archived = read_response(root / row["warc_file"], int(row["warc_offset"]))
        try:
            page = _parse_again(archived, parse)
        except ExtractionError as error:
            results.append(Reextracted(key, row["run_id"], None, str(error), ()))
            continue
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
        results.append(Reextracted(key, row["run_id"], page, None, tuple(changes)))
    return results
