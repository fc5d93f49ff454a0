"""What the archive domain derives from an archive's committed rows, kept per open store.

`ArchiveState.of(store)` is the sightings log (`pipelines.archive.versions`), the stored
versions (the version key of every topics row, in file order), the snapshot `Selector`
and the version/dedupe index (`pipelines.archive.index`) of one `ArchiveStore`: each
built on first use, from the newest checkpoint and the runs after it, and kept up to date
by the store (a `pipelines.core.store.DerivedState`): a commit advances the log and the
index from the run's own rows, a compaction drops what depends on row positions, and a
checkpoint saves the log and the stored versions (as the derived tables "events",
"validators" and "versions"). The crawl's components share one store, so one state
(`pipelines.session`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa

from pipelines.archive.index import ArchiveIndex, advance_index, build_index
from pipelines.archive.versions import (
    EVENTS_SCHEMA,
    OBSERVATION_COLUMNS,
    VALIDATORS_SCHEMA,
    VERSION_COLUMNS,
    Selector,
    Validators,
    VersionLog,
    key_tuples,
    matching_rows,
)
from pipelines.core.errors import ArchiveCorruptError, ArchiveNotFoundError
from pipelines.core.records import RunManifest
from pipelines.core.schema import SCHEMAS, VERSION_KEY, TableName
from pipelines.core.store import ArchiveStore

logger = logging.getLogger(__name__)

STORED_SCHEMA = pa.schema([SCHEMAS["topics"].field(name) for name in VERSION_COLUMNS])
"""Columns of the stored versions (saved with a checkpoint as "versions")."""

ARTICLE_KEY = ("language", "slug", "pmid")
"""What makes a journal article stored once per topic."""


class ArchiveState:
    """The sightings log, stored versions, selector and index of one open store.

    Get it with `ArchiveState.of(store)`; it reads the store's committed runs only.
    """

    kept_columns: Mapping[TableName, Sequence[str]] = {
        "topics": VERSION_COLUMNS,
        "observations": OBSERVATION_COLUMNS,
        "journal_articles": ARTICLE_KEY,
    }
    """The columns of a run's rows the state takes in after its commit."""

    def __init__(self, store: ArchiveStore) -> None:
        self.store = store
        self._log: VersionLog | None = None
        self._stored: pa.Table | None = None
        self._selector: Selector | None = None
        self._index: ArchiveIndex | None = None

    @classmethod
    def of(cls, store: ArchiveStore) -> ArchiveState:
        """The state of `store`, made on first use and kept with it."""
        return store.attachment(cls)

    # reading

    def version_log(self) -> VersionLog:
        """The sightings log and validators of the committed runs (see
        `pipelines.archive.versions`)."""
        if self._log is None:
            checkpoint = self.store.checkpoint
            base, after, covered = VersionLog.empty(), None, 0
            if checkpoint is not None and {"events", "validators"} <= set(checkpoint.derived_names):
                try:
                    base = VersionLog(
                        checkpoint.read_derived("events", EVENTS_SCHEMA),
                        checkpoint.read_derived("validators", VALIDATORS_SCHEMA),
                    )
                    after, covered = checkpoint.last_run, len(checkpoint.run_ids)
                except ArchiveCorruptError as error:
                    logger.warning("%s", error)
            if len(self.store.run_ids) > covered:
                versions = self.store.read_columns("topics", VERSION_COLUMNS, after=after)
                observations = self.store.read_columns(
                    "observations", OBSERVATION_COLUMNS, after=after
                )
                base = base.extended(versions, observations)
            self._log = base
        return self._log

    def stored_versions(self) -> pa.Table:
        """Every stored version: VERSION_KEY, run_id and observed_at.

        One row per row of the topics files in use, in their order: row `i` here is row
        `i` for `ArchiveStore.read_positions("topics", ...)`.
        """
        if self._stored is None:
            self._stored = self._read_stored()
        return self._stored

    def _read_stored(self) -> pa.Table:
        columns = list(VERSION_COLUMNS)
        checkpoint = self.store.checkpoint
        if checkpoint is not None and "versions" in checkpoint.derived_names:
            total = sum(live.entry.rows for live in self.store.live_files("topics"))
            try:
                saved = checkpoint.read_derived("versions", STORED_SCHEMA)
            except ArchiveCorruptError as error:
                logger.warning("%s", error)
            else:
                later = self.store.read_columns("topics", columns, after=checkpoint.last_run)
                stored = pa.concat_tables([saved, later.cast(saved.schema)])
                if stored.num_rows == total:
                    return stored
                logger.warning(
                    "checkpoint %s: its stored versions do not match the topics files; "
                    "reading the files instead",
                    checkpoint.directory,
                )
        return self.store.read_columns("topics", columns).cast(STORED_SCHEMA)

    def selector(self) -> Selector:
        """The version log and stored versions indexed for snapshots (built once)."""
        if self._selector is None:
            self._selector = Selector(self.version_log().events, self.stored_versions())
        return self._selector

    def index(self) -> ArchiveIndex:
        """The index of the committed runs, built on first use and kept up to date by
        commits (a crawl's components share it through `pipelines.session`)."""
        if self._index is None:
            if not self.store.run_ids:
                self._index = ArchiveIndex.empty()
            else:
                articles = self.store.read_table("journal_articles", columns=list(ARTICLE_KEY))
                self._index = build_index(
                    self.store.run_ids, self.version_log(), self.stored_versions(), articles
                )
        return self._index

    def validators(self) -> dict[str, Validators]:
        """Per canonical URL, what to revalidate with (see `latest_validators`)."""
        return dict(self.index().validators)

    # kept up to date by the store (pipelines.core.store.DerivedState)

    def committed(self, manifest: RunManifest, rows: Mapping[TableName, pa.Table]) -> None:
        """Take in the rows of the run just committed."""
        self._selector = None
        if not set(self.kept_columns) <= set(rows):  # the run began before the state was made
            self.reset()
            return
        versions = rows["topics"].select(list(VERSION_COLUMNS))
        observations = rows["observations"].select(list(OBSERVATION_COLUMNS))
        if self._stored is not None:
            self._stored = pa.concat_tables([self._stored, versions])
        if self._log is None:
            self._index = None
            return
        before = self._log.events.num_rows
        self._log = self._log.extended(versions, observations)
        if self._index is not None:
            self._index = advance_index(
                self._index,
                run_ids=self.store.run_ids,
                versions=versions,
                articles=rows["journal_articles"],
                events=self._log.events,
                new_events=self._log.events.slice(before),
                validators=self._log.validators,
                observations=observations,
            )

    def files_changed(self) -> None:
        """Compacted files keep the rows' order, but row positions are per file set."""
        self._stored = None
        self._selector = None

    def reset(self) -> None:
        """Forget everything: it is rebuilt on next use."""
        self._log = None
        self._stored = None
        self._selector = None
        self._index = None

    def checkpoint_tables(self) -> dict[str, pa.Table]:
        """The log and the stored versions, for a checkpoint."""
        log = self.version_log()
        return {
            "events": log.events,
            "validators": log.validators,
            "versions": self.stored_versions().cast(STORED_SCHEMA),
        }


def read_versions(
    store: ArchiveStore,
    table: TableName,
    versions: pa.Table,
    *,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Rows of `table` (topics, links or clinical_trials) of the given versions.

    `versions` holds VERSION_KEY and run_id (the run that stored each version, as in
    `ArchiveState.stored_versions`). Only the row groups whose run_id statistics admit one
    of those runs are read, so a snapshot does not decompress the whole history. Rows come
    back in run order (in page order within a version).
    """
    rows = store.read_runs(table, versions["run_id"].to_pylist(), columns=columns)
    if rows.num_rows == 0:
        return rows
    key = list(VERSION_KEY)
    if not set(key) <= set(rows.column_names):
        raise ValueError(f"columns must include the version key {key}")
    return rows.take(matching_rows(rows, versions, key))


def xml_fingerprints(store: ArchiveStore) -> dict[tuple[str, str], str]:
    """Per topic (language, slug), the fingerprint of its XML record last stored."""
    rows = store.read_table("xml_records", columns=["language", "slug", "fingerprint"])
    return {
        (language, slug): fingerprint
        for language, slug, fingerprint in key_tuples(rows, ("language", "slug", "fingerprint"))
    }


def read_validators(path: Path | str | None) -> dict[str, Validators]:
    """Validators per canonical URL of the archive at `path`, read without the lock.

    ArchiveNotFoundError when there is no archive there (a first crawl).
    """
    if path is None:
        raise ArchiveNotFoundError("no archive path given")
    store = ArchiveStore.open(path, read_only=True)
    return ArchiveState.of(store).validators()
