"""The archive domain's part of `verify --deep`: does the newest checkpoint's sightings
log say what the tables say?

`pipelines.core.verify.verify_archive` checks files against manifests, and a checkpoint's
derived tables against their digests; what those tables mean is the domain's: here the
sightings log, the validators and the stored versions are rebuilt from the tables (every
observation is read) and compared with the checkpoint's. `verify_archive_deeply` is both,
what the `verify` command runs with `--deep`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipelines.archive.state import STORED_SCHEMA
from pipelines.archive.versions import (
    EVENTS_SCHEMA,
    OBSERVATION_COLUMNS,
    VALIDATORS_SCHEMA,
    VERSION_COLUMNS,
    VersionLog,
)
from pipelines.core.errors import ArchiveError
from pipelines.core.store import ArchiveStore
from pipelines.core.verify import Problem, verify_archive

_SKIPPED_AFTER = frozenset(("bad_marker", "newer_schema", "bad_manifest", "bad_checkpoint"))
"""Problems after which the log is not compared: the checkpoint is ignored by readers, or
which runs are committed is in question (reported on their own)."""


def verify_archive_deeply(path: Path | str) -> list[Problem]:
    """`verify_archive(path, deep=True)`, then `check_sightings_log` when the checkpoint
    and the manifests are sound."""
    problems = verify_archive(path, deep=True)
    if not any(problem.kind in _SKIPPED_AFTER for problem in problems):
        problems.extend(check_sightings_log(path))
    return problems


def check_sightings_log(path: Path | str) -> list[Problem]:
    """A problem when the newest checkpoint's sightings log, validators or stored versions
    differ from those rebuilt from the tables (none without a checkpoint, or when the
    tables cannot be read: those files are reported by `verify_archive`)."""
    try:
        with ArchiveStore.open(path, read_only=True) as store:
            checkpoint = store.checkpoint
            if checkpoint is None or not {"events", "validators", "versions"} <= set(
                checkpoint.derived_names
            ):
                return []
            log = VersionLog(
                checkpoint.read_derived("events", EVENTS_SCHEMA),
                checkpoint.read_derived("validators", VALIDATORS_SCHEMA),
            )
            stored = checkpoint.read_derived("versions", STORED_SCHEMA)
            last_run = checkpoint.last_run
            relative = checkpoint.relative_path
            versions = store.read_columns("topics", VERSION_COLUMNS, through=last_run)
            observations = store.read_columns("observations", OBSERVATION_COLUMNS, through=last_run)
    except (ArchiveError, OSError, pa.ArrowException):
        return []  # the files at fault are reported on their own
    rebuilt = VersionLog.build(versions, observations)
    if (
        log.events.equals(rebuilt.events)
        and log.validators.equals(rebuilt.validators)
        and stored.equals(versions.cast(STORED_SCHEMA))
    ):
        return []
    message = (
        "its sightings log or stored versions differ from those rebuilt from the tables; "
        "remove the directory (readers then rebuild it), and report this as a bug"
    )
    return [Problem(kind="bad_checkpoint", path=relative, message=message)]
