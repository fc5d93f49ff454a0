"""Recovery of an archive opened for writing: roll back a crash by moving it aside.

A writer that was killed leaves files no manifest commits: its staging directory, a
temporary manifest, and (killed while committing) the run's parts in the table
directories and its WARC file. Those belong to the newest run, whose id sorts after every
committed run (run ids are refused unless they do, see `pipelines.core.store`), or to a
compaction that was never committed. Recovery moves them, keeping their paths, into one
folder per recovery, `_quarantine/<stamp>/`, outside the table directories (so readers,
globs of a table directory and `verify` do not see them), and logs a warning per file.
No data file is deleted: what to do with a quarantined file is the owner's call (only
unfinished checkpoints, derived from the tables, are removed).

Data files of a run id *older* than the last committed run, with no manifest, are not a
crash: that run's manifest was lost (a mistaken cleanup, a bad restore). Recovery then
refuses before moving anything (`LostManifestError`); `pipelines.core.repair` rebuilds the
manifest from the files. So is a run without a manifest whose parts a committed compaction
merged (its inputs name them), however new: its parts are then in `_retired/` (until
`vacuum` deletes them), and no reader can open the archive, since the compaction's inputs
are not files in use (`pipelines.core.store` names the run).

Recovery also finishes what a committed compaction began: the files it replaced that are
still in a table directory move to `_retired/`.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.core.catalog import FileSet
from pipelines.core.catalog import remove_temporary_checkpoints as _remove_temporary_checkpoints
from pipelines.core.compaction import retire_inputs
from pipelines.core.errors import LostManifestError
from pipelines.core.layout import (
    COMPACTIONS_DIR,
    QUARANTINE_DIR,
    RETIRED_DIR,
    RUNS_DIR,
    STAGING_DIR,
    VACUUMED_DIR,
    compacted_id,
    fsync_dir,
    load_compaction,
    part_run_id,
    retired_path,
)
from pipelines.core.records import CompactionManifest, ManifestFile
from pipelines.core.schema import TABLES
from pipelines.core.warc import WARC_DIR

logger = logging.getLogger(__name__)

_WARC_SUFFIX = ".warc.gz"


def warc_run_id(file_name: str) -> str | None:
    """The run id of a run's WARC file name ("<run_id>.warc.gz"), None for other names."""
    if not file_name.endswith(_WARC_SUFFIX) or file_name.startswith("."):
        return None
    return file_name.removesuffix(_WARC_SUFFIX)


def run_data_files(root: Path) -> dict[str, list[str]]:
    """Per run id, the data files named after it in the table directories and `warc/`
    (paths relative to the archive root), committed or not."""
    found: dict[str, list[str]] = {}
    for table in TABLES:
        for name in _names(root / table):
            run_id = part_run_id(name)
            if run_id is not None:
                found.setdefault(run_id, []).append(f"{table}/{name}")
    for name in _names(root / WARC_DIR):
        run_id = warc_run_id(name)
        if run_id is not None:
            found.setdefault(run_id, []).append(f"{WARC_DIR}/{name}")
    return found


def compacted_runs(compactions: Iterable[CompactionManifest]) -> dict[str, list[ManifestFile]]:
    """Per run whose parts `compactions` merged, those parts as the run's manifest
    listed them (their paths in the table directories, `<table>/part-<run_id>.parquet`)."""
    found: dict[str, list[ManifestFile]] = {}
    for compaction in compactions:
        for part in compaction.tables:
            for entry in part.inputs:
                run_id = part_run_id(entry.path.rpartition("/")[2])
                if run_id is not None:
                    found.setdefault(run_id, []).append(entry)
    return found


def lost_runs(
    root: Path, run_ids: Sequence[str], compactions: Iterable[CompactionManifest] = ()
) -> dict[str, list[str]]:
    """Runs whose manifest was lost: per run id without a manifest in `run_ids` that is
    older than the last committed run or whose parts one of the committed `compactions`
    merged, its data files that are there (relative paths; a merged part that was
    retired is at `_retired/<table>/part-<run_id>.parquet`, one that was vacuumed is
    not listed)."""
    committed = set(run_ids)
    last = max(run_ids, default=None)
    found = {
        run_id: files
        for run_id, files in run_data_files(root).items()
        if run_id not in committed and last is not None and run_id < last
    }
    merged = {
        run_id: entries
        for run_id, entries in compacted_runs(compactions).items()
        if run_id not in committed
    }
    for run_id, entries in merged.items():
        files = found.setdefault(run_id, [])
        files.extend(
            retired_path(entry.path)
            for entry in entries
            if entry.path not in files and (root / retired_path(entry.path)).is_file()
        )
        warc = f"{WARC_DIR}/{run_id}{_WARC_SUFFIX}"
        if warc not in files and (root / warc).is_file():
            files.append(warc)
    return {run_id: sorted(files) for run_id, files in sorted(found.items())}


def check_no_lost_runs(
    root: Path, run_ids: Sequence[str], compactions: Iterable[CompactionManifest] = ()
) -> None:
    """LostManifestError when a run older than the last committed one, or one whose
    parts a committed compaction merged, has no manifest."""
    lost = lost_runs(root, run_ids, compactions)
    if lost:
        raise LostManifestError(root, lost)


@dataclass(frozen=True, slots=True)
class QuarantineBatch:
    """One recovery's quarantine folder."""

    path: str
    """Its path relative to the archive root, "_quarantine/<stamp>"."""
    files: int
    """How many files it holds."""


def quarantine_batches(root: Path) -> list[QuarantineBatch]:
    """The quarantine folders of the archive at `root`, oldest first."""
    base = root / QUARANTINE_DIR
    if not base.is_dir():
        return []
    batches = []
    for batch in sorted(base.iterdir()):
        if batch.is_dir():
            count = sum(len(names) for _, _, names in os.walk(batch))
            batches.append(QuarantineBatch(f"{QUARANTINE_DIR}/{batch.name}", count))
    return batches


class _Quarantine:
    """Moves files into `_quarantine/<stamp>/` under their relative path, made on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._batch: Path | None = None

    def move(self, path: Path, why: str) -> None:
        relative = path.relative_to(self.root)
        if self._batch is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            self._batch = self.root / QUARANTINE_DIR / f"{stamp}-{secrets.token_hex(2)}"
        target = self._batch / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
        fsync_dir(target.parent)
        fsync_dir(path.parent)
        logger.warning("moved %s to %s: %s", path, target, why)


def recover(
    root: Path,
    *,
    run_ids: Sequence[str],
    compaction_ids: Sequence[str],
    files: FileSet,
    compactions: dict[str, CompactionManifest],
) -> None:
    """Roll back what was never committed and finish what was, in the archive at `root`
    (locked by the caller) whose committed state is `run_ids`, `compaction_ids` and the
    file set `files`; `compactions` caches compaction manifests already parsed (filled in).

    LostManifestError, before anything moves, when a run older than the last committed
    one has files but no manifest.
    """
    check_no_lost_runs(root, run_ids)
    quarantine = _Quarantine(root)
    for entry in _entries(root / STAGING_DIR):
        quarantine.move(entry, "staging of a run or compaction never committed")
    for entry in _remove_temporary_checkpoints(root):
        logger.warning("removed %s: a checkpoint that was never completed", entry)
    for manifests in (RUNS_DIR, COMPACTIONS_DIR, VACUUMED_DIR):
        base = root / manifests
        for temporary in sorted(base.glob(".*.tmp")) if base.is_dir() else ():
            quarantine.move(temporary, "a manifest that was never completed")
    runs = set(run_ids)
    for name in _names(root / WARC_DIR):
        owner = warc_run_id(name)
        if owner is not None and owner not in runs:
            quarantine.move(root / WARC_DIR / name, f"left by run {owner}, never committed")
    live = files.paths()
    committed_compactions = set(compaction_ids)
    replaced: Mapping[str, CompactionManifest] | None = None
    for table in TABLES:
        for name in _names(root / table):
            relative = f"{table}/{name}"
            if relative in live or name.startswith("."):
                continue
            run_id, compaction = part_run_id(name), compacted_id(name)
            if (run_id is not None and run_id not in runs) or (
                compaction is not None and compaction not in committed_compactions
            ):
                owner = f"run {run_id}" if run_id is not None else f"compaction {compaction}"
                quarantine.move(root / relative, f"left by {owner}, never committed")
                continue
            if run_id is None and compaction is None:
                continue
            if replaced is None:
                replaced = _replaced_files(root, compaction_ids, compactions)
            retiring = replaced.get(relative)
            if retiring is not None:
                retire_inputs(root, retiring)
                logger.warning(
                    "moved %s to %s: compaction %s replaced it",
                    root / relative,
                    RETIRED_DIR,
                    retiring.compaction_id,
                )


def _replaced_files(
    root: Path, compaction_ids: Sequence[str], compactions: dict[str, CompactionManifest]
) -> Mapping[str, CompactionManifest]:
    """Per path replaced by a committed compaction, that compaction."""
    replaced = {}
    for compaction in compaction_ids:
        manifest = compactions.get(compaction)
        if manifest is None:
            manifest = load_compaction(root / COMPACTIONS_DIR / f"{compaction}.json")
            compactions[compaction] = manifest
        for part in manifest.tables:
            for entry in part.inputs:
                replaced[entry.path] = manifest
    return replaced


def _entries(directory: Path) -> Iterator[Path]:
    if directory.is_dir():
        yield from sorted(directory.iterdir())


def _names(directory: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in directory.iterdir())
    except FileNotFoundError:
        return []
