"""Check an archive against its manifests: `verify_archive(path) -> list[Problem]`, and
`Verification.of(path)`, those problems with what was verified (the `verify` command's report).

Read-only and without the lock. Every run manifest and compaction manifest must be
readable and of a known schema version; a run lists one file per table; a compaction
replaces files in use by files holding exactly their rows. Each file in use must exist
with the size, sha256, row count and schema its manifest and the code expect (the row
count and schema come from the Parquet footer, parsed from the bytes read for the
digest: each file is read once). Files a compaction replaced must be in `_retired/`
with their size (and their sha256 with `deep=True`), unless a vacuum record
(`_vacuumed/`) lists them as deleted on purpose. No version may be stored twice;
table directories must hold nothing the manifests do not list. The newest checkpoint
must agree with the manifests, and its derived tables must have their digests (whether
they say what the tables say is the archive domain's check, `pipelines.archive.verify_log`,
which the `verify` command adds with `--deep`). Leftovers of a run or compaction that
was never committed are reported too (a crawl moves them to `_quarantine/` when it next
opens the archive; while a crawl is running they are its work in progress). Data files
of a run older than the last committed one, with no manifest, are a lost manifest
(`lost_manifest`, one problem per run naming its files): `medlineplus-archive repair`
rebuilds it. The glob readers' view (`current/`, see `pipelines.core.glob_view`) must
hold exactly the files in use: one that shows an older commit exactly is `stale_view` (a
writer killed before the view's swap, or committing now), any other difference is
`bad_view`. An archive written before views existed has none until a writer opens it,
and that is not a problem.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar, get_args

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.core.catalog import (
    CATALOG_FILE,
    FileSet,
    checkpoint_names,
    commit_order,
    read_checkpoint,
)
from pipelines.core.errors import (
    ArchiveCorruptError,
    ArchiveError,
    ArchiveNotFoundError,
    ArchiveSchemaError,
)
from pipelines.core.glob_view import current_generation, generation_counts, view_disagreements
from pipelines.core.layout import (
    CATALOG_DIR,
    COMPACTIONS_DIR,
    CURRENT_VIEW,
    RETIRED_DIR,
    RUNS_DIR,
    STAGING_DIR,
    VACUUMED_DIR,
    VIEWS_DIR,
    archive_folder_exists,
    compacted_id,
    file_digest,
    json_names,
    load_compaction,
    load_manifest,
    load_vacuum_record,
    part_run_id,
    read_marker,
    retired_path,
)
from pipelines.core.records import CompactionManifest, ManifestFile, RunManifest, VacuumRecord
from pipelines.core.recovery import (
    QuarantineBatch,
    compacted_runs,
    lost_runs,
    quarantine_batches,
)
from pipelines.core.schema import (
    TABLES,
    VERSION_KEY,
    file_schema_version,
    is_table_name,
    version_schema,
    version_tables,
)
from pipelines.core.warc import valid_response_offsets, warc_path

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
    "lost_manifest",
    "bad_compaction",
    "unretired_file",
    "bad_checkpoint",
    "bad_warc_record",
    "stale_view",
    "bad_view",
]
PROBLEM_KINDS: tuple[ProblemKind, ...] = get_args(ProblemKind)

_Manifest = TypeVar("_Manifest", RunManifest, CompactionManifest, VacuumRecord)
_RECOVER = "readers ignore it; the next `medlineplus-archive crawl` moves it to _quarantine/"
_RESTORE = "restore the file from a backup"
_CHUNK = 1 << 20
_MANIFEST_PROBLEMS: frozenset[ProblemKind] = frozenset(
    ("bad_manifest", "newer_schema", "missing_table", "bad_compaction")
)
"""Problems that leave which files are committed in question: the readers' view is not
checked against the manifests then (it would only repeat them)."""


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


@dataclass(frozen=True, slots=True)
class _Owned:
    """A committed file and who committed it."""

    entry: ManifestFile
    owner: str
    """"run <id>" or "compaction <id>"."""
    run_id: str | None
    schema_version: int


def verify_archive(path: Path | str, *, deep: bool = False) -> list[Problem]:
    """Every problem found in the archive at `path`; empty when it is sound.

    `deep` also checks the sha256 of every retired file. ArchiveNotFoundError when `path`
    is not an archive at all.
    """
    root = Path(path)
    try:
        read_marker(root)
    except (ArchiveSchemaError, ArchiveCorruptError) as error:
        newer = isinstance(error, ArchiveSchemaError) and error.newer_version is not None
        kind: ProblemKind = "newer_schema" if newer else "bad_marker"
        return [Problem(kind=kind, path="_archive.json", message=str(error))]
    problems: list[Problem] = []
    runs = _load_all(root, RUNS_DIR, problems, load_manifest)
    compactions = _load_all(root, COMPACTIONS_DIR, problems, load_compaction)
    vacuums = _load_all(root, VACUUMED_DIR, problems, load_vacuum_record)
    vacuumed = {entry.path for record in vacuums for entry in record.files}
    files = FileSet()
    owned: dict[str, _Owned] = {}
    retired: dict[str, CompactionManifest] = {}
    by_run = {manifest.run_id: manifest for manifest in runs}
    by_compaction = {manifest.compaction_id: manifest for manifest in compactions}
    lost = lost_runs(root, list(by_run), compactions)
    merged = {
        run_id: entries
        for run_id, entries in compacted_runs(compactions).items()
        if run_id not in by_run
    }
    for what, name in commit_order([*by_run, *merged], by_compaction):
        if what == "run" and name not in by_run:
            # A lost manifest (reported below): its files as the compaction that merged
            # them lists them, so that compaction applies and reports nothing more.
            files.add_run_files(name, merged[name])
            continue
        if what == "run":
            manifest = by_run[name]
            problems.extend(_check_manifest(manifest))
            sound = [
                entry
                for entry in manifest.files
                if is_table_name(entry.table) and _is_inside(entry.path)
            ]
            files.add_run(_with_files(manifest, sound))
            for entry in sound:
                owned[entry.path] = _Owned(
                    entry, f"run {manifest.run_id}", manifest.run_id, manifest.schema_version
                )
            continue
        compaction = by_compaction[name]
        problem = _check_compaction(compaction)
        if problem is None:
            try:
                files.apply_compaction(compaction)
            except ValueError as error:
                problem = str(error)
        if problem is not None:
            relative = f"{COMPACTIONS_DIR}/{compaction.compaction_id}.json"
            message = f"{problem}; readers refuse the archive: restore the manifests from a backup"
            problems.append(Problem(kind="bad_compaction", path=relative, message=message))
            continue
        for part in compaction.tables:
            owned[part.output.path] = _Owned(
                part.output,
                f"compaction {compaction.compaction_id}",
                None,
                compaction.schema_version,
            )
            for entry in part.inputs:
                retired[entry.path] = compaction
    live = list(files)
    problems.extend(_check_live_files(root, [owned[item.entry.path] for item in live]))
    problems.extend(_check_retired_files(root, retired, owned, vacuumed, deep=deep))
    problems.extend(_duplicate_versions(root, files))
    problems.extend(_lost_manifests(lost, set(merged)))
    problems.extend(_unlisted_files(root, files, retired, runs, compactions, set(lost)))
    if not lost:  # a checkpoint covering a lost run is ignored until `repair`
        problems.extend(_check_checkpoint(root, runs, compactions))
    topics = [item.entry.path for item in live if item.entry.table == "topics"]
    problems.extend(_check_warc(root, runs, topics, {warc_path(run_id) for run_id in lost}))
    # The view is judged against sound manifests only: with a run's manifest lost, it
    # still shows that run's files, and `repair` makes it right again.
    if not lost and not any(problem.kind in _MANIFEST_PROBLEMS for problem in problems):
        problems.extend(_check_view(root, files, by_run, by_compaction))
    return problems


@dataclass(frozen=True, kw_only=True, slots=True)
class Verification:
    """The problems of an archive (`verify_archive`), what was verified and what recovery
    moved aside: all a report of `verify` says."""

    path: Path
    """The archive folder."""
    problems: tuple[Problem, ...]
    runs: int
    """The run manifests that load: the runs verified."""
    files: int
    """The data files those manifests list."""
    quarantined: tuple[QuarantineBatch, ...]
    """The folders recovery moved uncommitted files to, oldest first: never a problem."""
    committed: frozenset[str]
    """The run ids that have a manifest, readable or not."""

    @classmethod
    def of(
        cls, path: Path | str, *, check: Callable[[Path], list[Problem]] | None = None
    ) -> Verification:
        """Verify the archive at `path` with `check` (default: `verify_archive`; the
        domain's deeper check, `pipelines.archive.verify_log.verify_archive_deeply`, adds
        the sightings log).

        ArchiveNotFoundError when there is no folder at `path`, ArchiveNotAFolderError
        when `path` is a file or goes through one, ArchiveSchemaError when its marker is
        foreign or from a newer version. An unreadable marker is a problem, not an error.
        """
        root = Path(path)
        if not archive_folder_exists(root):
            raise ArchiveNotFoundError(f"no archive at {root} (no such directory)", path=root)
        with contextlib.suppress(ArchiveCorruptError):
            read_marker(root)
        manifests = []
        for name in json_names(root / RUNS_DIR):
            try:
                manifests.append(load_manifest(root / RUNS_DIR / f"{name}.json"))
            except ArchiveError:
                continue
        committed = frozenset(json_names(root / RUNS_DIR))
        return cls(
            path=root,
            problems=tuple((check or verify_archive)(root)),
            runs=len(manifests),
            files=sum(len(manifest.files) for manifest in manifests),
            quarantined=tuple(quarantine_batches(root)),
            committed=committed,
        )

    def in_progress(self, problem: Problem) -> bool:
        """Whether `problem` is what a crawl killed midway, or running now, leaves: its
        staging, a temporary manifest or a part file of a run id without a manifest (the
        next crawl quarantines them), or a glob readers' view that shows an older commit
        (`stale_view`; the next crawl rebuilds it). A stray file that names no run, or a
        view that shows no commit (`bad_view`), is never one."""
        if problem.kind in ("uncommitted_leftover", "stale_view"):
            return True
        return (
            problem.kind == "orphan_part"
            and problem.run_id is not None
            and problem.run_id not in self.committed
        )


def _check_warc(
    root: Path, runs: list[RunManifest], topics: list[str], lost: set[str]
) -> Iterator[Problem]:
    """Each run's WARC file is there with its sha256, and every WARC record a topics row
    points to is a response record whose digests hold (but in the WARC files of `lost`
    runs, which `repair` checks)."""
    sound: dict[str, set[int]] = {}
    for manifest in runs:
        entry = manifest.warc
        if entry is None:
            continue
        path = root / entry.path
        if not path.is_file():
            yield _problem(
                "missing_file", entry.path, manifest.run_id, "the run's WARC file is missing"
            )
            continue
        sha256, size = file_digest(path)
        if (sha256, size) != (entry.sha256, entry.bytes):
            yield _problem(
                "digest_mismatch",
                entry.path,
                manifest.run_id,
                "sha256 or size differs from the manifest",
            )
            continue
        sound[entry.path] = valid_response_offsets(path)
    references: list[tuple[str | None, int | None]] = []
    for topics_file in topics:
        try:
            rows = pq.read_table(root / topics_file, columns=["warc_file", "warc_offset"])
        except (OSError, pa.ArrowException):
            continue  # a missing or damaged topics file is reported by the file checks
        references.extend(
            zip(rows["warc_file"].to_pylist(), rows["warc_offset"].to_pylist(), strict=True)
        )
    for name, offset in references:
        if name is None or name in lost:
            continue
        if name not in sound:
            yield _problem(
                "bad_warc_record",
                name,
                None,
                f"a version points to {name}, which no sound run lists",
            )
        elif offset not in sound[name]:
            yield _problem(
                "bad_warc_record",
                name,
                None,
                f"no response record with sound digests at offset {offset}",
            )


def _load_all(
    root: Path, directory: str, problems: list[Problem], load: Callable[[Path], _Manifest]
) -> list[_Manifest]:
    loaded = []
    for name in json_names(root / directory):
        relative = f"{directory}/{name}.json"
        try:
            loaded.append(load(root / relative))
        except ArchiveSchemaError as error:
            problems.append(Problem(kind="newer_schema", path=relative, message=str(error)))
        except ArchiveCorruptError as error:
            problems.append(Problem(kind="bad_manifest", path=relative, message=str(error)))
    return loaded


def _with_files(manifest: RunManifest, files: list[ManifestFile]) -> RunManifest:
    return RunManifest(
        run_id=manifest.run_id,
        schema_version=manifest.schema_version,
        committed_at=manifest.committed_at,
        files=tuple(files),
        run=manifest.run,
    )


def _check_manifest(manifest: RunManifest) -> Iterator[Problem]:
    run_id = manifest.run_id
    manifest_path = f"{RUNS_DIR}/{run_id}.json"
    listed = [entry.table for entry in manifest.files]
    tables = version_tables(manifest.schema_version)
    for table in tables:
        if table not in listed:
            yield _problem("missing_table", manifest_path, run_id, f"lists no file of {table}")
    for entry in manifest.files:
        if entry.table not in tables or listed.count(entry.table) > 1:
            message = f"lists an unknown or repeated table {entry.table!r}"
            yield _problem("bad_manifest", manifest_path, run_id, message)
        elif not _is_inside(entry.path):
            message = f"lists {entry.path!r}, outside the archive"
            yield _problem("bad_manifest", manifest_path, run_id, message)


def _check_compaction(compaction: CompactionManifest) -> str | None:
    """What is wrong with a compaction manifest on its own, None when nothing."""
    tables = [part.table for part in compaction.tables]
    if sorted(tables) != sorted(version_tables(compaction.schema_version)):
        return f"lists tables {sorted(tables)}, not one entry per table"
    for part in compaction.tables:
        paths = [part.output.path, *(entry.path for entry in part.inputs)]
        if not all(_is_inside(path) for path in paths):
            return "lists a file outside the archive"
        if part.output.rows != sum(entry.rows for entry in part.inputs):
            return (
                f"its {part.table} file holds {part.output.rows} rows, its inputs "
                f"{sum(entry.rows for entry in part.inputs)}"
            )
    return None


def _is_inside(relative: str) -> bool:
    parts = relative.split("/")
    return bool(relative) and not relative.startswith("/") and ".." not in parts


# --- files ----------------------------------------------------------------------------


def _digest_with_footer(path: Path) -> tuple[str, int, bytes]:
    """sha256, size and the last bytes of the file (enough for its Parquet footer), read once."""
    digest = hashlib.sha256()
    size = 0
    tail = b""
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            tail = (tail + chunk)[-2 * _CHUNK :]
        if len(tail) >= 8 and tail[-4:] == b"PAR1":
            (footer,) = struct.unpack("<I", tail[-8:-4])
            if footer + 8 > len(tail) and footer + 8 <= size:
                stream.seek(size - footer - 8)
                tail = stream.read(footer + 8)
    return digest.hexdigest(), size, tail


def _check_live_files(root: Path, files: list[_Owned]) -> list[Problem]:
    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = pool.map(lambda item: _check_file(root, item), files)
        return [problem for problem in found if problem is not None]


def _check_file(root: Path, item: _Owned) -> Problem | None:
    entry = item.entry
    path = root / entry.path
    run_id = item.run_id
    if not path.is_file():
        where = ""
        if (root / retired_path(entry.path)).is_file():
            where = f" (a copy is in {RETIRED_DIR}/, but no compaction replaced it)"
        message = f"missing, though {item.owner} lists it{where}; {_RESTORE}"
        return _problem("missing_file", entry.path, run_id, message)
    sha256, size, tail = _digest_with_footer(path)
    if (sha256, size) != (entry.sha256, entry.bytes):
        message = (
            f"changed since {item.owner} committed it (sha256 {sha256[:12]}..., "
            f"{size} bytes; manifest: {entry.sha256[:12]}..., {entry.bytes} bytes); {_RESTORE}"
        )
        return _problem("digest_mismatch", entry.path, run_id, message)
    try:
        metadata = pq.read_metadata(pa.BufferReader(tail))
        schema = metadata.schema.to_arrow_schema()
    except (OSError, pa.ArrowException) as error:
        return _problem("unreadable_file", entry.path, run_id, f"not readable Parquet: {error}")
    if metadata.num_rows != entry.rows:
        message = f"holds {metadata.num_rows} rows, {item.owner}'s manifest says {entry.rows}"
        return _problem("row_count_mismatch", entry.path, run_id, message)
    version = file_schema_version(schema.metadata)
    if version != item.schema_version:
        message = f"schema version {version}, {item.owner}'s manifest says {item.schema_version}"
        return _problem("schema_mismatch", entry.path, run_id, message)
    expected = _schema_of(entry.table, version)
    if expected is not None and not schema.equals(expected):
        message = f"columns differ from the {entry.table} schema of schema version {version}"
        return _problem("schema_mismatch", entry.path, run_id, message)
    return None


def _schema_of(table: str, version: int | None) -> pa.Schema | None:
    """The schema of `table`'s files of schema version `version`, None when unknown (the
    table or version is reported on its own)."""
    if version is None or not is_table_name(table):
        return None
    try:
        return version_schema(table, version)
    except KeyError:
        return None


def _sizes(directory: Path) -> dict[str, int]:
    """Size of each file in `directory` (one listing instead of a stat per file asked)."""
    try:
        with os.scandir(directory) as entries:
            return {entry.name: entry.stat().st_size for entry in entries if entry.is_file()}
    except FileNotFoundError:
        return {}


def _check_retired_files(
    root: Path,
    retired: dict[str, CompactionManifest],
    owned: dict[str, _Owned],
    vacuumed: set[str],
    *,
    deep: bool,
) -> list[Problem]:
    """Each file a compaction replaced is in `_retired/` with its size (and sha256 when
    `deep`), or listed in `vacuumed` (paths as committed) and deleted."""
    problems = []
    to_hash = []
    in_tables: dict[str, dict[str, int]] = {table: _sizes(root / table) for table in TABLES}
    in_retired: dict[str, dict[str, int]] = {
        table: _sizes(root / RETIRED_DIR / table) for table in TABLES
    }
    for relative, compaction in retired.items():
        item = owned.get(relative)
        if item is None:
            continue
        entry = item.entry
        table, _, name = relative.partition("/")
        moved_size = in_retired.get(table, {}).get(name)
        if name in in_tables.get(table, {}):
            message = (
                f"replaced by compaction {compaction.compaction_id} but still in its table "
                "directory, so directory reads count its rows twice (readers following the "
                "manifests do not); the next `medlineplus-archive crawl` moves it to _retired/"
            )
            problems.append(_problem("unretired_file", relative, item.run_id, message))
        elif moved_size is None and relative in vacuumed:
            continue
        elif moved_size is None:
            message = (
                f"replaced by compaction {compaction.compaction_id} and missing from "
                f"{RETIRED_DIR}/ and from every vacuum record (readers do not need it, but only "
                "`vacuum` deletes retired files); "
                f"{_RESTORE}"
            )
            problems.append(_problem("missing_file", retired_path(relative), item.run_id, message))
        elif moved_size != entry.bytes:
            message = f"{moved_size} bytes, {item.owner} committed {entry.bytes}; {_RESTORE}"
            problems.append(
                _problem("digest_mismatch", retired_path(relative), item.run_id, message)
            )
        elif deep:
            to_hash.append((root / retired_path(relative), item))
    if to_hash:
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            digests = pool.map(lambda pair: _digest_with_footer(pair[0])[0], to_hash)
            for (moved, item), sha256 in zip(to_hash, digests, strict=True):
                if sha256 != item.entry.sha256:
                    relative = moved.relative_to(root).as_posix()
                    message = f"changed since {item.owner} committed it; {_RESTORE}"
                    problems.append(_problem("digest_mismatch", relative, item.run_id, message))
    return problems


def _duplicate_versions(root: Path, files: FileSet) -> Iterator[Problem]:
    """A version stored by two runs breaks "written once, ever"."""
    paths = [root / live.entry.path for live in files.files("topics")]
    paths = [path for path in paths if path.is_file()]
    if not paths:
        return
    try:
        keys = pa.concat_tables(
            pq.read_table(path, columns=[*VERSION_KEY, "run_id"]) for path in paths
        )
    except (OSError, pa.ArrowException):
        return  # reported as unreadable
    counts = keys.group_by(list(VERSION_KEY)).aggregate([("run_id", "count")])
    repeated = counts.filter(pc.field("run_id_count") > 1)
    for row in repeated.to_pylist():
        language, slug, last_updated, content_hash = (row[name] for name in VERSION_KEY)
        message = (
            f"version ({language}, {slug}, {last_updated}, {content_hash[:12]}...) is stored "
            f"{row['run_id_count']} times; loaders pick one of them, report this as a bug"
        )
        yield Problem(kind="duplicate_version", path="topics", message=message)


def _unlisted_files(
    root: Path,
    files: FileSet,
    retired: dict[str, CompactionManifest],
    runs: list[RunManifest],
    compactions: list[CompactionManifest],
    lost: set[str],
) -> Iterator[Problem]:
    """Files of the table directories no manifest lists (those of `lost` runs are
    reported by `_lost_manifests`), and leftovers of what was never committed."""
    listed = files.paths() | set(retired)
    committed = {manifest.run_id for manifest in runs}
    compacted = {manifest.compaction_id for manifest in compactions}
    for table in TABLES:
        directory = root / table
        if not directory.is_dir():
            continue
        for file in sorted(directory.iterdir()):
            relative = f"{table}/{file.name}"
            if relative in listed or file.name.startswith("."):
                continue
            run_id, compaction = part_run_id(file.name), compacted_id(file.name)
            if run_id in lost:
                continue
            if run_id is None and compaction is None:
                message = "not an archive file; move it out of the archive"
                yield _problem("unexpected_file", relative, None, message)
            elif run_id in committed:
                message = f"not listed in run {run_id}'s manifest; move it out of the archive"
                yield _problem("orphan_part", relative, run_id, message)
            elif compaction in compacted:
                message = (
                    f"not listed in compaction {compaction}'s manifest; move it out of the archive"
                )
                yield _problem("orphan_part", relative, None, message)
            elif run_id is not None:
                message = f"left by run {run_id}, which was never committed; {_RECOVER}"
                yield _problem("orphan_part", relative, run_id, message)
            else:
                message = f"left by compaction {compaction}, which was never committed; {_RECOVER}"
                yield _problem("orphan_part", relative, None, message)
    retired_root = root / RETIRED_DIR
    if retired_root.is_dir():
        for directory in sorted(retired_root.iterdir()):
            names = sorted(_sizes(directory)) if directory.is_dir() else [""]
            for name in names:
                relative = f"{directory.name}/{name}" if name else directory.name
                if relative not in retired:
                    message = (
                        "in _retired/ but replaced by no compaction; move it out of the archive"
                    )
                    yield _problem("unexpected_file", f"{RETIRED_DIR}/{relative}", None, message)
    leftovers = (
        (STAGING_DIR, "staging of a run or compaction", lambda name: True),
        (RUNS_DIR, "temporary manifest", lambda name: name.endswith(".tmp")),
        (COMPACTIONS_DIR, "temporary compaction manifest", lambda name: name.endswith(".tmp")),
        (CATALOG_DIR, "temporary checkpoint", lambda name: name.startswith(".tmp-")),
    )
    for name, what, is_leftover in leftovers:
        base = root / name
        if not base.is_dir():
            continue
        for leftover in sorted(base.iterdir()):
            if not is_leftover(leftover.name):
                continue
            relative = f"{name}/{leftover.name}"
            message = f"{what} that was never committed; {_RECOVER}"
            yield _problem("uncommitted_leftover", relative, None, message)


def _lost_manifests(lost: dict[str, list[str]], merged: set[str]) -> Iterator[Problem]:
    """One problem per run whose files have no manifest: older than the last committed
    run, or in `merged` (a committed compaction merged its files)."""
    for run_id, files in lost.items():
        there = f"its files {', '.join(files)} are there" if files else "none of its files is left"
        if run_id in merged and not any(name.endswith(".parquet") for name in files):
            message = (
                f"missing: run {run_id}'s manifest was lost, and a committed compaction "
                f"merged its files, which `vacuum` has deleted since ({there}), so readers "
                f"and crawls refuse the archive and `repair` cannot rebuild it: restore "
                f"{RUNS_DIR}/{run_id}.json from a backup"
            )
        elif run_id in merged:
            message = (
                f"missing: run {run_id}'s manifest was lost, though a committed compaction "
                f"merged its files ({there}), so readers and crawls refuse the archive; run "
                "`medlineplus-archive repair` to rebuild it"
            )
        else:
            message = (
                f"missing: run {run_id} is older than the last committed run and {there}, "
                "but its manifest was lost, so readers ignore them and crawls refuse to "
                "start; run `medlineplus-archive repair` to rebuild it"
            )
        yield _problem("lost_manifest", f"{RUNS_DIR}/{run_id}.json", run_id, message)


def _check_view(
    root: Path,
    files: FileSet,
    runs: Mapping[str, RunManifest],
    compactions: Mapping[str, CompactionManifest],
) -> Iterator[Problem]:
    """`current/` lists the files in use, each a link to its table directory's file.

    A view that shows an older committed state, exactly, is `stale_view`: a writer was
    killed between its manifest and the view's swap, or is committing now. Anything else
    (`current` pointing outside `_views/`, a view with files no commit had in use then,
    files missing, links to other files) is `bad_view`. No `current` link (an archive
    written before views, or a copy that followed the link) is not checked."""
    if not (root / CURRENT_VIEW).is_symlink():
        return
    differences = view_disagreements(root, files)
    if not differences:
        return
    shown = current_generation(root)
    counts = None if shown is None else generation_counts(shown)
    older = None if counts is None else _committed_state(runs, compactions, counts)
    if shown is not None and older is not None and not view_disagreements(root, older, shown):
        message = (
            f"glob readers of {CURRENT_VIEW}/ see an older commit than the manifests "
            f"({VIEWS_DIR}/{shown}), as while a writer commits; "
            "the next `medlineplus-archive crawl` or `compact` rebuilds it"
        )
        yield _problem("stale_view", CURRENT_VIEW, None, message)
        return
    shown_differences = "; ".join(differences[:3]) + ("; ..." if len(differences) > 3 else "")
    message = (
        f"glob readers of {CURRENT_VIEW}/ see other files than any commit had in use "
        f"({shown_differences}); the next `medlineplus-archive crawl` or `compact` rebuilds it"
    )
    yield _problem("bad_view", CURRENT_VIEW, None, message)


def _committed_state(
    runs: Mapping[str, RunManifest],
    compactions: Mapping[str, CompactionManifest],
    counts: tuple[int, int],
) -> FileSet | None:
    """The files in use once the first `counts` (runs, compactions) were committed, None
    when the manifests never had that state (the newest state is not "older" either).

    Runs and compactions each commit in the order of their ids, but a compaction's id
    names the last run it merges, not the last run committed before it: the older state
    is the first runs and the first compactions, applied in `commit_order`."""
    run_count, compaction_count = counts
    if (run_count, compaction_count) == (len(runs), len(compactions)):
        return None
    if run_count > len(runs) or compaction_count > len(compactions):
        return None
    files = FileSet()
    for what, name in commit_order(
        sorted(runs)[:run_count], sorted(compactions)[:compaction_count]
    ):
        if what == "run":
            files.add_run(runs[name])
            continue
        try:
            files.apply_compaction(compactions[name])
        except ValueError:
            return None
    return files


def _check_checkpoint(
    root: Path,
    runs: list[RunManifest],
    compactions: list[CompactionManifest],
) -> Iterator[Problem]:
    names = checkpoint_names(root)
    if not names:
        return
    relative = f"{CATALOG_DIR}/{names[-1]}"
    ignored = "readers ignore it; the next `medlineplus-archive crawl` writes a new one"
    checkpoint = read_checkpoint(
        root,
        [manifest.run_id for manifest in runs],
        [manifest.compaction_id for manifest in compactions],
    )
    if checkpoint is None or checkpoint.directory.name != names[-1]:
        message = f"does not agree with the run and compaction manifests; {ignored}"
        yield _problem("bad_checkpoint", relative, None, message)
        return
    by_run = {manifest.run_id: manifest for manifest in runs}
    by_compaction = {manifest.compaction_id: manifest for manifest in compactions}
    expected = FileSet()
    try:
        for what, name in commit_order(checkpoint.run_ids, checkpoint.compaction_ids):
            if what == "run":
                expected.add_run(by_run[name])
            else:
                expected.apply_compaction(by_compaction[name])
    except ValueError:
        return  # reported as bad_compaction
    if expected.to_json() != checkpoint.files.to_json():
        message = (
            f"its {CATALOG_FILE} lists other files in use than the manifests do; remove the "
            "directory (readers then read the manifests)"
        )
        yield _problem("bad_checkpoint", relative, None, message)
        return
    for name in checkpoint.derived_names:
        try:
            checkpoint.read_derived(name)
        except ArchiveCorruptError as error:
            yield _problem("bad_checkpoint", relative, None, str(error))
            return


def _problem(kind: ProblemKind, path: str, run_id: str | None, message: str) -> Problem:
    return Problem(kind=kind, path=path, message=message, run_id=run_id)
