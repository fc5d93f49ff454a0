"""Compaction: merge runs' small files into few large ones, tiered by run count.

A run writes one small file per table; ten years of daily runs would be ~22,000 files,
and every read would open them all. After a commit, `plan` looks at the files in use
(`FileSet`), which always run from the highest level to level 0, oldest runs first:
whenever `fanout` consecutive files of one level have accumulated, they are merged into
one file of the next level, for every table at once (so every table's files cover the
same runs). With the default fanout of 16, ten years are ~15 level-2 files (256 runs
each), up to 15 level-1 files and 15 runs' own files per table; each row is rewritten
at most twice.

A merge (`run_merge`) never changes a committed file. In order:

1. each input is read and checked against its sha256 (a damaged file is never copied
   into a fresh one), its rows promoted to the current schema (inputs may be files of
   older schema versions, see `pipelines.core.schema`), concatenated in run order and written,
   fsync'ed, to `_staging/<compaction_id>/<table>.parquet` (one file per table, even
   when no input has one: runs older than a table have no file of it);
2. each new file is moved into its table directory (`<table>/compacted-<id>.parquet`);
3. `_compactions/<id>.json` is written atomically: the commit point;
4. each input is moved from its table directory to `_retired/<table>/` (deleted only by
   `pipelines.core.vacuum`, days later);
5. the staging directory is removed.

A merge killed before step 3 never happened: recovery quarantines its staging files and the
compacted files that no manifest lists. Killed after step 3, it happened: readers use
the compacted files (from the manifests), and recovery finishes step 4. Between steps 2
and 4 a table directory holds some rows twice; readers that follow the manifests never
read them so, and glob readers read `current/` (`pipelines.core.glob_view`), which the store
swaps to the merged files only once its merges are committed.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.catalog import FileSet, LiveFile
from pipelines.core.errors import ArchiveCorruptError
from pipelines.core.layout import (
    COMPACTIONS_DIR,
    STAGING_DIR,
    compacted_path,
    fsync_dir,
    move_into_tables,
    parquet_bytes,
    retired_path,
    write_file_durably,
    write_json_atomically,
)
from pipelines.core.records import CompactedTable, CompactionManifest, ManifestFile
from pipelines.core.schema import (
    SCHEMA_VERSION,
    SCHEMAS,
    TABLE_ADDED_IN,
    TABLES,
    is_table_name,
    promote,
)

logger = logging.getLogger(__name__)


DEFAULT_COMPACT_EVERY = 16
"""Runs' files merged into one, by default (the setting ARCHIVE_COMPACT_EVERY)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CompactionPolicy:
    """When to compact and checkpoint."""

    fanout: int = DEFAULT_COMPACT_EVERY
    """Merge this many consecutive files of one level into one file of the next level."""
    automatic: bool = True
    """Compact (and checkpoint) right after each commit; otherwise only on `compact()`."""
    checkpoint_every: int = 16
    """Write a checkpoint after a compaction, and at the latest after this many runs."""
    merge_on_commit: bool = True
    """With `automatic`, merge files after each commit too; False only checkpoints then
    (files are merged by an explicit `compact()`: the `compact` command)."""

    def __post_init__(self) -> None:
        if self.fanout < 2:
            raise ValueError(f"fanout must be at least 2, not {self.fanout}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, not {self.checkpoint_every}")


DEFAULT_POLICY = CompactionPolicy()
MANUAL_ONLY = CompactionPolicy(automatic=False)
"""Never compact or checkpoint on commit (tests, and archives kept one file per run)."""


def policy_every(runs: int) -> CompactionPolicy:
    """The policy of the crawl setting ARCHIVE_COMPACT_EVERY: merge `runs` (>= 2)
    consecutive files into one after each commit, or (0) never merge on commit, leaving
    it to the `compact` command (checkpoints are still written). ValueError otherwise."""
    if runs == 0:
        return CompactionPolicy(merge_on_commit=False)
    if runs < 2:
        raise ValueError(f"must be 0 (never) or at least 2, not {runs}")
    return CompactionPolicy(fanout=runs)


@dataclass(frozen=True, slots=True)
class Unit:
    """Runs whose rows are in one file per table."""

    first_run: str
    last_run: str
    level: int


@dataclass(frozen=True, slots=True)
class Merge:
    """One planned compaction: consecutive units of one level into one of the next."""

    compaction_id: str
    level: int
    """The level made."""
    units: tuple[Unit, ...]

    @property
    def first_run(self) -> str:
        return self.units[0].first_run

    @property
    def last_run(self) -> str:
        return self.units[-1].last_run


def compaction_id(last_run: str, level: int) -> str:
    """The id of the level-`level` compaction ending with `last_run`; sorts in commit order
    (a merge's inputs are made by compactions with smaller ids)."""
    return f"{last_run}-L{level:02d}"


def _units_of(files: Sequence[LiveFile]) -> list[Unit]:
    return [Unit(live.first_run, live.last_run, live.level) for live in files]


def _covers(table: str, table_units: list[Unit], expected: Sequence[Unit]) -> bool:
    """True when `table`'s units are `expected`, but, for a table added by a later schema
    version, for runs committed before it (level-0 units: a compaction writes a file of
    every table)."""
    if table not in TABLE_ADDED_IN:
        return table_units == list(expected)
    present = set(table_units)
    return table_units == [unit for unit in expected if unit in present] and all(
        unit.level == 0 for unit in expected if unit not in present
    )


def units(files: FileSet) -> list[Unit] | None:
    """The run groups of the file set (those of the runs table, which every run commits),
    None when the tables disagree (damaged manifests)."""
    found = _units_of(files.files("runs"))
    if not all(_covers(table, _units_of(files.files(table)), found) for table in TABLES):
        return None
    return found


def plan(files: FileSet, policy: CompactionPolicy) -> list[Merge]:
    """The merges `policy` asks for, in the order to run them (by compaction id)."""
    current = units(files)
    if current is None:
        logger.warning("not compacting: the tables' files cover different runs; run verify")
        return []
    merges: list[Merge] = []
    level = 0
    while any(unit.level >= level for unit in current):
        block = [index for index, unit in enumerate(current) if unit.level == level]
        while len(block) >= policy.fanout:
            chosen = block[: policy.fanout]
            group = tuple(current[index] for index in chosen)
            if chosen != list(range(chosen[0], chosen[0] + len(chosen))):
                logger.warning("not compacting level %s: its files are not consecutive", level)
                break
            merged = Unit(group[0].first_run, group[-1].last_run, level + 1)
            merges.append(Merge(compaction_id(merged.last_run, merged.level), level + 1, group))
            current = [*current[: chosen[0]], merged, *current[chosen[-1] + 1 :]]
            block = [index for index, unit in enumerate(current) if unit.level == level]
        level += 1
    return sorted(merges, key=lambda merge: merge.compaction_id)


def read_checked(root: Path, entry: ManifestFile) -> pa.Table:
    """The rows of a committed file, after checking its bytes against their sha256."""
    path = root / entry.path
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    if (sha256, len(data)) != (entry.sha256, entry.bytes):
        raise ArchiveCorruptError(
            f"{path} changed since it was committed (sha256 {sha256[:12]}...); "
            "not compacting it: run `medlineplus-archive verify`",
            path=path,
        )
    rows = pq.read_table(pa.BufferReader(data))
    if not is_table_name(entry.table):
        raise ArchiveCorruptError(f"{path}: unknown table {entry.table!r}", path=path)
    if rows.num_rows != entry.rows:
        raise ArchiveCorruptError(
            f"{path} holds {rows.num_rows} rows, its manifest says {entry.rows}", path=path
        )
    try:
        return promote(entry.table, rows)
    except ValueError as error:
        raise ArchiveCorruptError(f"{path}: {error}; not compacting it", path=path) from error


def _inputs(files: FileSet, table: str, merge: Merge) -> list[LiveFile]:
    """The files of `table` the merge replaces; none for runs older than the table."""
    chosen = [
        live
        for live in files.files(table)
        if merge.first_run <= live.first_run and live.last_run <= merge.last_run
    ]
    if not _covers(table, _units_of(chosen), merge.units):
        raise ArchiveCorruptError(
            f"compaction {merge.compaction_id}: the {table} files in use do not match the plan"
        )
    return chosen


def run_merge(root: Path, files: FileSet, merge: Merge) -> CompactionManifest:
    """Run one planned merge (see the module docstring); returns its committed manifest.

    ArchiveCorruptError when an input is damaged; nothing is committed then.
    """
    staging = root / STAGING_DIR / merge.compaction_id
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    parts: list[CompactedTable] = []
    try:
        for table in TABLES:
            inputs = _inputs(files, table, merge)
            rows = pa.concat_tables(
                [SCHEMAS[table].empty_table(), *(read_checked(root, live.entry) for live in inputs)]
            )
            sha256, size = write_file_durably(
                staging / f"{table}.parquet", parquet_bytes(rows.combine_chunks(), table)
            )
            output = ManifestFile(
                table=table,
                path=compacted_path(table, merge.compaction_id),
                rows=rows.num_rows,
                bytes=size,
                sha256=sha256,
            )
            parts.append(
                CompactedTable(
                    table=table, inputs=tuple(live.entry for live in inputs), output=output
                )
            )
    except (OSError, ArchiveCorruptError, pa.ArrowException):
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(staging)
    move_into_tables(
        root,
        [(staging / f"{part.table}.parquet", part.output.path) for part in parts],
        f"compaction {merge.compaction_id}",
    )
    manifest = CompactionManifest(
        compaction_id=merge.compaction_id,
        schema_version=SCHEMA_VERSION,
        committed_at=datetime.now(UTC),
        level=merge.level,
        first_run=merge.first_run,
        last_run=merge.last_run,
        tables=tuple(parts),
    )
    compactions = root / COMPACTIONS_DIR
    compactions.mkdir(exist_ok=True)
    write_json_atomically(compactions / f"{merge.compaction_id}.json", manifest.to_json())
    # Committed. What follows is finished by recovery if it is interrupted.
    retire_inputs(root, manifest)
    shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "compaction %s: %s runs (%s to %s) merged into level %s",
        merge.compaction_id,
        len(merge.units),
        merge.first_run,
        merge.last_run,
        merge.level,
    )
    return manifest


def retire_inputs(root: Path, manifest: CompactionManifest) -> list[str]:
    """Move the inputs of a committed compaction still in their table directories to
    `_retired/`; returns the paths moved."""
    moved = []
    for part in manifest.tables:
        touched: set[Path] = set()
        for entry in part.inputs:
            source = root / entry.path
            if not source.exists():
                continue
            target = root / retired_path(entry.path)
            if target.exists():
                logger.warning(
                    "%s is retired by compaction %s but %s already exists; left in place",
                    source,
                    manifest.compaction_id,
                    target,
                )
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source.replace(target)
            touched.update((source.parent, target.parent))
            moved.append(entry.path)
        for directory in sorted(touched):
            fsync_dir(directory)
    return moved
