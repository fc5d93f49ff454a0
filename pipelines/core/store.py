"""The table format's store: opening an archive, its committed state, scans, and runs.

See `pipelines.core.layout` for the directory layout. Every run writes one file to every
table, zero rows included: a table directory then always holds the schema, and
`pandas.read_parquet("<archive>/current/topics")` or a DuckDB glob needs no special case.
A run is committed by writing its manifest last, atomically; a run without a manifest never
happened: readers ignore its files and the next writer moves them to `_quarantine/`
(`pipelines.core.recovery`).

After a commit the store points `current/` at the files in use, for glob readers
(`pipelines.core.glob_view`: one atomic rename per commit, again after the compactions that
follow it, and at a writer's opening). Then it compacts (`pipelines.core.compaction`): runs'
small files are merged into larger ones by a compaction manifest, and the files replaced
move to `_retired/`; nothing committed is ever rewritten, and only `pipelines.core.vacuum` deletes
anything (retired files, days later). Readers follow the manifests: the files in use
are each run's own files, except those a committed compaction replaced. A checkpoint
(`pipelines.core.catalog`) saves that list, and the tables the layers above derive from the
rows (`DerivedState`), so that opening a large archive stays fast.

The store knows tables, files and runs, not what the rows mean: the archive domain
(`pipelines.archive`) keeps its own state derived from the committed rows (the sightings
log, the version/dedupe index) as a `DerivedState` attached to the store
(`ArchiveStore.attachment`), which the store tells about each commit and compaction and
asks for the tables a checkpoint saves.

Runs are ordered by run id, which is also the order they were committed in: run ids
start with their UTC start time, and `begin_run` refuses one that does not sort after
every committed run.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from crawler.parsing.items import EncodedExchange
from pipelines.core.catalog import (
    Checkpoint,
    FileSet,
    LiveFile,
    commit_order,
    read_checkpoint,
    write_checkpoint,
)
from pipelines.core.compaction import DEFAULT_POLICY, CompactionPolicy, plan, run_merge
from pipelines.core.errors import (
    ArchiveCorruptError,
    ArchiveError,
    ArchiveNotAFolderError,
    ArchiveNotFoundError,
    ArchiveSchemaError,
    ArchiveUnwritableError,
    InvalidRecordError,
    LostManifestError,
    RunStateError,
)
from pipelines.core.glob_view import publish_view, refresh_view
from pipelines.core.layout import (
    ARCHIVE_FORMAT,
    COMPACTIONS_DIR,
    DICTIONARY_ALL_FROM_ROWS,
    LOCK_FILE,
    MARKER_FILE,
    PARQUET_COMPRESSION,
    ROW_GROUP_ROWS,
    RUNS_DIR,
    STAGING_DIR,
    archive_folder_exists,
    check_run_id,
    check_schema_version,
    file_digest,
    fsync_dir,
    json_names,
    load_compaction,
    load_manifest,
    manifest_paths,
    move_into_tables,
    parquet_bytes,
    parquet_options,
    part_path,
    part_run_id,
    read_marker,
    retired_path,
    write_file_durably,
    write_json_atomically,
)
from pipelines.core.lock import ArchiveLock
from pipelines.core.records import CompactionManifest, ManifestFile, RunManifest, RunRecord
from pipelines.core.recovery import lost_runs, recover
from pipelines.core.schema import SCHEMA_VERSION, SCHEMAS, TABLES, TableBuilder, TableName
from pipelines.core.storage import ArchivePath, ObjectPath, archive_location, pyarrow_source
from pipelines.core.warc import (
    WARC_DIR,
    ArchivedResponse,
    WarcFileWriter,
    WarcLocation,
    read_response,
    warc_path,
)

__all__ = [
    "ARCHIVE_FORMAT",
    "LOCK_FILE",
    "MARKER_FILE",
    "PARQUET_COMPRESSION",
    "RUNS_DIR",
    "STAGING_DIR",
    "ArchiveStore",
    "CompactionPolicy",
    "DerivedState",
    "RunWriter",
    "check_run_id",
    "check_schema_version",
    "file_digest",
    "load_manifest",
    "manifest_paths",
    "new_run_id",
    "part_path",
    "part_run_id",
    "read_marker",
    "write_json_atomically",
]

logger = logging.getLogger(__name__)

RUN_COLUMN: Mapping[str, str] = {
    str(table): "first_seen_run" if table == "journal_articles" else "run_id" for table in TABLES
}
"""The column naming the run that wrote each row."""

SPILL_ROWS: Mapping[TableName, int] = {
    "topics": 1024,
    "links": 32_768,
    "clinical_trials": 8192,
    "journal_articles": 8192,
    "observations": 32_768,
    "runs": 1 << 30,
    "xml_records": 4096,
}
"""Rows of a table a run keeps in memory before writing them on to its staging file."""


def new_run_id(now: datetime, after: str | None = None) -> str:
    """A sortable, unique run id for a run starting at `now`: "20261124T002400Z-3fa2".

    With `after` (the last committed run id), the id sorts after it even when that run
    started in the same second (a quick crawl right after another) or the clock went back.
    """
    candidate = f"{_utc(now, 'now'):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
    if after is None or candidate > after:
        return candidate
    last_started = datetime.strptime(after[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return f"{last_started + timedelta(seconds=1):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


class DerivedState(Protocol):
    """What a layer above keeps per open store, derived from the committed rows (the
    archive domain's sightings log and index): the store tells it about commits and
    compactions, and saves its tables in checkpoints. Attach one with
    `ArchiveStore.attachment`."""

    kept_columns: Mapping[TableName, Sequence[str]]
    """Per table, the columns of a run's rows `committed` is given (kept aside as the
    run's rows spill to disk, so a commit reads no table back)."""

    def committed(self, manifest: RunManifest, rows: Mapping[TableName, pa.Table]) -> None:
        """Run `manifest` was committed by this store; `rows` holds its `kept_columns`.
        The store's committed state (`run_ids`, files) already includes it."""

    def files_changed(self) -> None:
        """A compaction replaced files: row positions within a table's files changed."""

    def reset(self) -> None:
        """The committed state was read again from disk: forget everything derived."""

    def checkpoint_tables(self) -> Mapping[str, pa.Table]:
        """The tables a checkpoint saves for this state, by name (see
        `pipelines.core.catalog`); read back with `Checkpoint.read_derived`."""


_Attached = TypeVar("_Attached", bound=DerivedState)


# --- files ----------------------------------------------------------------------------


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime; pass a timezone-aware one (UTC)")
    return value.astimezone(UTC)


def _is_allowed_before_creation(entry: Path) -> bool:
    """Files a new archive directory may already hold: dotfiles and a README (the
    repository's output/ ships README.md and .gitignore)."""
    return entry.name.startswith(".") or entry.name.upper().startswith("README")


@dataclass(kw_only=True)
class _Committed:
    """The committed runs and compactions, as the manifests (and a checkpoint) say."""

    run_ids: list[str]
    compaction_ids: list[str]
    files: FileSet
    checkpoint: Checkpoint | None
    manifests: dict[str, RunManifest] = field(default_factory=dict)
    """Run manifests parsed so far (those after the checkpoint, at least)."""
    compactions: dict[str, CompactionManifest] = field(default_factory=dict)
    """Compaction manifests parsed so far."""


def _read_committed(root: ArchivePath, *, writer: bool = False) -> _Committed:
    """What the manifests in `root` commit, using the newest checkpoint that agrees.

    When a committed compaction merged the parts of a run whose manifest is missing
    (lost), the archive cannot be read: LostManifestError for a `writer`, naming every
    lost run and its files, ArchiveCorruptError naming the run for a reader; both say
    to run `repair`.
    """
    # Compactions are listed before runs: a compaction listed is newer than its inputs'
    # runs, so those are in the listing of runs even while a writer is committing.
    compaction_ids = json_names(root / COMPACTIONS_DIR)
    run_ids = json_names(root / RUNS_DIR)
    checkpoint = read_checkpoint(root, run_ids, compaction_ids)
    files = checkpoint.files.copy() if checkpoint else FileSet()
    committed = _Committed(
        run_ids=run_ids, compaction_ids=compaction_ids, files=files, checkpoint=checkpoint
    )
    later = commit_order(
        run_ids[len(checkpoint.run_ids) if checkpoint else 0 :],
        compaction_ids[len(checkpoint.compaction_ids) if checkpoint else 0 :],
    )
    for kind, name in later:
        if kind == "run":
            manifest = load_manifest(root / RUNS_DIR / f"{name}.json")
            committed.manifests[name] = manifest
            files.add_run(manifest)
            continue
        path = root / COMPACTIONS_DIR / f"{name}.json"
        compaction = load_compaction(path)
        committed.compactions[name] = compaction
        _check_inputs_committed(root, committed, compaction, writer=writer)
        try:
            files.apply_compaction(compaction)
        except ValueError as error:
            raise ArchiveCorruptError(
                f"{path}: {error}; run `medlineplus-archive verify`", path=path
            ) from error
    return committed


def _check_inputs_committed(
    root: ArchivePath, committed: _Committed, compaction: CompactionManifest, *, writer: bool
) -> None:
    """LostManifestError (a `writer`) or ArchiveCorruptError (a reader) when `compaction`
    merged parts of runs that have no manifest (see `_read_committed`)."""
    runs = set(committed.run_ids)
    lost = sorted(
        {
            run_id
            for part in compaction.tables
            for entry in part.inputs
            if (run_id := part_run_id(entry.path.rpartition("/")[2])) is not None
            and run_id not in runs
        }
    )
    if not lost:
        return
    if writer and isinstance(root, Path):
        compactions = [
            committed.compactions.get(name)
            or load_compaction(root / COMPACTIONS_DIR / f"{name}.json")
            for name in committed.compaction_ids
        ]
        raise LostManifestError(root, lost_runs(root, committed.run_ids, compactions))
    named = ", ".join(f"run {run_id} ({RUNS_DIR}/{run_id}.json)" for run_id in lost)
    raise ArchiveCorruptError(
        f"{root}: the manifest of {named} is missing, though compaction "
        f"{compaction.compaction_id} merged its files, so the archive cannot be read; run "
        f"`medlineplus-archive repair --archive {root}` to rebuild it from its files",
        path=root,
    )


class ArchiveStore:
    """An archive directory opened for writing (locked, recovered) or for reading.

    Open it with `ArchiveStore.open`; use it as a context manager, or call `close`, to
    release the lock. A store opened for reading sees the runs committed when it was
    opened; one opened for writing also sees the runs it commits.
    """

    def __init__(
        self,
        root: ArchivePath,
        committed: _Committed,
        *,
        lock: ArchiveLock | None,
        policy: CompactionPolicy = DEFAULT_POLICY,
    ) -> None:
        self.root = root
        """Where the archive is: its directory, or for a reader an S3 prefix it was
        published to (`pipelines.core.publish`)."""
        self.policy = policy
        """When this store compacts and checkpoints (writers only)."""
        self._committed = committed
        self._lock = lock
        self._attached: dict[Callable[[ArchiveStore], DerivedState], DerivedState] = {}
        self._writer: RunWriter | None = None
        self._interrupted: str | None = None
        """A run whose commit failed part-way (see `begin_run`)."""

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        create: bool = True,
        read_only: bool = False,
        policy: CompactionPolicy = DEFAULT_POLICY,
    ) -> Self:
        """Open the archive at `path`.

        For writing (the default): create the layout when the directory is missing or
        empty (`create=True`), take the exclusive lock, and recover (`pipelines.core.recovery`):
        move leftovers of runs and compactions that were never committed to
        `_quarantine/`, and finish moving the files a committed compaction replaced to
        `_retired/`; LostManifestError, with nothing moved, when an older run's manifest
        is missing. Read-only: no lock, no recovery, no creation; files without a
        manifest are ignored. The committed runs are read once, at opening. `policy`
        says when a writer compacts.

        ArchiveNotAFolderError when `path` is a file or goes through one;
        ArchiveUnwritableError when a writer cannot write there (a read-only or full disk).
        """
        location = archive_location(path)
        if isinstance(location, ObjectPath):
            return cls._open_published(location, read_only=read_only, policy=policy)
        root = location
        exists = archive_folder_exists(root)
        if read_only:
            if not exists:
                raise ArchiveNotFoundError(f"no archive at {root} (no such directory)", path=root)
            read_marker(root)
            return cls(root, _read_committed(root), lock=None, policy=policy)
        try:
            _prepare_directory(root, create=create)
            lock = ArchiveLock.acquire(root)
        except OSError as error:  # a read-only or full disk, no permission
            raise ArchiveUnwritableError(root, error) from error
        try:
            if not (root / MARKER_FILE).exists():
                _create_layout(root)
            read_marker(root)
            for directory in (RUNS_DIR, STAGING_DIR, *TABLES):
                (root / directory).mkdir(exist_ok=True)
            committed = _read_committed(root, writer=True)
            recover(
                root,
                run_ids=committed.run_ids,
                compaction_ids=committed.compaction_ids,
                files=committed.files,
                compactions=committed.compactions,
            )
            refresh_view(
                root, committed.files, len(committed.run_ids), len(committed.compaction_ids)
            )
        except OSError as error:
            lock.release()
            raise ArchiveUnwritableError(root, error) from error
        except BaseException:
            lock.release()
            raise
        return cls(root, committed, lock=lock, policy=policy)

    @classmethod
    def _open_published(
        cls, root: ObjectPath, *, read_only: bool, policy: CompactionPolicy
    ) -> Self:
        """Open an archive published to S3, for reading only: its files never move there
        (see `pipelines.core.publish`)."""
        if not read_only:
            raise ArchiveNotAFolderError(
                f"{root} is in object storage, where archives are read only: write to a "
                f"local folder, then `medlineplus-archive publish --to {root}`",
                path=root,
            )
        try:
            read_marker(root)
        except ArchiveNotFoundError as error:
            raise ArchiveNotFoundError(
                f"no archive at {root} (no {MARKER_FILE}); "
                f"`medlineplus-archive publish --to {root}` publishes one",
                path=root,
            ) from error
        return cls(root, _read_committed(root), lock=None, policy=policy)

    @property
    def path(self) -> Path:
        """The archive directory. An archive read from S3 has none: `root` is its prefix."""
        if isinstance(self.root, ObjectPath):
            raise ArchiveNotAFolderError(f"{self.root} is not a local folder", path=self.root)
        return self.root

    @property
    def read_only(self) -> bool:
        """True when opened without the lock."""
        return self._lock is None

    @property
    def manifests(self) -> tuple[RunManifest, ...]:
        """Manifests of the committed runs, oldest first (read on first use)."""
        parsed = self._committed.manifests
        for run_id in self._committed.run_ids:
            if run_id not in parsed:
                parsed[run_id] = load_manifest(self.root / RUNS_DIR / f"{run_id}.json")
        return tuple(parsed[run_id] for run_id in self._committed.run_ids)

    @property
    def run_ids(self) -> tuple[str, ...]:
        """Committed run ids, oldest first."""
        return tuple(self._committed.run_ids)

    @property
    def compaction_ids(self) -> tuple[str, ...]:
        """Committed compaction ids, in commit order."""
        return tuple(self._committed.compaction_ids)

    @property
    def compactions(self) -> tuple[CompactionManifest, ...]:
        """Manifests of the committed compactions, in commit order (read on first use)."""
        parsed = self._committed.compactions
        for name in self._committed.compaction_ids:
            if name not in parsed:
                parsed[name] = load_compaction(self.path / COMPACTIONS_DIR / f"{name}.json")
        return tuple(parsed[name] for name in self._committed.compaction_ids)

    def close(self) -> None:
        """Abort a run still open and release the lock. Safe to call twice."""
        if self._writer is not None:
            self._writer.abort()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint the committed state was read with (or last written), if any."""
        return self._committed.checkpoint

    def attachment(self, kind: Callable[[ArchiveStore], _Attached]) -> _Attached:
        """The `kind(self)` this store keeps for a layer above: made on first use, one per
        kind, told about every commit and compaction, and saved in checkpoints."""
        attached = self._attached.get(kind)
        if attached is None:
            attached = self._attached[kind] = kind(self)
        return cast(_Attached, attached)

    # reading

    def live_files(self, table: TableName, run_ids: Iterable[str] | None = None) -> list[LiveFile]:
        """The files of `table` readers use (holding rows of `run_ids`, when given), oldest
        runs first. A compacted file holds the rows of several runs."""
        files = self._committed.files.files(table)
        if run_ids is None:
            return files
        wanted = sorted(set(run_ids))
        return [live for live in files if _any_between(wanted, live.first_run, live.last_run)]

    def files(self, table: TableName, run_ids: Iterable[str] | None = None) -> list[ArchivePath]:
        """The committed files of `table` in use (holding rows of `run_ids`, when given),
        oldest run first. A compacted file may hold rows of other runs too."""
        return [self._resolve(live.entry.path) for live in self.live_files(table, run_ids)]

    def _resolve(self, relative: str) -> ArchivePath:
        """Where a committed file is: in its table directory, or in `_retired/` when a
        compaction committed after this store was opened has replaced it. Files published
        to S3 are never moved."""
        if isinstance(self.root, ObjectPath):
            return self.root / relative
        path = self.root / relative
        if not path.exists():
            retired = self.root / retired_path(relative)
            if retired.exists():
                return retired
        return path

    def read_table(
        self,
        table: TableName,
        *,
        columns: Sequence[str] | None = None,
        where: ds.Expression | None = None,
        run_ids: Iterable[str] | None = None,
    ) -> pa.Table:
        """Rows of `table` from committed runs (of `run_ids` only, when given), in run order,
        with the table's schema (even when empty)."""
        wanted = None if run_ids is None else sorted(set(run_ids))
        if wanted is not None:
            in_runs = ds.field(RUN_COLUMN[table]).isin(wanted)
            where = in_runs if where is None else where & in_runs
        return self._scan(table, self.live_files(table, wanted), columns, where)

    def read_columns(
        self,
        table: TableName,
        columns: Sequence[str],
        *,
        after: str | None = None,
        through: str | None = None,
    ) -> pa.Table:
        """`columns` of the rows of `table` in file order (row `i` of the files in use, one
        after the other), of runs after run `after` and up to run `through` when given.

        Read whole, each file's row count must be its manifest's: row positions matter to
        readers that index rows by position (`read_positions`).
        """
        files = self.live_files(table)
        where = None
        if after is not None:
            files = [live for live in files if live.last_run > after]
            where = ds.field(RUN_COLUMN[table]) > after
        if through is not None:
            files = [live for live in files if live.first_run <= through]
            until = ds.field(RUN_COLUMN[table]) <= through
            where = until if where is None else where & until
        schema = pa.schema([SCHEMAS[table].field(name) for name in columns])
        parts = []
        for live in files:
            path = self._resolve(live.entry.path)
            source, filesystem = pyarrow_source(path)
            try:
                part = pq.read_table(
                    source, columns=list(columns), filters=where, filesystem=filesystem
                )
            except (OSError, pa.ArrowInvalid) as error:
                raise ArchiveCorruptError(
                    f"cannot read {path}: {error}; run `medlineplus-archive verify`", path=path
                ) from error
            if where is None and part.num_rows != live.entry.rows:
                raise ArchiveCorruptError(
                    f"{path} holds {part.num_rows} rows, its manifest says "
                    f"{live.entry.rows}; run `medlineplus-archive verify`",
                    path=path,
                )
            parts.append(part.cast(schema))
        return pa.concat_tables(parts) if parts else schema.empty_table()

    def _scan(
        self,
        table: TableName,
        files: Sequence[LiveFile],
        columns: Sequence[str] | None,
        where: ds.Expression | None,
    ) -> pa.Table:
        sources = [pyarrow_source(self._resolve(live.entry.path)) for live in files]
        paths = [source for source, _ in sources]
        filesystem = sources[0][1] if sources else None
        try:
            dataset = ds.dataset(
                paths, schema=SCHEMAS[table], format="parquet", filesystem=filesystem
            )
            return dataset.to_table(columns=list(columns) if columns else None, filter=where)
        except (OSError, pa.ArrowInvalid) as error:
            raise ArchiveCorruptError(
                f"cannot read table {table} of {self.root}: {error}; "
                "run `medlineplus-archive verify`",
                path=self.root,
            ) from error

    def read_runs(
        self, table: TableName, run_ids: Iterable[str], *, columns: Sequence[str] | None = None
    ) -> pa.Table:
        """Rows of `table` in the row groups whose run_id statistics admit one of `run_ids`,
        in file order: a superset of the runs' rows (a row group may hold other runs too),
        read without decompressing the rest of the table."""
        schema = SCHEMAS[table]
        names = list(columns) if columns else schema.names
        wanted_runs = sorted(set(run_ids))
        pieces = []
        for live in self.live_files(table, wanted_runs):
            path = self._resolve(live.entry.path)
            source, filesystem = pyarrow_source(path)
            try:
                parquet = pq.ParquetFile(source, pre_buffer=True, filesystem=filesystem)
                groups = _row_groups_of_runs(parquet.metadata, wanted_runs)
                if groups:
                    pieces.append(parquet.read_row_groups(groups, columns=names))
            except (OSError, pa.ArrowInvalid) as error:
                raise ArchiveCorruptError(
                    f"cannot read {path}: {error}; run `medlineplus-archive verify`", path=path
                ) from error
        result_schema = pa.schema([schema.field(name) for name in names], metadata=schema.metadata)
        if not pieces:
            return result_schema.empty_table()
        return pa.concat_tables([piece.cast(result_schema) for piece in pieces])

    def read_positions(
        self,
        table: TableName,
        positions: pa.Array | Sequence[int],
        *,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """Rows of `table` at `positions` of its files in use (as `read_columns` numbers
        them), in that order. Only the row groups holding them are read."""
        schema = SCHEMAS[table]
        names = list(columns) if columns else schema.names
        result_schema = pa.schema([schema.field(name) for name in names], metadata=schema.metadata)
        wanted = np.asarray(pa.array(positions, pa.int64()).to_numpy(zero_copy_only=False))
        pieces, order = [], []
        start = 0
        for live in self.live_files(table):
            end = start + live.entry.rows
            mask = (wanted >= start) & (wanted < end)
            if mask.any():
                local = wanted[mask] - start
                pieces.append(self._read_rows_of(live, local, names).cast(result_schema))
                order.append(np.flatnonzero(mask))
            start = end
        if not pieces:
            return result_schema.empty_table()
        rows = pa.concat_tables(pieces)
        back = np.empty(len(wanted), dtype=np.int64)
        back[np.concatenate(order)] = np.arange(rows.num_rows)
        return rows.take(pa.array(back))

    def _read_rows_of(self, live: LiveFile, rows: np.ndarray, columns: list[str]) -> pa.Table:
        """Rows `rows` (positions in the file) of one file, reading only their row groups."""
        path = self._resolve(live.entry.path)
        source, filesystem = pyarrow_source(path)
        try:
            parquet = pq.ParquetFile(source, pre_buffer=True, filesystem=filesystem)
            metadata = parquet.metadata
            sizes = np.array(
                [metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)],
                dtype=np.int64,
            )
            bounds = np.concatenate([[0], np.cumsum(sizes)])
            groups = np.searchsorted(bounds, rows, side="right") - 1
            needed = np.unique(groups)
            read = parquet.read_row_groups([int(group) for group in needed], columns=columns)
        except (OSError, pa.ArrowInvalid) as error:
            raise ArchiveCorruptError(
                f"cannot read {path}: {error}; run `medlineplus-archive verify`", path=path
            ) from error
        # Position of each needed group's first row in what was read.
        read_start = np.zeros(len(bounds), dtype=np.int64)
        read_start[needed] = np.concatenate([[0], np.cumsum(sizes[needed])[:-1]])
        return read.take(pa.array(read_start[groups] + rows - bounds[groups]))

    # writing

    def begin_run(self, run_id: str, started_at: datetime) -> RunWriter:
        """Start writing run `run_id`; commit it with `RunWriter.commit`.

        `run_id` must sort after every committed run (see `new_run_id`). RunStateError
        after a commit of this store failed part-way: its files are in the table folders
        without a manifest, and only a new opening (recovery) may set them aside; a later
        run committed first would make them look like a lost manifest.
        """
        self._check_writable()
        if self._interrupted is not None:
            raise RunStateError(
                f"the commit of run {self._interrupted} failed part-way in {self.path}; "
                "reopen the archive for writing (recovery sets its files aside) before "
                "another run",
                path=self.path,
            )
        if self._writer is not None:
            raise RunStateError(
                f"run {self._writer.run_id} is still open in {self.path}; commit or abort it first",
                path=self.path,
            )
        try:
            check_run_id(run_id)
            started_at = _utc(started_at, "started_at")
        except ValueError as error:
            raise RunStateError(str(error), path=self.path) from error
        run_ids = self._committed.run_ids
        if run_ids and run_id <= run_ids[-1]:
            raise RunStateError(
                f"run id {run_id!r} does not sort after the last committed run "
                f"{run_ids[-1]!r} of {self.path}; check the system clock or "
                "let new_run_id() pick the id",
                path=self.path,
            )
        kept: dict[TableName, list[str]] = {}
        for state in self._attached.values():
            for table, columns in state.kept_columns.items():
                names = kept.setdefault(table, [])
                names.extend(name for name in columns if name not in names)
        staging = self.path / STAGING_DIR / run_id
        staging.mkdir(parents=True)
        self._writer = RunWriter(
            run_id, started_at, staging, self.path, kept_columns=kept, finished=self._run_finished
        )
        logger.info("run %s started in %s", run_id, self.path)
        return self._writer

    def _check_writable(self) -> None:
        if self._lock is None:
            raise RunStateError(
                f"{self.path} is open read-only; open it for writing to add runs", path=self.path
            )

    def _run_finished(
        self, writer: RunWriter, manifest: RunManifest | None, rows: Mapping[TableName, pa.Table]
    ) -> None:
        """What the store does when `writer` commits (`manifest`) or aborts (None): take
        the run into the committed state, tell the attached states, then show it to glob
        readers and compact."""
        if self._writer is writer:
            self._writer = None
        if manifest is None:
            if writer.moved_in:
                self._interrupted = writer.run_id
            return
        committed = self._committed
        committed.run_ids.append(manifest.run_id)
        committed.manifests[manifest.run_id] = manifest
        committed.files.add_run(manifest)
        for state in self._attached.values():
            try:
                state.committed(manifest, rows)
            except (ArchiveError, OSError, pa.ArrowException) as error:
                logger.warning(
                    "run %s is committed, but %s could not take it in (%s); it is "
                    "rebuilt from the tables when next used",
                    manifest.run_id,
                    type(state).__name__,
                    error,
                )
                state.reset()
        self._after_commit()

    def _after_commit(self) -> None:
        """Show the run to glob readers, then compact and checkpoint as the policy says; a
        failure here leaves the run committed and is logged (the next writer's recovery
        finishes or undoes it)."""
        try:
            self._publish_view()
        except (OSError, ArchiveError) as error:
            logger.warning(
                "could not show run %s in %s/current: %s; glob readers see the previous "
                "commit until the next crawl or `compact` rebuilds it",
                self._committed.run_ids[-1],
                self.path,
                error,
            )
        if not self.policy.automatic:
            return
        try:
            if self.policy.merge_on_commit:
                self.compact()
            else:
                self._checkpoint_when_due(self.policy, compacted=False)
        except (OSError, ArchiveError, pa.ArrowException) as error:
            logger.warning(
                "compacting %s after run %s failed: %s; the run is committed, and the next "
                "crawl recovers and compacts again",
                self.path,
                self._committed.run_ids[-1],
                error,
            )
            try:
                self._reload()
            except (OSError, ArchiveError) as reload_error:
                logger.error(
                    "could not read %s again after that: %s; reopen it before another run",
                    self.path,
                    reload_error,
                )

    def _publish_view(self) -> None:
        """Point `current/` at the files the committed state uses (`pipelines.core.glob_view`)."""
        committed = self._committed
        publish_view(
            self.path, committed.files, len(committed.run_ids), len(committed.compaction_ids)
        )

    def _reload(self) -> None:
        """Forget what is derived and read the committed state from disk again."""
        self._committed = _read_committed(self.path, writer=not self.read_only)
        for state in self._attached.values():
            state.reset()

    def compact(self, policy: CompactionPolicy | None = None) -> list[CompactionManifest]:
        """Run the merges `policy` (default: the store's) asks for, then write a checkpoint
        when one is due; returns the compactions committed. Writers only."""
        self._check_writable()
        if self._writer is not None:
            raise RunStateError(
                f"run {self._writer.run_id} is still open in {self.path}; commit or abort it first",
                path=self.path,
            )
        policy = policy or self.policy
        committed = self._committed
        done = []
        for merge in plan(committed.files, policy):
            manifest = run_merge(self.path, committed.files, merge)
            committed.files.apply_compaction(manifest)
            committed.compaction_ids.append(manifest.compaction_id)
            committed.compactions[manifest.compaction_id] = manifest
            done.append(manifest)
            # Compacted files keep the rows' order, but row positions are per file set.
            for state in self._attached.values():
                state.files_changed()
        if done:
            self._publish_view()
        self._checkpoint_when_due(policy, compacted=bool(done))
        return done

    def _checkpoint_when_due(self, policy: CompactionPolicy, *, compacted: bool) -> None:
        """Write a checkpoint after a compaction, or when `policy.checkpoint_every` runs
        have been committed since the last one."""
        committed = self._committed
        checkpointed = len(committed.checkpoint.run_ids) if committed.checkpoint else 0
        if compacted or len(committed.run_ids) - checkpointed >= policy.checkpoint_every:
            self.write_checkpoint()

    def write_checkpoint(self) -> Path | None:
        """Save a checkpoint of the committed state now, with the tables of the attached
        states (see `pipelines.core.catalog`); returns its directory, None for an archive
        without runs. Writers only."""
        self._check_writable()
        committed = self._committed
        if not committed.run_ids:
            return None
        derived: dict[str, pa.Table] = {}
        for state in self._attached.values():
            derived.update(state.checkpoint_tables())
        directory = write_checkpoint(
            self.path, committed.run_ids, committed.compaction_ids, committed.files, derived
        )
        committed.checkpoint = read_checkpoint(
            self.path, committed.run_ids, committed.compaction_ids
        )
        return directory

    # reading for the layers above

    @staticmethod
    def folder_exists(path: Path | str) -> bool:
        """Whether there is a folder at `path`: an archive, or one to make (False: nothing
        there yet). ArchiveNotAFolderError when `path` is a file or goes through one."""
        return archive_folder_exists(Path(path))

    def contains(self, path: Path) -> bool:
        """Whether `path` (symlinks followed) is inside the archive's folder; False for an
        archive in object storage."""
        if isinstance(self.root, ObjectPath):
            return False
        return path.resolve().is_relative_to(self.root.resolve())

    def read_response(self, location: WarcLocation) -> ArchivedResponse:
        """The response record at `location`, in a WARC file of the archive, its digests
        checked; ArchiveCorruptError when it is missing, not a response, or damaged."""
        return read_response(self.root / location.file, location.offset)


def _any_between(sorted_values: Sequence[str], low: str, high: str) -> bool:
    """True when some value of `sorted_values` lies in [low, high]."""
    index = bisect.bisect_left(sorted_values, low)
    return index < len(sorted_values) and sorted_values[index] <= high


def _row_groups_of_runs(metadata: pq.FileMetaData, runs: Sequence[str]) -> list[int]:
    """Row groups whose run_id statistics admit one of `runs` (sorted)."""
    column = next(
        (
            index
            for index in range(metadata.num_columns)
            if metadata.schema.column(index).path == "run_id"
        ),
        None,
    )
    groups = []
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        if row_group.num_rows == 0:
            continue
        statistics = row_group.column(column).statistics if column is not None else None
        if (
            statistics is None
            or not statistics.has_min_max
            or _any_between(runs, statistics.min, statistics.max)
        ):
            groups.append(group)
    return groups


def _prepare_directory(root: Path, *, create: bool) -> None:
    if (root / MARKER_FILE).exists():
        return
    if not create:
        read_marker(root)  # raises ArchiveNotFoundError
    root.mkdir(parents=True, exist_ok=True)
    foreign = sorted(
        entry.name for entry in root.iterdir() if not _is_allowed_before_creation(entry)
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ArchiveSchemaError(
            f"{root} is not empty and is not a medlineplus archive (it holds {shown}); "
            "pass a new or empty directory as --archive",
            path=root,
        )


def _create_layout(root: Path) -> None:
    for directory in (RUNS_DIR, STAGING_DIR, *TABLES):
        (root / directory).mkdir(exist_ok=True)
    write_json_atomically(
        root / MARKER_FILE,
        {
            "format": ARCHIVE_FORMAT,
            "schema_version": SCHEMA_VERSION,
            "created_at": datetime.now(UTC).isoformat(),
        },
    )
    logger.info("created archive %s (schema version %s)", root, SCHEMA_VERSION)


# --- writing one run ------------------------------------------------------------------

_WriterState = Literal["open", "committed", "aborted"]

RunFinished = Callable[["RunWriter", RunManifest | None, Mapping[TableName, pa.Table]], None]
"""Called once a run is committed (with its manifest and kept rows) or aborted (None)."""


class RunWriter:
    """Collects one run's rows, per table, and its WARC file, and commits them together;
    made by `ArchiveStore.begin_run`.

    Rows are checked as they are added (`add_rows`: an InvalidRecordError names the
    table, column and URL, and leaves the run as it was) and kept, or spilled to the
    run's staging files, until `commit` writes one file per table and the manifest. As a
    context manager, a run neither committed nor aborted is aborted on exit.
    """

    def __init__(
        self,
        run_id: str,
        started_at: datetime,
        staging: Path,
        root: Path,
        *,
        kept_columns: Mapping[TableName, Sequence[str]],
        finished: RunFinished,
    ) -> None:
        self.run_id = run_id
        """The run being written."""
        self.started_at = started_at
        """When it started (UTC)."""
        self._root = root
        self._staging = staging
        self._kept_columns = kept_columns
        self._finished = finished
        self._state: _WriterState = "open"
        self.moved_in = False
        """True once `commit` started moving the run's files out of staging, into the
        archive's folders: aborted from then on, they are left for recovery."""
        self._builders = {table: TableBuilder(table) for table in TABLES}
        self._warc: WarcFileWriter | None = None
        self._spilled: dict[TableName, pq.ParquetWriter] = {}
        """Tables whose rows went to their staging file as the run went (see SPILL_ROWS)."""
        self._spilled_rows: dict[TableName, int] = dict.fromkeys(TABLES, 0)
        self._spilled_kept: dict[TableName, list[pa.Table]] = {}
        """The kept columns of the rows spilled so far."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._state == "open":
            self.abort()

    def check_open(self, run_id: str | None = None) -> None:
        """RunStateError unless the run is open (and is run `run_id`, when given)."""
        if self._state != "open":
            raise RunStateError(f"run {self.run_id} is {self._state}; begin a new run")
        if run_id is not None and run_id != self.run_id:
            raise RunStateError(f"a row of run {run_id!r} was given to run {self.run_id!r}")

    def next_warc_location(self) -> WarcLocation:
        """Where the next exchange given to `add_rows` will be in the run's WARC file."""
        return self._warc_writer().next_location()

    def add_rows(
        self,
        rows: Mapping[TableName, Sequence[Any]],
        *,
        url: str | None = None,
        exchange: EncodedExchange | None = None,
    ) -> None:
        """Add records (of the tables' record types) to each table of `rows`, and
        `exchange` to the run's WARC file, all or nothing: every row is checked before
        anything is kept (an InvalidRecordError names `url`, the page they come from)."""
        self.check_open()
        prepared = [
            (table, _prepared(url, self._builders[table], records))
            for table, records in rows.items()
        ]
        if exchange is not None:
            self._warc_writer().append(exchange)
        for table, values in prepared:
            self._builders[table].extend(values)
            self._spill(table)

    def _spill(self, table: TableName) -> None:
        """Move `table`'s buffered rows to its staging file once there are SPILL_ROWS of
        them, so a crawl's memory does not grow with its size."""
        builder = self._builders[table]
        if len(builder) < SPILL_ROWS[table]:
            return
        rows = builder.to_table()
        writer = self._spilled.get(table)
        if writer is None:
            options = parquet_options(table, DICTIONARY_ALL_FROM_ROWS)
            writer = self._spilled[table] = pq.ParquetWriter(
                self._staging / f"{table}.parquet",
                SCHEMAS[table],
                compression=options["compression"],
                use_dictionary=options["use_dictionary"],
            )
        writer.write_table(rows, row_group_size=ROW_GROUP_ROWS.get(table))
        self._spilled_rows[table] += rows.num_rows
        if table in self._kept_columns:
            kept = rows.select(list(self._kept_columns[table])).combine_chunks()
            self._spilled_kept.setdefault(table, []).append(kept)
        self._builders[table] = TableBuilder(table)

    def _stage_table(self, table: TableName) -> tuple[ManifestFile, pa.Table | None]:
        """Write `table`'s staging file; its manifest entry, and its kept columns
        (None for a table none are kept of)."""
        rows = self._builders[table].to_table()
        staged = self._staging / f"{table}.parquet"
        writer = self._spilled.pop(table, None)
        if writer is None:
            sha256, size = write_file_durably(staged, parquet_bytes(rows, table))
        else:
            if rows.num_rows:
                writer.write_table(rows, row_group_size=ROW_GROUP_ROWS.get(table))
            writer.close()
            with staged.open("rb") as stream:
                os.fsync(stream.fileno())
            sha256, size = file_digest(staged)
        count = self._spilled_rows[table] + rows.num_rows
        spilled = self._spilled_kept.pop(table, [])
        kept = None
        if table in self._kept_columns:
            kept = pa.concat_tables([*spilled, rows.select(list(self._kept_columns[table]))])
        entry = ManifestFile(
            table=table, path=part_path(table, self.run_id), rows=count, bytes=size, sha256=sha256
        )
        return entry, kept

    def _warc_writer(self) -> WarcFileWriter:
        if self._warc is None:
            self._warc = WarcFileWriter(self._staging / "run.warc.gz", warc_path(self.run_id))
        return self._warc

    def _stage_warc(self) -> ManifestFile | None:
        """Close the run's WARC file, if any, and describe it for the manifest."""
        if self._warc is None:
            return None
        self._warc.close()
        staged = self._warc.path
        sha256, size = file_digest(staged)
        with staged.open("rb") as stream:
            os.fsync(stream.fileno())
        return ManifestFile(
            table="warc",
            path=self._warc.relative_name,
            rows=self._warc.records,
            bytes=size,
            sha256=sha256,
        )

    def commit(self, run: RunRecord) -> RunManifest:
        """Write the run's files and commit it with its manifest (`run` its runs row);
        returns the manifest.

        Then the store compacts and checkpoints as its policy says (a failure there is
        logged: the run stays committed).
        """
        self.check_open(run.run_id)
        self.add_rows({"runs": [run]})
        root = self._root
        staged_tables = [self._stage_table(table) for table in TABLES]
        entries = [entry for entry, _ in staged_tables]
        warc = self._stage_warc()
        fsync_dir(self._staging)
        self.moved_in = True
        if warc is not None:
            (root / WARC_DIR).mkdir(exist_ok=True)
            (self._staging / "run.warc.gz").replace(root / warc.path)
            fsync_dir(root / WARC_DIR)
        move_into_tables(
            root,
            [(self._staging / f"{entry.table}.parquet", entry.path) for entry in entries],
            f"run {self.run_id}",
        )
        manifest = RunManifest(
            run_id=self.run_id,
            schema_version=SCHEMA_VERSION,
            committed_at=datetime.now(UTC),
            files=tuple(entries),
            run=run,
            warc=warc,
        )
        write_json_atomically(root / RUNS_DIR / f"{self.run_id}.json", manifest.to_json())
        # Committed. Leftovers from here on are harmless; recovery quarantines them.
        self._state = "committed"
        self._builders = {table: TableBuilder(table) for table in TABLES}
        try:
            self._staging.rmdir()
        except OSError as error:
            logger.warning("could not remove %s: %s", self._staging, error)
        logger.info(
            "run %s committed to %s: %s",
            self.run_id,
            root,
            ", ".join(f"{entry.table} {entry.rows}" for entry in entries),
        )
        kept = {
            table: rows
            for table, (_, rows) in zip(TABLES, staged_tables, strict=True)
            if rows is not None
        }
        self._finished(self, manifest, kept)
        return manifest

    def abort(self) -> None:
        """Forget the run: nothing of it is committed. Safe to call twice."""
        if self._state == "committed":
            raise RunStateError(f"run {self.run_id} is already committed; it cannot be aborted")
        if self._state == "open":
            # The run's files are deleted: what a full disk kept from them is lost anyway.
            for writer in [self._warc, *self._spilled.values()]:
                if writer is not None:
                    with contextlib.suppress(OSError):
                        writer.close()
            self._spilled = {}
            try:
                shutil.rmtree(self._staging)
            except OSError as error:
                # Nothing of the run is committed either way; recovery quarantines it.
                logger.warning("could not remove %s: %s", self._staging, error)
            self._state = "aborted"
            self._builders = {table: TableBuilder(table) for table in TABLES}
            self._finished(self, None, {})
            logger.info("run %s aborted", self.run_id)


def _prepared(url: str | None, builder: TableBuilder, rows: Sequence[Any]) -> list[list[Any]]:
    """`builder.prepare(rows)`, with the page's URL added to a conversion error."""
    try:
        return builder.prepare(rows)
    except InvalidRecordError as error:
        raise InvalidRecordError(error.table, error.column, error.reason, url=url) from error
