"""Names, paths and durable writes of an archive directory; no knowledge of runs' content.

Layout of an archive directory::

    _archive.json                    marker: format and schema version (written at creation)
    .lock                            the writer's pid (the folder is locked: `core.lock`)
    _runs/<run_id>.json              run manifests; a run is committed when its manifest exists
    _compactions/<id>.json           compaction manifests: which files replaced which
    _catalog/<name>/                 checkpoints: the committed state, derived (rebuildable)
    _staging/<name>/                 a run or compaction being written
    _quarantine/<stamp>/<path>       what recovery rolled back (a crash's files), kept
    _retired/<table>/<file>          files a compaction replaced: kept, out of the table dirs
    _vacuumed/<id>.json              retired files `vacuum` deleted (written before deleting)
    <table>/part-<run_id>.parquet    one file per table per committed run, even an empty one
    <table>/compacted-<id>.parquet   one file per table per compaction: its inputs' rows
    current -> _views/<generation>   glob readers' view: hard links to exactly the files in use

Every file a reader uses is written here first in full, fsync'ed, and moved into place
with `os.replace`; the JSON file that commits it is written last, atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import (
    ArchiveCorruptError,
    ArchiveNotAFolderError,
    ArchiveNotFoundError,
    ArchiveSchemaError,
)
from pipelines.core.records import CompactionManifest, RunManifest, VacuumRecord
from pipelines.core.schema import SCHEMA_VERSION, TABLES, TableName
from pipelines.core.storage import ArchivePath

ARCHIVE_FORMAT = "medlineplus-archive"
MARKER_FILE = "_archive.json"
LOCK_FILE = ".lock"
RUNS_DIR = "_runs"
COMPACTIONS_DIR = "_compactions"
CATALOG_DIR = "_catalog"
STAGING_DIR = "_staging"
RETIRED_DIR = "_retired"
VACUUMED_DIR = "_vacuumed"
QUARANTINE_DIR = "_quarantine"
VIEWS_DIR = "_views"
CURRENT_VIEW = "current"
"""The glob readers' view of the committed files (`pipelines.core.glob_view`)."""
PARQUET_COMPRESSION = "zstd"

ROW_GROUP_ROWS: Mapping[str, int] = {
    "runs": 65_536,
    "observations": 65_536,
    "topics": 128,
    "links": 4_096,
    "clinical_trials": 1_024,
    "journal_articles": 16_384,
}
"""Rows per Parquet row group, per table. Readers skip row groups by their run_id
statistics, so a row group of topics (a few KB of text per row) is kept small enough
that loading a snapshot decompresses little besides the versions it selects."""

_KEYS = ("language", "slug", "last_updated", "content_hash", "run_id")
DICTIONARY_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "runs": ("run_id", "status", "finish_reason", "settings_digest", "base_url", "discovery"),
    "observations": ("language", "run_id", "outcome"),
    "topics": (
        "language",
        "slug",
        "last_updated",
        "run_id",
        "summary_attribution",
        "primary_institute_name",
        "primary_institute_url",
    ),
    "links": (*_KEYS, "section"),
    "clinical_trials": _KEYS,
    "journal_articles": ("language", "slug", "first_seen_run"),
}
"""Columns dictionary-encoded, per table: those with few distinct values. A page of long
unique strings (summaries, titles, URLs) that falls back from dictionary to plain
encoding reads several times slower, and is no smaller."""
DICTIONARY_ALL_FROM_ROWS = 16_384
"""Observations files at least this long (compacted) dictionary-encode every column: a
topic's URL, slug and version repeat in every run."""

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}\Z")
_PART = re.compile(r"part-(?P<run_id>.+)\.parquet\Z")
_COMPACTED = re.compile(r"compacted-(?P<compaction_id>.+)\.parquet\Z")


def check_run_id(run_id: str) -> str:
    """`run_id` if it is usable as a run id (letters, digits, "-", "_"), else ValueError."""
    if not _RUN_ID.match(run_id):
        raise ValueError(f"bad run id {run_id!r}: use letters, digits, '-' and '_' only")
    return run_id


def part_path(table: TableName, run_id: str) -> str:
    """The path, relative to the archive root, of `table`'s file for `run_id`."""
    return f"{table}/part-{run_id}.parquet"


def part_run_id(file_name: str) -> str | None:
    """The run id in a part file's name ("part-<run_id>.parquet"), None for other names."""
    match = _PART.match(file_name)
    return match["run_id"] if match else None


def compacted_path(table: TableName, compaction_id: str) -> str:
    """The path, relative to the archive root, of `table`'s file made by a compaction."""
    return f"{table}/compacted-{compaction_id}.parquet"


def compacted_id(file_name: str) -> str | None:
    """The compaction id in a compacted file's name, None for other names."""
    match = _COMPACTED.match(file_name)
    return match["compaction_id"] if match else None


def retired_path(relative: str) -> str:
    """Where a file at `relative` (e.g. "topics/part-x.parquet") goes once retired."""
    return f"{RETIRED_DIR}/{relative}"


# --- durable writes -------------------------------------------------------------------


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (files created, renamed or removed) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_into_tables(root: Path, staged: Iterable[tuple[Path, str]], owner: str) -> None:
    """Move each staged file to its path relative to `root` (a table folder), then make
    the table folders' entries durable. ArchiveCorruptError, before anything is moved
    there, when a file is already at one of those paths: `owner` ("run X") is not
    committed, so that file is a leftover recovery has not seen."""
    for source, relative in staged:
        target = root / relative
        if target.exists():
            raise ArchiveCorruptError(
                f"{target} exists although {owner} is not committed; "
                "reopen the archive for writing to recover it",
                path=target,
            )
        source.replace(target)
    for table in TABLES:
        fsync_dir(root / table)


def write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    """Write `data` to `path` via a temporary file in the same directory, fsync, replace."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2, ensure_ascii=False)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(path)  # atomic: os.replace
    fsync_dir(path.parent)


def parquet_options(table: str, rows: int) -> dict[str, Any]:
    """Compression, row groups and dictionary columns of `table`'s files of about `rows` rows."""
    dictionary: bool | list[str] = list(DICTIONARY_COLUMNS.get(table, ()))
    if table == "observations" and rows >= DICTIONARY_ALL_FROM_ROWS:
        dictionary = True
    return {
        "compression": PARQUET_COMPRESSION,
        "row_group_size": ROW_GROUP_ROWS.get(table),
        "use_dictionary": dictionary,
    }


def parquet_bytes(rows: pa.Table, table: str) -> bytes:
    """`rows` as the bytes of a zstd Parquet file, row groups sized for `table`."""
    dictionary: bool | list[str] = list(DICTIONARY_COLUMNS.get(table, ()))
    if table == "observations" and rows.num_rows >= DICTIONARY_ALL_FROM_ROWS:
        dictionary = True
    sink = pa.BufferOutputStream()
    pq.write_table(
        rows,
        sink,
        compression=PARQUET_COMPRESSION,
        row_group_size=ROW_GROUP_ROWS.get(table),
        use_dictionary=dictionary,
    )
    return bytes(sink.getvalue())


def write_file_durably(path: Path, data: bytes) -> tuple[str, int]:
    """Write `data` to a new file at `path` and fsync it; returns its sha256 and size.

    The digest is taken from the bytes in memory, so the file is not read back.
    """
    with path.open("xb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    return hashlib.sha256(data).hexdigest(), len(data)


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 (hex) and size of the file at `path`."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# --- the marker -----------------------------------------------------------------------


def archive_folder_exists(root: Path) -> bool:
    """Whether there is a folder at `root` (False: nothing there yet).

    ArchiveNotAFolderError when `root` is a regular file (or anything but a folder), or a
    path through one (`file.txt/archive`): no archive can ever be there. Other errors of
    the operating system (no permission to look) are raised as they are.
    """
    try:
        mode = root.stat().st_mode
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        blocking = next(
            (parent for parent in root.parents if parent.exists() and not parent.is_dir()), None
        )
        what = f"{blocking} is a file" if blocking is not None else "a part of it is a file"
        raise ArchiveNotAFolderError(
            f"{root} is not a folder: {what}; pass a folder as --archive", path=root
        ) from None
    if not stat.S_ISDIR(mode):
        raise ArchiveNotAFolderError(
            f"{root} is a file, not a folder; pass a folder as --archive", path=root
        )
    return True


def read_marker(root: ArchivePath) -> dict[str, Any]:
    """The `_archive.json` of the archive at `root`, checked: ArchiveNotFoundError when
    there is none, ArchiveSchemaError when it is foreign or from a newer version."""
    marker = root / MARKER_FILE
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ArchiveNotFoundError(
            f"no archive at {root} (no {MARKER_FILE}); "
            f"run `medlineplus-archive crawl --archive {root}` to create one",
            path=root,
        ) from error
    except (OSError, ValueError) as error:
        raise ArchiveCorruptError(
            f"cannot read {marker}: {error}; restore it from a backup", path=marker
        ) from error
    if not isinstance(data, dict) or data.get("format") != ARCHIVE_FORMAT:
        raise ArchiveSchemaError(
            f"{marker} is not a medlineplus-archive marker; pass the archive's own directory",
            path=root,
        )
    check_schema_version(data.get("schema_version"), marker)
    return data


def check_schema_version(version: object, source: ArchivePath) -> int:
    """`version` if this code can read it, else ArchiveSchemaError naming `source`."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArchiveCorruptError(f"{source}: bad schema_version {version!r}", path=source)
    if version > SCHEMA_VERSION:
        raise ArchiveSchemaError(
            f"{source} has schema version {version}, newer than this medlineplus-archive "
            f"reads ({SCHEMA_VERSION}); upgrade medlineplus-archive to use this archive",
            path=source,
            newer_version=version,
        )
    return version


def read_json(path: ArchivePath, what: str) -> Any:
    """The JSON in `path`; ArchiveCorruptError naming `what` when it cannot be read."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ArchiveCorruptError(
            f"cannot read {what} {path}: {error}; run `medlineplus-archive verify`", path=path
        ) from error


def json_names(directory: ArchivePath) -> list[str]:
    """Stems of the committed JSON files in `directory` ("<stem>.json"), sorted; no temporaries."""
    try:
        entries = [entry.name for entry in directory.iterdir()]
    except FileNotFoundError:
        return []
    return sorted(
        name[: -len(".json")]
        for name in entries
        if name.endswith(".json") and not name.startswith(".")
    )


# --- manifests ------------------------------------------------------------------------


def manifest_paths(root: Path) -> list[Path]:
    """The run manifest files of the archive at `root`, by run id."""
    return [root / RUNS_DIR / f"{name}.json" for name in json_names(root / RUNS_DIR)]


def load_manifest(path: ArchivePath) -> RunManifest:
    """Read and check one run manifest; ArchiveCorruptError or ArchiveSchemaError when unusable."""
    return _load_record(
        path, "manifest", RunManifest.from_json, lambda manifest: manifest.run_id, of="run "
    )


def load_compaction(path: ArchivePath) -> CompactionManifest:
    """Read and check one compaction manifest; ArchiveCorruptError or ArchiveSchemaError."""
    return _load_record(
        path,
        "compaction manifest",
        CompactionManifest.from_json,
        lambda manifest: manifest.compaction_id,
    )


def load_vacuum_record(path: Path) -> VacuumRecord:
    """Read and check one vacuum record; ArchiveCorruptError when unusable."""
    return _load_record(
        path,
        "vacuum record",
        VacuumRecord.from_json,
        lambda record: record.vacuum_id,
        versioned=False,
    )


_Record = TypeVar("_Record", RunManifest, CompactionManifest, VacuumRecord)


def _load_record(
    path: ArchivePath,
    what: str,
    parse: Callable[[Any], _Record],
    identity: Callable[[_Record], str],
    *,
    of: str = "",
    versioned: bool = True,
) -> _Record:
    """The record (`what`) in the JSON file at `path`, parsed; ArchiveCorruptError when it
    cannot be, or when the file is not named `<identity>.json` (`of` names what the
    identity is, in the message); ArchiveSchemaError when `versioned` and of a schema
    version this code cannot read."""
    data = read_json(path, what)
    if versioned and isinstance(data, dict):
        check_schema_version(data.get("schema_version"), path)
    try:
        record = parse(data)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ArchiveCorruptError(
            f"malformed {what} {path}: {error}; run `medlineplus-archive verify`", path=path
        ) from error
    owner = identity(record)
    if path.name != f"{owner}.json":
        raise ArchiveCorruptError(
            f"{what} {path} is for {of}{owner!r}; restore the file's original name", path=path
        )
    return record
