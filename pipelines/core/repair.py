"""Rebuild the lost manifest of a run from its files: `repair_archive(path)`.

A run whose manifest was deleted (a mistaken cleanup, a bad restore) still has its files:
one Parquet part per table, `<table>/part-<run_id>.parquet`, and maybe its WARC file,
`warc/<run_id>.warc.gz`. Readers ignore them and writers refuse to open the archive
(`pipelines.core.recovery`). When a committed compaction merged the run's parts, they are
in `_retired/<table>/part-<run_id>.parquet` (until `vacuum` deletes them) and neither
readers nor writers open the archive; the manifest rebuilt lists them at their original
paths, as the commit did, and must agree with the compaction's inputs (rows, bytes,
sha256). A run whose merged parts were vacuumed cannot be rebuilt: its manifest must be
restored from a backup. `repair_archive` checks those files as the commit made them and
writes the manifest the commit would have written:

* one part per table of the run's schema version, every part of that version, with the
  columns of its table's schema of that version;
* every row's run_id is the run's; the runs part holds exactly the run's record, which
  becomes the manifest's `run`;
* every topics row that points to a WARC record points into the run's own WARC file, at
  a response record whose digests hold; every response record's digests hold;
* row counts and sha256 digests are taken from the files (the WARC file's "rows" are
  its records).

Nothing is written unless every lost run passes: `RepairRefusedError` names the first
file at fault. The manifests are written atomically, under the write lock. Only
manifests are added: no data file is moved or rewritten. `committed_at` is the time of
the repair (the original is lost with the manifest).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from pipelines.core.errors import ArchiveNotFoundError, RepairRefusedError
from pipelines.core.layout import (
    COMPACTIONS_DIR,
    RETIRED_DIR,
    RUNS_DIR,
    archive_folder_exists,
    check_schema_version,
    file_digest,
    json_names,
    load_compaction,
    part_path,
    read_marker,
    retired_path,
    write_json_atomically,
)
from pipelines.core.lock import write_locked
from pipelines.core.records import ManifestFile, RunManifest, RunRecord, decode_dataclass
from pipelines.core.recovery import compacted_runs, lost_runs
from pipelines.core.schema import file_schema_version, is_table_name, version_schema, version_tables
from pipelines.core.warc import warc_path

logger = logging.getLogger(__name__)

_RUN_COLUMNS = {"journal_articles": "first_seen_run"}
"""The column naming the run that wrote a row, where it is not "run_id"."""


def repair_archive(path: Path | str) -> list[RunManifest]:
    """Rebuild the manifest of every run of the archive at `path` whose manifest was lost;
    returns the manifests written, oldest run first (empty: nothing to repair).

    RepairRefusedError, with nothing written, when a lost run's files are damaged or
    inconsistent; ArchiveNotFoundError when there is no archive; ArchiveLockedError
    while a crawl is writing.
    """
    root = Path(path)
    if not archive_folder_exists(root):
        raise ArchiveNotFoundError(f"no archive at {root} (no such directory)", path=root)
    read_marker(root)
    with write_locked(root):
        compactions = [
            load_compaction(root / COMPACTIONS_DIR / f"{name}.json")
            for name in json_names(root / COMPACTIONS_DIR)
        ]
        merged = compacted_runs(compactions)
        lost = lost_runs(root, json_names(root / RUNS_DIR), compactions)
        manifests = [
            rebuild_manifest(root, run_id, files, merged.get(run_id, []))
            for run_id, files in lost.items()
        ]
        for manifest in manifests:
            write_json_atomically(root / RUNS_DIR / f"{manifest.run_id}.json", manifest.to_json())
            logger.warning(
                "rebuilt the manifest of run %s from its %s files",
                manifest.run_id,
                len(manifest.files) + (manifest.warc is not None),
            )
    return manifests


def rebuild_manifest(
    root: Path, run_id: str, files: list[str], merged: Sequence[ManifestFile] = ()
) -> RunManifest:
    """The manifest of run `run_id` rebuilt from its data `files` (relative paths; a
    part a compaction merged and retired is at `_retired/<table>/part-<run_id>.parquet`),
    all checked; RepairRefusedError naming the file at fault. `merged` are the run's
    parts as the compactions that merged them list them: the rebuilt manifest lists
    them at those (their original) paths, with the same rows, bytes and sha256, and
    refuses when they were vacuumed or differ."""
    parts: dict[str, _Part] = {}
    warc = None
    for relative in files:
        if relative == warc_path(run_id):
            warc = relative
            continue
        original = relative.removeprefix(f"{RETIRED_DIR}/")
        table = original.partition("/")[0]
        if not is_table_name(table) or original != part_path(table, run_id):
            _refuse(root, relative, run_id, "not a file a run writes")
        parts[table] = _read_part(root, relative, run_id)
    _check_merged(root, run_id, parts, merged)
    if not parts:
        _refuse(root, files[0], run_id, "no Parquet part of the run is left")
    versions = {
        table: file_schema_version(part.rows.schema.metadata) for table, part in parts.items()
    }
    found = set(versions.values())
    if len(found) != 1 or None in found:
        _refuse(root, files[0], run_id, f"its parts disagree on the schema version ({versions})")
    (version,) = found
    assert version is not None
    check_schema_version(version, root / files[0])
    tables = version_tables(version)
    if set(parts) != set(tables):
        odd = sorted(set(parts) ^ set(tables))
        reason = f"its parts are not one per table of schema version {version} ({odd})"
        _refuse(root, files[0], run_id, reason)
    entries = []
    for table in tables:
        part = parts[table]
        relative = part.relative
        if not part.rows.schema.equals(version_schema(table, version)):
            _refuse(root, relative, run_id, f"its columns are not those of the {table} table")
        owners = set(part.rows[_RUN_COLUMNS.get(table, "run_id")].to_pylist())
        if owners - {run_id}:
            _refuse(root, relative, run_id, f"it holds rows of other runs ({sorted(owners)})")
        entries.append(
            ManifestFile(
                table=table,
                path=part_path(table, run_id),
                rows=part.rows.num_rows,
                bytes=part.size,
                sha256=part.sha256,
            )
        )
    record = _run_record(root, parts["runs"].relative, run_id, parts["runs"].rows)
    warc_entry = _check_warc(root, run_id, warc, parts["topics"])
    return RunManifest(
        run_id=run_id,
        schema_version=version,
        committed_at=datetime.now(UTC),
        files=tuple(entries),
        run=record,
        warc=warc_entry,
    )


def _check_merged(
    root: Path, run_id: str, parts: dict[str, _Part], merged: Sequence[ManifestFile]
) -> None:
    """Each part of run `run_id` a compaction merged (`merged`, as it lists them) is in
    `parts`, with the bytes the compaction read."""
    gone = [entry for entry in merged if entry.table not in parts]
    if gone:
        raise RepairRefusedError(
            f"cannot repair run {run_id}: its files are gone (a compaction merged its "
            f"{len(merged)} Parquet parts, and {len(gone)} of them, e.g. "
            f"{retired_path(gone[0].path)}, are no longer in {RETIRED_DIR}/: `vacuum` "
            "deletes them), so its manifest cannot be rebuilt; nothing was changed: restore "
            f"{RUNS_DIR}/{run_id}.json from a backup (readers and crawls refuse the archive "
            "until then)",
            path=root / RUNS_DIR / f"{run_id}.json",
        )
    for entry in merged:
        part = parts[entry.table]
        if (part.sha256, part.size) != (entry.sha256, entry.bytes):
            relative = part.relative
            reason = f"its bytes differ from those the compaction merged ({entry.path})"
            _refuse(root, relative, run_id, reason)


@dataclass(frozen=True, slots=True)
class _Part:
    """A run's Parquet part, read once: its rows, and its bytes' sha256 and size."""

    rows: pa.Table
    sha256: str
    size: int
    relative: str
    """Where it is, relative to the archive root."""


def _read_part(root: Path, relative: str, run_id: str) -> _Part:
    try:
        data = (root / relative).read_bytes()
        rows = pq.read_table(pa.BufferReader(data))
    except (OSError, pa.ArrowException) as error:
        _refuse(root, relative, run_id, f"not readable Parquet ({_brief(error)})")
    return _Part(rows, hashlib.sha256(data).hexdigest(), len(data), relative)


def _run_record(root: Path, relative: str, run_id: str, rows: pa.Table) -> RunRecord:
    """The run's record from its one row of the runs table."""
    if rows.num_rows != 1:
        _refuse(root, relative, run_id, f"holds {rows.num_rows} rows, not the run's one")
    (row,) = rows.to_pylist()
    plain: dict[str, Any] = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in row.items()
        if value is not None  # columns added after the part's schema version: defaults
    }
    try:
        return decode_dataclass(RunRecord, plain)
    except (TypeError, ValueError) as error:
        _refuse(root, relative, run_id, f"its run record is malformed ({error})")


def _check_warc(root: Path, run_id: str, warc: str | None, topics: _Part) -> ManifestFile | None:
    """The WARC file's manifest entry, after checking its records and the topics rows that
    point into it; None when the run has none (and no topics row points to one)."""
    pointed = {
        (name, offset)
        for name, offset in zip(
            topics.rows["warc_file"].to_pylist(),
            topics.rows["warc_offset"].to_pylist(),
            strict=True,
        )
        if name is not None
    }
    elsewhere = sorted({name for name, _ in pointed if name != warc_path(run_id)})
    if elsewhere:
        relative = topics.relative
        _refuse(root, relative, run_id, f"its versions point to other WARC files: {elsewhere}")
    if warc is None:
        if pointed:
            relative = topics.relative
            _refuse(root, relative, run_id, f"its versions point to {warc_path(run_id)}, missing")
        return None
    records, sound, unsound = _warc_records(root, warc, run_id)
    if unsound:
        _refuse(root, warc, run_id, f"response records at offsets {unsound[:5]} fail digests")
    missing = sorted(offset for _, offset in pointed if offset not in sound)
    if missing:
        _refuse(root, warc, run_id, f"no response record at offsets {missing[:5]}")
    sha256, size = file_digest(root / warc)
    return ManifestFile(table="warc", path=warc, rows=records, bytes=size, sha256=sha256)


def _warc_records(root: Path, relative: str, run_id: str) -> tuple[int, set[int], list[int]]:
    """Records in the WARC file, offsets of its sound response records, and of the
    unsound ones."""
    records = 0
    sound: set[int] = set()
    unsound: list[int] = []
    try:
        with (root / relative).open("rb") as stream:
            iterator = ArchiveIterator(stream, check_digests=True)
            for record in iterator:
                records += 1
                if record.rec_type != "response":
                    continue
                record.content_stream().read()
                offset = iterator.get_record_offset()
                if record.digest_checker.passed is False:
                    unsound.append(offset)
                else:
                    sound.add(offset)
    except (OSError, ArchiveLoadFailed, ValueError, EOFError) as error:
        _refuse(root, relative, run_id, f"not a readable WARC file ({_brief(error)})")
    if records == 0:
        _refuse(root, relative, run_id, "not a readable WARC file (no record)")
    return records, sound, unsound


def _brief(error: Exception) -> str:
    """`error` on one short printable line (a damaged file's bytes can be in its text)."""
    text = "".join(char if char.isprintable() else " " for char in str(error))
    text = " ".join(text.split())
    return text if len(text) <= 120 else f"{text[:117]}..."


def _refuse(root: Path, relative: str, run_id: str, reason: str) -> NoReturn:
    raise RepairRefusedError(
        f"cannot repair run {run_id}: {root / relative}: {reason}; nothing was changed: "
        "restore the run's files (or its manifest) from a backup",
        path=root / relative,
    )
