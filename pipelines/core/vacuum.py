"""Vacuum: delete the retired files no reader needs any more (`vacuum(store, ...)`).

A compaction moves the files it replaced to `_retired/` (`pipelines.core.compaction`), and
nothing else ever deletes them: about three times the size of the files in use after
ten years. Readers that follow the manifests never read them, except one that opened
the archive before the compaction was committed (it finds them in `_retired/`). So a
retired file is deleted only when its compaction was committed more than `retain_days`
days ago; the age is the compaction's, not the file's own (a file written by a run
years ago may have been retired today).

Never deleted: a file in use (one that the committed runs and compactions leave readers
reading), anything in `_retired/` that no committed compaction replaced, anything
outside `_retired/`. In order, under the write lock:

1. the archive is verified (`verify_archive`: every file in use hashed); a damaged
   archive is refused, since a retired file may then hold the only good copy of rows;
2. `_vacuumed/<vacuum_id>.json` lists the files about to be deleted, with their committed
   size and sha256, so that `verify` tells them from files lost;
3. the files are deleted.

Killed between 2 and 3, the files listed and still there are harmless (verify passes) and
the next vacuum deletes them.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines.core.errors import ArchiveCorruptError, RunStateError
from pipelines.core.glob_view import current_generation, prune_views
from pipelines.core.layout import VACUUMED_DIR, fsync_dir, retired_path, write_json_atomically
from pipelines.core.records import ManifestFile, VacuumRecord
from pipelines.core.schema import TABLES
from pipelines.core.store import ArchiveStore
from pipelines.core.verify import verify_archive

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VacuumResult:
    """What a vacuum deleted (or, dry, would delete) and what it kept."""

    freed: tuple[ManifestFile, ...]
    """Retired files deleted (paths as committed; they were under `_retired/`)."""
    kept: tuple[ManifestFile, ...]
    """Retired files kept: their compaction is fewer than `retain_days` days old."""
    record: Path | None
    """The vacuum record written; None when nothing was deleted (or on a dry run)."""

    @property
    def freed_bytes(self) -> int:
        return sum(entry.bytes for entry in self.freed)

    @property
    def kept_bytes(self) -> int:
        return sum(entry.bytes for entry in self.kept)


def vacuum(
    store: ArchiveStore,
    *,
    retain_days: int,
    now: datetime | None = None,
    dry_run: bool = False,
) -> VacuumResult:
    """Delete the retired files of compactions committed more than `retain_days` days
    before `now` (default: the current time); with `dry_run`, only say which.

    `store` must be open for writing (it holds the lock). ArchiveCorruptError, deleting
    nothing, when `verify_archive` finds a problem.
    """
    if store.read_only:
        raise RunStateError(
            f"{store.path} is open read-only; open it for writing to vacuum", path=store.path
        )
    if retain_days < 0:
        raise ValueError(f"retain_days must be at least 0, not {retain_days}")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    root = store.path
    problems = verify_archive(root)
    if problems:
        raise ArchiveCorruptError(
            f"{root} has {len(problems)} problem{'s' if len(problems) != 1 else ''} "
            f"({problems[0]}); nothing deleted: run `medlineplus-archive verify`",
            path=root,
        )
    in_use = {live.entry.path for table in TABLES for live in store.live_files(table)}
    cutoff = moment - timedelta(days=retain_days)
    freed: dict[str, ManifestFile] = {}
    kept: dict[str, ManifestFile] = {}
    for compaction in store.compactions:
        old_enough = compaction.committed_at <= cutoff
        for part in compaction.tables:
            for entry in part.inputs:
                if entry.path in in_use or not (root / retired_path(entry.path)).is_file():
                    continue
                (freed if old_enough else kept)[entry.path] = entry
    result = VacuumResult(tuple(freed.values()), tuple(kept.values()), None)
    if dry_run or not freed:
        return result
    record = VacuumRecord(
        vacuum_id=f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}",
        vacuumed_at=moment,
        retain_days=retain_days,
        files=result.freed,
    )
    directory = root / VACUUMED_DIR
    directory.mkdir(exist_ok=True)
    path = directory / f"{record.vacuum_id}.json"
    write_json_atomically(path, record.to_json())
    # The generation before the current view may link retired files: it goes first, or
    # their bytes would outlive the deletion.
    current = current_generation(root)
    prune_views(root, keep=set() if current is None else {current})
    touched = set()
    for entry in result.freed:
        retired = root / retired_path(entry.path)
        retired.unlink()
        touched.add(retired.parent)
    for parent in sorted(touched):
        fsync_dir(parent)
    logger.info(
        "vacuum %s: deleted %s retired files (%s bytes)",
        record.vacuum_id,
        len(result.freed),
        result.freed_bytes,
    )
    return VacuumResult(result.freed, result.kept, path)
