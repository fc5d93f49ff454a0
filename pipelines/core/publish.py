"""Publish a committed archive to S3 (`publish --to s3://bucket/prefix`), incrementally.

What is published is one read-consistent view of the local archive, taken as a reader
takes it (`ArchiveStore.open(read_only=True)`: the manifests are listed first, and only
the files they list are used), so a crawl may be writing meanwhile:

* the marker `_archive.json`, first (a prefix holding another archive is refused);
* every file a committed manifest lists (each run's table files and WARC file, each
  compaction's files), from its table directory or from `_retired/` locally, to the path
  its manifest gives;
* then the run and compaction manifests, one by one in commit order;
* then the checkpoint the view agrees with (`_catalog/<name>/`, its catalog.json last).

Never `_staging/`, the lock, leftovers of uncommitted runs, or anything no manifest lists.
A file is uploaded only when the bucket does not hold it yet: committed files are never
rewritten and their names are unique (run and compaction ids), so a key holding an object
of the size the manifest records holds that file. The size, from one listing of the
prefix, catches anything else (a different file under the same name); an object appears
only once its upload completed, so a partial upload never looks present. Hashing remote
objects would mean downloading them.

The bucket is append-only: nothing there is moved or deleted, a file replaced by a
compaction stays at its path. A reader in S3 therefore sees a manifest only after every
file it lists, and any view it took stays readable. Readers must follow the manifests
(`open_archive("s3://...")`), not glob a table's folder, which holds replaced files too.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow.fs as pafs

from pipelines.core.catalog import CATALOG_FILE, commit_order, read_checkpoint
from pipelines.core.errors import ArchiveCorruptError, ArchiveSchemaError, ObjectStorageError
from pipelines.core.layout import (
    CATALOG_DIR,
    COMPACTIONS_DIR,
    MARKER_FILE,
    RUNS_DIR,
    load_compaction,
    read_marker,
    retired_path,
)
from pipelines.core.records import ManifestFile
from pipelines.core.schema import TABLES
from pipelines.core.storage import ObjectPath, endpoint_name
from pipelines.core.store import ArchiveStore

logger = logging.getLogger(__name__)

UPLOAD_THREADS = 8
"""Data files uploaded at once (their order does not matter; manifests go one by one)."""
_CHUNK = 8 << 20


@dataclass(slots=True)
class PublishReport:
    """What one `publish` did."""

    destination: ObjectPath
    """The prefix published to."""
    runs: int = 0
    """Committed runs in the view published."""
    uploaded: list[str] = field(default_factory=list)
    """Paths (relative to the archive root) uploaded, in order."""
    uploaded_bytes: int = 0
    already_there: int = 0
    """Files the bucket held already."""
    not_kept: list[str] = field(default_factory=list)
    """Files replaced by a compaction that the local archive no longer keeps (vacuumed
    before they were ever published); no reader of the views published needs them."""


@dataclass(frozen=True, slots=True)
class _DataFile:
    entry: ManifestFile
    live: bool
    """Whether readers of the newest view use it (else a compaction replaced it)."""


def publish(archive: Path | str, destination: ObjectPath) -> PublishReport:
    """Upload what `archive` has committed, and the bucket lacks, to `destination`.

    ArchiveSchemaError when the prefix holds other files or another archive;
    ObjectStorageError when S3 fails; ArchiveCorruptError when a committed file is
    missing or of the wrong size locally (run `medlineplus-archive verify`).
    """
    with ArchiveStore.open(archive, read_only=True) as store:
        root = store.path
        report = PublishReport(destination, runs=len(store.run_ids))
        remote = _remote_sizes(destination)
        _check_destination(root, destination, remote)
        uploader = _Uploader(root, destination, remote, report)
        uploader.put_bytes(MARKER_FILE, (root / MARKER_FILE).read_bytes())
        uploader.put_files(_committed_files(store))
        for kind, name in commit_order(store.run_ids, store.compaction_ids):
            folder = RUNS_DIR if kind == "run" else COMPACTIONS_DIR
            relative = f"{folder}/{name}.json"
            uploader.put_bytes(relative, (root / relative).read_bytes())
        checkpoint = read_checkpoint(root, store.run_ids, store.compaction_ids)
        if checkpoint is not None and isinstance(checkpoint.directory, Path):
            uploader.put_checkpoint(checkpoint.directory, list(checkpoint.state))
    return report


def _committed_files(store: ArchiveStore) -> list[_DataFile]:
    """Every file the committed run and compaction manifests of `store` list."""
    live = {item.entry.path for table in TABLES for item in store.live_files(table)}
    files: dict[str, _DataFile] = {}
    for manifest in store.manifests:
        for entry in (*manifest.files, *([manifest.warc] if manifest.warc else [])):
            files[entry.path] = _DataFile(entry, entry.path in live or entry.table == "warc")
    for name in store.compaction_ids:
        compaction = load_compaction(store.path / COMPACTIONS_DIR / f"{name}.json")
        for part in compaction.tables:
            files[part.output.path] = _DataFile(part.output, part.output.path in live)
    return list(files.values())


def _remote_sizes(destination: ObjectPath) -> dict[str, int]:
    """Size of every object under `destination`, by path relative to it (one listing)."""
    selector = pafs.FileSelector(destination.key, recursive=True, allow_not_found=True)
    try:
        infos = destination.filesystem.get_file_info(selector)
    except OSError as error:
        raise ObjectStorageError(
            destination, "cannot list", error, endpoint=endpoint_name()
        ) from error
    start = len(destination.key) + 1
    return {info.path[start:]: info.size for info in infos if info.type == pafs.FileType.File}


def _check_destination(root: Path, destination: ObjectPath, remote: dict[str, int]) -> None:
    """Refuse a prefix that holds something else than this archive."""
    if not remote:
        return
    if MARKER_FILE not in remote:
        raise ArchiveSchemaError(
            f"{destination} holds other files and no {MARKER_FILE}; publish to an empty "
            "prefix, or to the one this archive was published to",
            path=destination,
        )
    published = read_marker(destination)
    local = read_marker(root)
    if published.get("created_at") != local.get("created_at"):
        raise ArchiveSchemaError(
            f"{destination} holds another archive (created {published.get('created_at')}, "
            f"{root} was created {local.get('created_at')}); publish to another prefix",
            path=destination,
        )


class _Uploader:
    """Uploads files the bucket lacks (by path and size), recording them in the report."""

    def __init__(
        self, root: Path, destination: ObjectPath, remote: dict[str, int], report: PublishReport
    ) -> None:
        self.root = root
        self.destination = destination
        self.remote = remote
        self.report = report

    def _present(self, relative: str, size: int) -> bool:
        if self.remote.get(relative) == size:
            self.report.already_there += 1
            return True
        return False

    def put_bytes(self, relative: str, data: bytes) -> None:
        """Upload `data` as `relative` unless the bucket holds an object of its size."""
        if self._present(relative, len(data)):
            return
        target = self.destination / relative
        try:
            with target.filesystem.open_output_stream(target.key, compression=None) as sink:
                sink.write(data)
        except OSError as error:
            raise ObjectStorageError(
                target, "cannot upload to", error, endpoint=endpoint_name()
            ) from error
        self._uploaded(relative, len(data))

    def put_files(self, files: Iterable[_DataFile]) -> None:
        """Upload the data files the bucket lacks, several at once."""
        missing = [item for item in files if not self._present(item.entry.path, item.entry.bytes)]
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for item, size in zip(missing, pool.map(self._put_file, missing), strict=True):
                if size is None:
                    self.report.not_kept.append(item.entry.path)
                else:
                    self._uploaded(item.entry.path, size)

    def _put_file(self, item: _DataFile) -> int | None:
        """Upload one committed file from wherever it is locally; None when a replaced
        file is no longer kept. A file open here may be moved to `_retired/` meanwhile."""
        relative = item.entry.path
        source = _open_committed(self.root, relative)
        if source is None:
            if item.live:
                path = self.root / relative
                raise ArchiveCorruptError(
                    f"{path} is missing (nor in {self.root / retired_path(relative)}); "
                    "run `medlineplus-archive verify`",
                    path=path,
                )
            return None
        with source:
            size = os.fstat(source.fileno()).st_size
            if size != item.entry.bytes:
                raise ArchiveCorruptError(
                    f"{source.name} holds {size} bytes, its manifest says {item.entry.bytes}; "
                    "run `medlineplus-archive verify`",
                    path=source.name,
                )
            target = self.destination / relative
            try:
                with target.filesystem.open_output_stream(target.key, compression=None) as sink:
                    shutil.copyfileobj(source, sink, _CHUNK)
            except OSError as error:
                raise ObjectStorageError(
                    target, "cannot upload to", error, endpoint=endpoint_name()
                ) from error
        return size

    def put_checkpoint(self, directory: Path, derived_files: list[str]) -> None:
        """Upload a checkpoint (its `derived_files`, then its catalog.json); skipped when
        a crawl running now removes it meanwhile (derived data: readers rebuild what it
        holds)."""
        names = [*derived_files, CATALOG_FILE]
        try:
            contents = [(directory / name).read_bytes() for name in names]
        except OSError as error:
            logger.warning("checkpoint %s not published: %s", directory, error)
            return
        for name, data in zip(names, contents, strict=True):
            self.put_bytes(f"{CATALOG_DIR}/{directory.name}/{name}", data)

    def _uploaded(self, relative: str, size: int) -> None:
        self.report.uploaded.append(relative)
        self.report.uploaded_bytes += size
        logger.debug("uploaded %s (%d bytes)", self.destination / relative, size)


def _open_committed(root: Path, relative: str) -> BinaryIO | None:
    """The committed file `relative` opened for reading, from its table directory or from
    `_retired/` (a compaction moves it there); None when it is in neither."""
    for path in (root / relative, root / retired_path(relative)):
        try:
            return path.open("rb")
        except FileNotFoundError:
            continue
    return None
