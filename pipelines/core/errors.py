"""The archive's exception root and its subclasses.

Every message names the archive path (or the file) it is about and says what to do
next, so the command line can print it as a one-line error without a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.core.storage import ObjectPath


class ArchiveError(Exception):
    """Root of every error raised by the archive modules (schema, store, load, verify)."""

    def __init__(self, message: str, *, path: Path | ObjectPath | str | None = None) -> None:
        self.path = Path(path) if isinstance(path, str) else path
        """The archive directory or file (or S3 object) the error is about, when there is one."""
        super().__init__(message)


class ArchiveNotFoundError(ArchiveError):
    """The path is missing or is not an archive (no `_archive.json` marker)."""


class ArchiveNotAFolderError(ArchiveError):
    """The archive path is not a folder: a regular file (or another non-directory), or a
    path that goes through one."""


class ArchiveUnwritableError(ArchiveError):
    """The archive cannot be written: its disk is read-only or full, or the process may
    not write there."""

    def __init__(self, path: Path, error: OSError) -> None:
        self.cause = error
        """The operating system's error."""
        super().__init__(
            f"cannot write to the archive {path}: {error.strerror or error}; free some space, "
            "make the disk writable, or pass another --archive",
            path=path,
        )


class ArchiveLockedError(ArchiveError):
    """Another process holds the archive's write lock (a crawl is writing it)."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.pid = pid
        """The process id recorded by the lock holder, None when it could not be read."""
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(
            f"another crawl is writing {path} ({holder}); wait for it to finish "
            "or pass a different --archive",
            path=path,
        )


class ArchiveSchemaError(ArchiveError):
    """The archive cannot be used with this code: a newer schema version, or a directory
    that holds something other than an archive."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | ObjectPath | str | None = None,
        newer_version: int | None = None,
    ) -> None:
        self.newer_version = newer_version
        """The schema version found, when the cause is a version newer than this code reads."""
        super().__init__(message, path=path)


class ObjectStorageError(ArchiveError):
    """Object storage (S3) failed: its endpoint cannot be reached, or it refused the
    credentials or the request. Not raised for a missing object (FileNotFoundError)."""

    def __init__(self, path: ObjectPath, what: str, error: OSError, *, endpoint: str) -> None:
        self.cause = error
        """pyarrow's error."""
        reason = " ".join(str(error).split())
        super().__init__(
            f"{what} {path} (endpoint {endpoint}): {reason}; check the URL, "
            "AWS_ENDPOINT_URL, the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) "
            "and the network",
            path=path,
        )


class ArchiveCorruptError(ArchiveError):
    """A committed file of the archive (marker, manifest or Parquet part) cannot be read."""


class LostManifestError(ArchiveError):
    """Runs older than the last committed run have data files but no manifest: their
    manifests were lost (not a crash, whose files are newer). A writer refuses to open
    the archive, moving nothing; `medlineplus-archive repair` rebuilds the manifests."""

    def __init__(self, path: Path, files_by_run: Mapping[str, Sequence[str]]) -> None:
        self.files_by_run = {run_id: list(files) for run_id, files in files_by_run.items()}
        """Per run whose manifest is missing, its data files (relative to the archive)."""
        runs = "; ".join(
            f"run {run_id} ({', '.join(files) or 'no file left'})"
            for run_id, files in self.files_by_run.items()
        )
        super().__init__(
            f"{path}: the manifest of an older run is missing, though its files are there: "
            f"{runs}; nothing was changed; run `medlineplus-archive repair --archive {path}` "
            "to rebuild it from its files",
            path=path,
        )


class RepairRefusedError(ArchiveCorruptError):
    """`repair` found a run's files damaged or inconsistent, and changed nothing."""


class UnknownRunError(ArchiveError):
    """A run id that is not among the archive's committed runs."""

    def __init__(self, run_id: str, path: Path | ObjectPath) -> None:
        self.run_id = run_id
        """The run id that was asked for."""
        super().__init__(
            f"no committed run {run_id!r} in {path}; `medlineplus-archive runs` lists them",
            path=path,
        )


class RunStateError(ArchiveError):
    """A run was used out of order: written after commit or abort, a run id reused or
    not later than the last committed run, a record that belongs to another run."""


class InvalidRecordError(ArchiveError):
    """An item or record cannot be archived: a required value is missing or has the
    wrong type. Names the table, the column and, when known, the page."""

    def __init__(self, table: str, column: str, reason: str, *, url: str | None = None) -> None:
        self.table = table
        """The table the value was going to."""
        self.column = column
        """The column (item field) at fault."""
        self.reason = reason
        """What is wrong with the value."""
        self.url = url
        """The page the value came from, when known."""
        where = f" ({url})" if url else ""
        super().__init__(f"cannot archive {table}.{column}{where}: {reason}")
