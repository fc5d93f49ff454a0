"""Check an archive against its manifests: `verify_archive(path) -> list[Problem]`.

Read-only and without the lock: every manifest must be readable and of a known schema
version, list one file per table, and each file must exist with the size, sha256, row
count and schema the manifest and the code expect; no version may be stored twice;
table directories must hold nothing the manifests do not list. Leftovers of a run that
was never committed are reported too (a crawl removes them when it next opens the
archive; while a crawl is running they are its work in progress).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, get_args

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.errors import ArchiveCorruptError, ArchiveSchemaError
from pipelines.records import ManifestFile, RunManifest
from pipelines.schema import (
    SCHEMA_VERSION,
    SCHEMAS,
    TABLES,
    VERSION_KEY,
    file_schema_version,
    is_table_name,
)
from pipelines.store import (
    RUNS_DIR,
    STAGING_DIR,
    file_digest,
    load_manifest,
    manifest_paths,
    part_run_id,
    read_marker,
)

ProblemKind = Literal[
    "bad_marker",
    "bad_manifest",
    "newer_schema",
    "missing_table",
    "missing_file",
    "digest_mismatch",
    "unreadable_file",
    "row_count_mismatch",
    "schema_mismatch",
    "duplicate_version",
    "orphan_part",
    "unexpected_file",
    "uncommitted_leftover",
]
PROBLEM_KINDS: tuple[ProblemKind, ...] = get_args(ProblemKind)

_RECOVER = "readers ignore it; the next `medlineplus-archive crawl` removes it"
_RESTORE = "restore the file from a backup"


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    """One thing wrong with an archive."""

    kind: ProblemKind
    """What is wrong, for programs."""
    path: str
    """The file or directory at fault, relative to the archive root ("." for the archive)."""
    message: str
    """What is wrong and what to do about it, for people."""
    run_id: str | None = None
    """The run the file belongs to, when known."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def verify_archive(path: Path | str) -> list[Problem]:
    """Every problem found in the archive at `path`; empty when it is sound.

    ArchiveNotFoundError when `path` is not an archive at all.
    """
    root = Path(path)
    try:
        read_marker(root)
    except (ArchiveSchemaError, ArchiveCorruptError) as error:
        newer = isinstance(error, ArchiveSchemaError) and error.newer_version is not None
        kind: ProblemKind = "newer_schema" if newer else "bad_marker"
        return [Problem(kind=kind, path="_archive.json", message=str(error))]
    problems: list[Problem] = []
    manifests: list[RunManifest] = []
    for manifest_path in manifest_paths(root):
        relative = manifest_path.relative_to(root).as_posix()
        try:
            manifests.append(load_manifest(manifest_path))
        except ArchiveSchemaError as error:
            problems.append(Problem(kind="newer_schema", path=relative, message=str(error)))
        except ArchiveCorruptError as error:
            problems.append(Problem(kind="bad_manifest", path=relative, message=str(error)))
    sound: dict[str, list[Path]] = {table: [] for table in TABLES}
    for manifest in manifests:
        for problem, entry in _check_manifest(root, manifest):
            if problem is None and entry is not None:
                sound[entry.table].append(root / entry.path)
            elif problem is not None:
                problems.append(problem)
    problems.extend(_duplicate_versions(root, sound["topics"]))
    problems.extend(_unlisted_files(root, manifests))
    return problems


def _check_manifest(
    root: Path, manifest: RunManifest
) -> Iterator[tuple[Problem | None, ManifestFile | None]]:
    """(problem, None) for each problem, (None, entry) for each sound file."""
    run_id = manifest.run_id
    manifest_path = f"{RUNS_DIR}/{run_id}.json"
    listed = [entry.table for entry in manifest.files]
    for table in TABLES:
        if table not in listed:
            yield (
                _problem("missing_table", manifest_path, run_id, f"lists no file of {table}"),
                None,
            )
    for entry in manifest.files:
        if not is_table_name(entry.table) or listed.count(entry.table) > 1:
            message = f"lists an unknown or repeated table {entry.table!r}"
            yield _problem("bad_manifest", manifest_path, run_id, message), None
            continue
        if not _is_inside(entry.path):
            message = f"lists {entry.path!r}, outside the archive"
            yield _problem("bad_manifest", manifest_path, run_id, message), None
            continue
        problem = _check_file(root, manifest, entry)
        yield (problem, None) if problem else (None, entry)


def _is_inside(relative: str) -> bool:
    parts = PurePosixPath(relative).parts
    return bool(parts) and not PurePosixPath(relative).is_absolute() and ".." not in parts


def _check_file(root: Path, manifest: RunManifest, entry: ManifestFile) -> Problem | None:
    path = root / entry.path
    run_id = manifest.run_id
    if not path.is_file():
        message = f"missing, though run {run_id} lists it; {_RESTORE} (the run is incomplete)"
        return _problem("missing_file", entry.path, run_id, message)
    sha256, size = file_digest(path)
    if (sha256, size) != (entry.sha256, entry.bytes):
        message = (
            f"changed since run {run_id} committed it (sha256 {sha256[:12]}..., "
            f"{size} bytes; manifest: {entry.sha256[:12]}..., {entry.bytes} bytes); {_RESTORE}"
        )
        return _problem("digest_mismatch", entry.path, run_id, message)
    try:
        metadata = pq.read_metadata(path)
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as error:
        return _problem("unreadable_file", entry.path, run_id, f"not readable Parquet: {error}")
    if metadata.num_rows != entry.rows:
        message = f"holds {metadata.num_rows} rows, run {run_id}'s manifest says {entry.rows}"
        return _problem("row_count_mismatch", entry.path, run_id, message)
    version = file_schema_version(schema.metadata)
    if version != manifest.schema_version:
        message = (
            f"schema version {version}, run {run_id}'s manifest says {manifest.schema_version}"
        )
        return _problem("schema_mismatch", entry.path, run_id, message)
    expected = SCHEMAS[entry.table] if is_table_name(entry.table) else None
    if version == SCHEMA_VERSION and expected is not None and not schema.equals(expected):
        message = f"columns differ from the {entry.table} schema of schema version {version}"
        return _problem("schema_mismatch", entry.path, run_id, message)
    return None


def _duplicate_versions(root: Path, topic_files: list[Path]) -> Iterator[Problem]:
    """A version stored by two runs breaks "written once, ever"."""
    if not topic_files:
        return
    keys = pa.concat_tables(
        pq.read_table(path, columns=[*VERSION_KEY, "run_id"]) for path in topic_files
    )
    counts = keys.group_by(list(VERSION_KEY)).aggregate([("run_id", "count")])
    repeated = counts.filter(pc.field("run_id_count") > 1)
    for row in repeated.to_pylist():
        language, slug, last_updated, content_hash = (row[name] for name in VERSION_KEY)
        message = (
            f"version ({language}, {slug}, {last_updated}, {content_hash[:12]}...) is stored "
            f"{row['run_id_count']} times; loaders pick one of them, report this as a bug"
        )
        yield Problem(kind="duplicate_version", path="topics", message=message)


def _unlisted_files(root: Path, manifests: list[RunManifest]) -> Iterator[Problem]:
    listed = {entry.path for manifest in manifests for entry in manifest.files}
    committed = {manifest.run_id for manifest in manifests}
    for table in TABLES:
        directory = root / table
        if not directory.is_dir():
            continue
        for file in sorted(directory.iterdir()):
            relative = f"{table}/{file.name}"
            if relative in listed or file.name.startswith("."):
                continue
            run_id = part_run_id(file.name)
            if run_id is None:
                message = "not an archive file; move it out of the archive"
                yield _problem("unexpected_file", relative, None, message)
            elif run_id in committed:
                message = f"not listed in run {run_id}'s manifest; move it out of the archive"
                yield _problem("orphan_part", relative, run_id, message)
            else:
                message = f"left by run {run_id}, which was never committed; {_RECOVER}"
                yield _problem("orphan_part", relative, run_id, message)
    for name, what in ((STAGING_DIR, "staging"), (RUNS_DIR, "temporary manifest")):
        base = root / name
        if not base.is_dir():
            continue
        for leftover in sorted(base.iterdir()):
            if name == RUNS_DIR and not leftover.name.endswith(".tmp"):
                continue
            relative = f"{name}/{leftover.name}"
            message = f"{what} of a run that was never committed; {_RECOVER}"
            yield _problem("uncommitted_leftover", relative, None, message)


def _problem(kind: ProblemKind, path: str, run_id: str | None, message: str) -> Problem:
    return Problem(kind=kind, path=path, message=message, run_id=run_id)
