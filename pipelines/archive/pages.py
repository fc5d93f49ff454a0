"""The archived page of a topic version: the page as the site served it, kept in the WARC
file of the run that stored the version (`pipelines.core.warc`; each topics row holds the file
and the offset of its response record).

`page_as_of` finds the version of one topic as of a point (as `Archive.topics` selects
it), `stored_pages` the given versions (`pipelines.changes.pages` those a change report
names); `read_page` gives a page's bytes, exactly the response payload that was stored.
`copy_name` is the file name a copy of a version takes beside a change report. Pure: no
Scrapy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa

from pipelines.archive.as_of import AsOf
from pipelines.archive.keys import VersionKey
from pipelines.archive.load import ArchiveReader
from pipelines.archive.state import read_versions
from pipelines.core.schema import VERSION_KEY
from pipelines.core.warc import WarcLocation

HASH_IN_NAME = 8
"""Leading hex digits of the content hash in a copy's file name."""

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")

_COLUMNS = (*VERSION_KEY, "run_id", "title", "url", "warc_file", "warc_offset")


@dataclass(frozen=True, slots=True)
class StoredPage:
    """One stored version of a topic, and where its raw page is."""

    key: VersionKey
    run_id: str
    """The run that stored the version."""
    title: str
    url: str
    location: WarcLocation | None
    """Its response record; None when no raw page was kept (a version stored before the
    archive kept WARC files)."""

    @property
    def copy_name(self) -> str:
        """`<language>/<slug>-<last_updated>-<hash8>.html`, a relative path that names
        the version (anything in the slug but letters, digits, `_` and `-` becomes `-`)."""
        return copy_name(self.key)


def copy_name(key: VersionKey) -> str:
    """See `StoredPage.copy_name`."""
    slug = _UNSAFE_NAME.sub("-", key.slug)
    language = _UNSAFE_NAME.sub("-", key.language)
    return (
        f"{language}/{slug}-{key.last_updated.isoformat()}-{key.content_hash[:HASH_IN_NAME]}.html"
    )


def _stored_page(row: dict[str, Any]) -> StoredPage:
    key = VersionKey(row["language"], row["slug"], row["last_updated"], row["content_hash"])
    location = None
    if row["warc_file"] is not None and row["warc_offset"] is not None:
        location = WarcLocation(file=row["warc_file"], offset=int(row["warc_offset"]))
    return StoredPage(
        key=key, run_id=row["run_id"], title=row["title"], url=row["url"], location=location
    )


def page_as_of(
    archive: ArchiveReader, slug: str, language: str = "en", as_of: AsOf = None
) -> StoredPage | None:
    """The version of topic `language`/`slug` as of `as_of` (None: the current version
    of a live topic); None when the topic had no live version then."""
    frame = archive.topic(slug, language, as_of)[list(_COLUMNS)]
    rows = pa.Table.from_pandas(frame, preserve_index=False).to_pylist()
    return _stored_page(rows[0]) if rows else None


def stored_pages(
    archive: ArchiveReader, versions: Iterable[tuple[str, str, date, str, str]]
) -> list[StoredPage]:
    """The stored versions among `versions` (VERSION_KEY and the run that stored each)."""
    columns = [*VERSION_KEY, "run_id"]
    rows = list(versions)
    if not rows:
        return []
    wanted = pa.Table.from_pylist(
        [dict(zip(columns, row, strict=True)) for row in rows],
        schema=archive.state.stored_versions().select(columns).schema,
    )
    found = read_versions(archive.store, "topics", wanted, columns=_COLUMNS)
    return [_stored_page(row) for row in found.to_pylist()]


def read_page(archive: ArchiveReader, location: WarcLocation) -> bytes:
    """The raw page at `location` as the site served it: the stored response payload,
    not decoded; ArchiveCorruptError when the record is missing or damaged."""
    return archive.store.read_response(location).body
