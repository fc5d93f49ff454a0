"""What a run keeps of NLM's XML dump, and what it learns from the pages the dump did not
show as changed.

The xml_records table holds a topic's record when it is first seen and whenever its
fingerprint changes: not one row per topic and dump. A day of the real dump is ~4,000
records; stored whole every day it would cost about as much as the pages' own versions
(see README: Daily runs, for the bytes measured), while the changed records are ~1% of
them. The latest row per topic is the baseline the next incremental run compares with,
and the rows a topic has are its record's history. A changed record is stored only once
the run has fetched the page (200 or 304): a page that failed keeps the old baseline, so
the next run fetches it again.

A page fetched only to revalidate it (its record unchanged) that comes back as a new
version is a change the dump did not show: `changed_sections` says which sections of
the page changed, so that the revalidation window can be tuned from data.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from crawler.parsing.items import HealthTopicPage
from crawler.parsing.xml_dump import DumpTopic
from pipelines.archive.incremental import TopicId
from pipelines.archive.keys import LatestVersion
from pipelines.archive.state import ArchiveState, read_versions
from pipelines.core.records import VersionRecord, XmlRecord
from pipelines.core.schema import VERSION_KEY, TableBuilder, clinical_trial_rows, link_rows
from pipelines.core.store import ArchiveStore

SECTION_COLUMNS: Mapping[str, str] = {
    "last_updated": "last_updated",
    "title": "title",
    "also_called": "also_called",
    "other_names": "other_names",
    "meta_description": "meta_description",
    "summary_html": "summary",
    "summary_attribution": "summary",
    "primary_institute_name": "primary_institute",
    "primary_institute_url": "primary_institute",
    "image_url": "image",
    "image_alt": "image",
    "mesh_headings": "mesh_headings",
    "groups": "groups",
    "counterpart_url": "counterpart",
    "related_topics": "related_topics",
    "date_created": "date_created",
    "last_reviewed": "last_reviewed",
}
"""Columns of the topics table that make up a page's sections, and the section's name."""
ENTRY_SECTIONS: tuple[Literal["links", "clinical_trials"], ...] = ("links", "clinical_trials")
"""Sections with a table of their own, named after it."""


def records_to_store(
    records: Iterable[DumpTopic],
    stored: Mapping[TopicId, str],
    fetched: Collection[TopicId],
    run_id: str,
    dump_date: date | None,
) -> list[XmlRecord]:
    """The rows for the xml_records table: the `records` whose fingerprint differs from the
    one `stored` last, of the topics this run `fetched` (answered 200 or 304)."""
    return [
        XmlRecord(record=record, run_id=run_id, dump_date=dump_date)
        for record in records
        if (record.language, record.slug) in fetched
        and stored.get((record.language, record.slug)) != record.fingerprint
    ]


def changed_sections(
    store: ArchiveStore, page: HealthTopicPage, previous: LatestVersion, run_id: str
) -> list[str]:
    """The sections in which `page` differs from the topic's `previous` version (as
    stored in `store`), in SECTION_COLUMNS order, then ENTRY_SECTIONS."""
    stored = ArchiveState.of(store).stored_versions()
    wanted = (page.language, page.slug, previous.last_updated, previous.content_hash)
    mask = None
    for column, value in zip(VERSION_KEY, wanted, strict=True):
        equal = pc.equal(stored[column], pa.scalar(value, stored.schema.field(column).type))
        mask = equal if mask is None else pc.and_(mask, equal)
    versions = stored.filter(mask).select([*VERSION_KEY, "run_id"])
    if not versions.num_rows:
        return []
    version = [VersionRecord(page=page, run_id=run_id, observed_at=datetime.now().astimezone())]
    columns = list(dict.fromkeys([*VERSION_KEY, *SECTION_COLUMNS]))
    before = read_versions(store, "topics", versions, columns=columns)
    topics = TableBuilder("topics")
    topics.append(version)
    after = topics.to_table()
    sections = [
        section
        for column, section in SECTION_COLUMNS.items()
        if before[column].to_pylist() != after[column].to_pylist()
    ]
    entry_rows = {"links": link_rows(version), "clinical_trials": clinical_trial_rows(version)}
    for table in ENTRY_SECTIONS:
        builder = TableBuilder(table)
        builder.append(entry_rows[table])
        new = builder.to_table()
        entries = [name for name in new.schema.names if name not in (*VERSION_KEY, "run_id")]
        old = read_versions(store, table, versions, columns=[*VERSION_KEY, *entries])
        if old.select(entries).to_pylist() != new.select(entries).to_pylist():
            sections.append(table)
    return list(dict.fromkeys(sections))
