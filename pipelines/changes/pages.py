"""The archived pages a change report names: the stored versions before and after each
changed topic (`pipelines.archive.pages` reads them)."""

from __future__ import annotations

from datetime import date

from pipelines.archive.keys import VersionKey
from pipelines.archive.load import ArchiveReader
from pipelines.archive.pages import StoredPage, stored_pages
from pipelines.changes.detection import ChangeSet


def report_pages(archive: ArchiveReader, changes: ChangeSet) -> dict[VersionKey, StoredPage]:
    """The versions named by a change report (before and after of each changed topic)."""
    wanted: list[tuple[str, str, date, str, str]] = [
        (change.language, change.slug, version.last_updated, version.content_hash, version.run_id)
        for change in changes.changes
        for version in (change.before, change.after)
        if version is not None
    ]
    return {page.key: page for page in stored_pages(archive, wanted)}
