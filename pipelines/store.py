"""The archive on disk: layout, the write lock, committing runs, recovery, the index.

Layout of an archive directory::

    _archive.json                 marker: format and schema version (written at creation)
    .lock                         flock'ed by the one process writing; holds its pid
    _runs/<run_id>.json           run manifests; a run is committed when its manifest exists
    _staging/<run_id>/            a run being committed (removed on commit, abort, recovery)
    <table>/part-<run_id>.parquet one file per table per committed run, even an empty one

Every run writes one file to every table, zero rows included: a table directory then
always holds the schema, and `pandas.read_parquet("<archive>/topics")` or a DuckDB glob
needs no special case. A run is committed by writing its manifest last, atomically; a
run without a manifest never happened: readers ignore its files and the next writer
removes them. Nothing committed is ever deleted or rewritten.

Runs are ordered by run id, which is also the order they were committed in: run ids
start with their UTC start time, and `begin_run` refuses one that does not sort after
every committed run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, NamedTuple, Self, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from crawler.items import LANGUAGES, HealthTopicPage
from pipelines.errors import (
    ArchiveCorruptError,
    ArchiveLockedError,
    ArchiveNotFoundError,
    ArchiveSchemaError,
    InvalidRecordError,
    RunStateError,
)
from pipelines.records import (
    OUTCOMES,
    SUCCESS_OUTCOMES,
    JournalArticleRecord,
    ManifestFile,
    Observation,
    Outcome,
    RunManifest,
    RunRecord,
    VersionRecord,
)
from pipelines.schema import (
    SCHEMA_VERSION,
    SCHEMAS,
    TABLES,
    TOPIC_KEY,
    VERSION_KEY,
    TableName,
    clinical_trials_table,
    empty_table,
    journal_articles_table,
    links_table,
    observations_table,
    runs_table,
    topics_table,
)

logger = logging.getLogger(__name__)

ARCHIVE_FORMAT = "medlineplus-archive"
MARKER_FILE = "_archive.json"
LOCK_FILE = ".lock"
RUNS_DIR = "_runs"
STAGING_DIR = "_staging"
PARQUET_COMPRESSION = "zstd"

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}\Z")
_PART = re.compile(r"part-(?P<run_id>.+)\.parquet\Z")


# --- names and keys -------------------------------------------------------------------


def new_run_id(now: datetime) -> str:
    """A sortable, unique run id for a run starting at `now`: "20261124T002400Z-3fa2"."""
    return f"{_utc(now, 'now'):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


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


class TopicKey(NamedTuple):
    """A topic: its language and slug."""

    language: str
    slug: str


class VersionKey(NamedTuple):
    """One version of a topic; stored once, ever."""

    language: str
    slug: str
    last_updated: date
    content_hash: str


class LatestVersion(NamedTuple):
    """The version a topic showed most recently."""

    last_updated: date
    content_hash: str


class Validators(NamedTuple):
    """What to send on the next conditional request for a URL."""

    etag: str | None
    """For If-None-Match."""
    last_modified: str | None
    """For If-Modified-Since (the Last-Modified header as received)."""


def version_key(page: HealthTopicPage) -> VersionKey:
    """The key of the version `page` is."""
    return VersionKey(page.language, page.slug, page.last_updated, page.content_hash)


# --- what the archive holds: shared by the index and the loaders ----------------------

_ORDER = ["run_id", "observed_at"]
"""Transaction order: by run, then by fetch time within the run."""


def current_version_keys(
    versions: pd.DataFrame, observations: pd.DataFrame, *, by_date: bool = False
) -> pd.DataFrame:
    """For each topic, the key of the version it showed most recently.

    `versions` holds one row per stored version to choose from (VERSION_KEY, run_id,
    observed_at); `observations` the observations to consider (the same columns plus
    outcome). A successful observation showing an older stored version (a revert) makes
    that version current again; observations naming no version in `versions` are
    ignored, so without any the most recently stored version wins. With `by_date`, the
    newest `last_updated` wins instead, the most recently shown among versions of the
    same date. Returns VERSION_KEY columns, one row per topic.
    """
    key = list(VERSION_KEY)
    shown = observations.loc[
        observations["outcome"].isin(SUCCESS_OUTCOMES).fillna(False), [*key, *_ORDER]
    ].dropna(subset=key)
    shown = shown.merge(versions[key].drop_duplicates(), on=key, how="inner")
    sightings = pd.concat([versions[[*key, *_ORDER]], shown], ignore_index=True)
    order = ["last_updated", *_ORDER] if by_date else _ORDER
    latest = sightings.sort_values(order, kind="stable").drop_duplicates(
        list(TOPIC_KEY), keep="last"
    )
    return latest[key].reset_index(drop=True)


def gone_topic_keys(versions: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    """Topics whose latest sighting says they are gone: TOPIC_KEY columns.

    A sighting is a stored version or an observation other than "error" (a failed fetch
    says nothing about the page). A topic seen again after it was gone is live again; a
    topic a run did not reach keeps its state.
    """
    topic = list(TOPIC_KEY)
    seen = observations.loc[
        observations["outcome"].ne("error").fillna(True), [*topic, *_ORDER, "outcome"]
    ]
    stored = versions[[*topic, *_ORDER]].assign(
        outcome=pd.Series("new", index=versions.index, dtype=seen["outcome"].dtype)
    )
    sightings = pd.concat([stored, seen], ignore_index=True)
    latest = sightings.sort_values(_ORDER, kind="stable").drop_duplicates(topic, keep="last")
    return latest.loc[latest["outcome"].eq("gone").fillna(False), topic].reset_index(drop=True)


def latest_validators(observations: pd.DataFrame) -> dict[str, Validators]:
    """Validators per canonical URL, for URLs whose latest observation was a success.

    They come from the latest successful fetch that either carried validators or was a
    full (200) fetch: a 304 without headers keeps the earlier ones, a full fetch without
    any drops them (they may belong to older content).
    """
    ordered = observations.sort_values(_ORDER, kind="stable")
    success = ordered["outcome"].isin(SUCCESS_OUTCOMES).fillna(False)
    latest = ordered.drop_duplicates("url", keep="last")
    live_urls = latest.loc[latest["outcome"].isin(SUCCESS_OUTCOMES).fillna(False), "url"]
    has_validators = ordered["etag"].notna() | ordered["last_modified"].notna()
    full_fetch = ~ordered["revalidated"].fillna(False).astype(bool)
    evidence = ordered[success & (has_validators | full_fetch)].drop_duplicates("url", keep="last")
    evidence = evidence[evidence["url"].isin(live_urls)]
    evidence = evidence[evidence["etag"].notna() | evidence["last_modified"].notna()]
    return {
        url: Validators(_none_if_na(etag), _none_if_na(last_modified))
        for url, etag, last_modified in zip(
            evidence["url"], evidence["etag"], evidence["last_modified"], strict=True
        )
    }


def _none_if_na(value: Any) -> str | None:
    return None if pd.isna(value) else str(value)


# --- the index ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ArchiveIndex:
    """What the crawler needs to know about the committed runs (uncommitted ones never count).

    Tuples compare equal to the NamedTuple keys, so plain tuples work for lookups.
    """

    run_ids: tuple[str, ...]
    """Committed runs, oldest first."""
    versions: frozenset[VersionKey]
    """Every stored version."""
    latest: Mapping[TopicKey, LatestVersion]
    """Per topic, the version it showed most recently (see `current_version_keys`)."""
    validators: Mapping[str, Validators]
    """Per canonical URL, what to revalidate with (see `latest_validators`)."""
    journal_articles: frozenset[tuple[str, str, str]]
    """(language, slug, pmid) of every journal article stored."""
    live_topics: frozenset[TopicKey]
    """Topics with a stored version whose latest sighting is not "gone" (see
    `gone_topic_keys`): what a full crawl expects to find again."""

    @classmethod
    def empty(cls) -> ArchiveIndex:
        """The index of an archive without runs."""
        return cls(
            run_ids=(),
            versions=frozenset(),
            latest={},
            validators={},
            journal_articles=frozenset(),
            live_topics=frozenset(),
        )


# --- files ----------------------------------------------------------------------------


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime; pass a timezone-aware one (UTC)")
    return value.astimezone(UTC)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    """Write `data` to `path` via a temporary file in the same directory, fsync, replace."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2, ensure_ascii=False)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(path)  # atomic: os.replace
    _fsync_dir(path.parent)


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 (hex) and size of the file at `path`."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def read_marker(root: Path) -> dict[str, Any]:
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


def check_schema_version(version: object, source: Path) -> int:
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


def manifest_paths(root: Path) -> list[Path]:
    """The manifest files of the archive at `root`, by run id."""
    runs = root / RUNS_DIR
    if not runs.is_dir():
        return []
    return sorted(path for path in runs.glob("*.json") if not path.name.startswith("."))


def load_manifest(path: Path) -> RunManifest:
    """Read and check one manifest; ArchiveCorruptError or ArchiveSchemaError when unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ArchiveCorruptError(
            f"cannot read manifest {path}: {error}; run `medlineplus-archive verify`", path=path
        ) from error
    if isinstance(data, dict):
        check_schema_version(data.get("schema_version"), path)
    try:
        manifest = RunManifest.from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ArchiveCorruptError(
            f"malformed manifest {path}: {error}; run `medlineplus-archive verify`", path=path
        ) from error
    if path.name != f"{manifest.run_id}.json":
        raise ArchiveCorruptError(
            f"manifest {path} is for run {manifest.run_id!r}; restore the file's original name",
            path=path,
        )
    return manifest


def _is_allowed_before_creation(entry: Path) -> bool:
    """Files a new archive directory may already hold: dotfiles and a README (the
    repository's output/ ships README.md and .gitignore)."""
    return entry.name.startswith(".") or entry.name.upper().startswith("README")


# --- the store ------------------------------------------------------------------------


class ArchiveStore:
    """An archive directory opened for writing (locked, recovered) or for reading.

    Open it with `ArchiveStore.open`; use it as a context manager, or call `close`, to
    release the lock.
    """

    def __init__(
        self,
        path: Path,
        manifests: Sequence[RunManifest],
        *,
        lock: IO[str] | None,
    ) -> None:
        self.path = path
        """The archive directory."""
        self._manifests = list(manifests)
        self._lock = lock
        self._index: ArchiveIndex | None = None
        self._writer: RunWriter | None = None

    @classmethod
    def open(cls, path: Path | str, *, create: bool = True, read_only: bool = False) -> Self:
        """Open the archive at `path`.

        For writing (the default): create the layout when the directory is missing or
        empty (`create=True`), take the exclusive lock, and remove leftovers of runs that
        were never committed. Read-only: no lock, no recovery, no creation; files without
        a manifest are ignored. The committed runs are read once, at opening.
        """
        root = Path(path)
        if read_only:
            if not root.is_dir():
                raise ArchiveNotFoundError(f"no archive at {root} (no such directory)", path=root)
            read_marker(root)
            return cls(root, _load_manifests(root), lock=None)
        _prepare_directory(root, create=create)
        lock = _acquire_lock(root)
        try:
            if not (root / MARKER_FILE).exists():
                _create_layout(root)
            read_marker(root)
            for directory in (RUNS_DIR, STAGING_DIR, *TABLES):
                (root / directory).mkdir(exist_ok=True)
            manifests = _load_manifests(root)
            _recover(root, {manifest.run_id for manifest in manifests})
        except BaseException:
            _release_lock(lock)
            raise
        return cls(root, manifests, lock=lock)

    @property
    def read_only(self) -> bool:
        """True when opened without the lock."""
        return self._lock is None

    @property
    def manifests(self) -> tuple[RunManifest, ...]:
        """Manifests of the committed runs, oldest first."""
        return tuple(self._manifests)

    @property
    def run_ids(self) -> tuple[str, ...]:
        """Committed run ids, oldest first."""
        return tuple(manifest.run_id for manifest in self._manifests)

    def close(self) -> None:
        """Abort a run still open and release the lock. Safe to call twice."""
        if self._writer is not None:
            self._writer.abort()
        if self._lock is not None:
            _release_lock(self._lock)
            self._lock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # reading

    def files(self, table: TableName, run_ids: Iterable[str] | None = None) -> list[Path]:
        """The committed files of `table` (of `run_ids` only, when given), oldest run first."""
        wanted = None if run_ids is None else set(run_ids)
        return [
            self.path / entry.path
            for manifest in self._manifests
            if wanted is None or manifest.run_id in wanted
            for entry in manifest.files
            if entry.table == table
        ]

    def read_table(
        self,
        table: TableName,
        *,
        columns: Sequence[str] | None = None,
        where: ds.Expression | None = None,
        run_ids: Iterable[str] | None = None,
    ) -> pa.Table:
        """Rows of `table` from committed runs, with the table's schema (even when empty)."""
        paths = [str(path) for path in self.files(table, run_ids)]
        try:
            dataset = ds.dataset(paths, schema=SCHEMAS[table], format="parquet")
            return dataset.to_table(columns=list(columns) if columns else None, filter=where)
        except (OSError, pa.ArrowInvalid) as error:
            raise ArchiveCorruptError(
                f"cannot read table {table} of {self.path}: {error}; "
                "run `medlineplus-archive verify`",
                path=self.path,
            ) from error

    def index(self) -> ArchiveIndex:
        """The index of the committed runs (cached until the next commit)."""
        if self._index is None:
            self._index = self._build_index()
        return self._index

    def _build_index(self) -> ArchiveIndex:
        if not self._manifests:
            return ArchiveIndex.empty()
        versions = self.read_table("topics", columns=[*VERSION_KEY, *_ORDER])
        observations = self.read_table(
            "observations",
            columns=[
                *VERSION_KEY,
                *_ORDER,
                "url",
                "outcome",
                "revalidated",
                "etag",
                "last_modified",
            ],
        )
        articles = self.read_table("journal_articles", columns=["language", "slug", "pmid"])
        versions_frame = versions.to_pandas(types_mapper=pd.ArrowDtype)
        observations_frame = observations.to_pandas(types_mapper=pd.ArrowDtype)
        current = current_version_keys(versions_frame, observations_frame)
        gone = gone_topic_keys(versions_frame, observations_frame)
        gone_set = set(_rows(pa.Table.from_pandas(gone, preserve_index=False), TOPIC_KEY))
        current_table = pa.Table.from_pandas(current, preserve_index=False)
        return ArchiveIndex(
            run_ids=self.run_ids,
            versions=frozenset(VersionKey(*row) for row in _rows(versions, VERSION_KEY)),
            latest={
                TopicKey(language, slug): LatestVersion(last_updated, content_hash)
                for language, slug, last_updated, content_hash in _rows(current_table, VERSION_KEY)
            },
            validators=latest_validators(observations_frame),
            journal_articles=frozenset(_rows(articles, ("language", "slug", "pmid"))),
            live_topics=frozenset(
                TopicKey(*row) for row in _rows(versions, TOPIC_KEY) if row not in gone_set
            ),
        )

    # writing

    def begin_run(self, run_id: str, started_at: datetime) -> RunWriter:
        """Start writing run `run_id`; commit it with `RunWriter.commit`.

        `run_id` must sort after every committed run (see `new_run_id`).
        """
        if self._lock is None:
            raise RunStateError(
                f"{self.path} is open read-only; open it for writing to add runs", path=self.path
            )
        if self._writer is not None:
            raise RunStateError(
                f"run {self._writer.run_id} is still open in {self.path}; commit or abort it first",
                path=self.path,
            )
        try:
            check_run_id(run_id)
            started_at = _utc(started_at, "started_at")
        except ValueError as error:
            raise RunStateError(str(error), path=self.path) from error
        if self._manifests and run_id <= self._manifests[-1].run_id:
            raise RunStateError(
                f"run id {run_id!r} does not sort after the last committed run "
                f"{self._manifests[-1].run_id!r} of {self.path}; check the system clock or "
                "let new_run_id() pick the id",
                path=self.path,
            )
        staging = self.path / STAGING_DIR / run_id
        staging.mkdir(parents=True)
        self._writer = RunWriter(self, run_id, started_at, self.index(), staging)
        logger.info("run %s started in %s", run_id, self.path)
        return self._writer

    def _finished(self, writer: RunWriter, manifest: RunManifest | None) -> None:
        if manifest is not None:
            self._manifests.append(manifest)
            self._index = None
        if self._writer is writer:
            self._writer = None


def _rows(table: pa.Table, columns: Sequence[str]) -> Iterable[tuple[Any, ...]]:
    return zip(*(table.column(name).to_pylist() for name in columns), strict=True)


def _load_manifests(root: Path) -> list[RunManifest]:
    return [load_manifest(path) for path in manifest_paths(root)]


def _prepare_directory(root: Path, *, create: bool) -> None:
    if root.exists() and not root.is_dir():
        raise ArchiveSchemaError(
            f"{root} is a file, not an archive directory; pass a directory", path=root
        )
    if (root / MARKER_FILE).exists():
        return
    if not create:
        read_marker(root)  # raises ArchiveNotFoundError
    root.mkdir(parents=True, exist_ok=True)
    foreign = sorted(
        entry.name for entry in root.iterdir() if not _is_allowed_before_creation(entry)
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ArchiveSchemaError(
            f"{root} is not empty and is not a medlineplus archive (it holds {shown}); "
            "pass a new or empty directory as --archive",
            path=root,
        )


def _create_layout(root: Path) -> None:
    for directory in (RUNS_DIR, STAGING_DIR, *TABLES):
        (root / directory).mkdir(exist_ok=True)
    write_json_atomically(
        root / MARKER_FILE,
        {
            "format": ARCHIVE_FORMAT,
            "schema_version": SCHEMA_VERSION,
            "created_at": datetime.now(UTC).isoformat(),
        },
    )
    logger.info("created archive %s (schema version %s)", root, SCHEMA_VERSION)


def _acquire_lock(root: Path) -> IO[str]:
    lock = (root / LOCK_FILE).open("a+", encoding="ascii")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        lock.seek(0)
        holder = lock.read().strip()
        lock.close()
        raise ArchiveLockedError(root, int(holder) if holder.isdigit() else None) from error
    except BaseException:
        lock.close()
        raise
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _release_lock(lock: IO[str]) -> None:
    with contextlib.closing(lock):
        lock.seek(0)
        lock.truncate()
        lock.flush()
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _recover(root: Path, committed: set[str]) -> None:
    """Remove what uncommitted runs left: staging directories, parts without a manifest,
    temporary manifests."""
    for entry in sorted((root / STAGING_DIR).iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        logger.warning("removed %s: staging of a run that was never committed", entry)
    for table in TABLES:
        for part in sorted((root / table).glob("part-*.parquet")):
            run_id = part_run_id(part.name)
            if run_id is not None and run_id not in committed:
                part.unlink()
                logger.warning(
                    "removed %s: part of run %s, which was never committed", part, run_id
                )
    for temporary in sorted((root / RUNS_DIR).glob(".*.tmp")):
        temporary.unlink()
        logger.warning("removed %s: a manifest that was never completed", temporary)


# --- writing one run ------------------------------------------------------------------

_WriterState = Literal["open", "committed", "aborted"]
_Row = TypeVar("_Row")


class RunWriter:
    """Collects one run's rows and commits them; made by `ArchiveStore.begin_run`.

    Each added item is converted to Arrow at once (so a bad item fails where it is added,
    naming its URL) and kept in memory until `commit` writes one file per table. As a
    context manager, a run neither committed nor aborted is aborted on exit.
    """

    def __init__(
        self,
        store: ArchiveStore,
        run_id: str,
        started_at: datetime,
        index: ArchiveIndex,
        staging: Path,
    ) -> None:
        self.run_id = run_id
        """The run being written."""
        self.started_at = started_at
        """When it started (UTC)."""
        self.index = index
        """The archive's index when the run began."""
        self._store = store
        self._staging = staging
        self._state: _WriterState = "open"
        self._batches: dict[TableName, list[pa.Table]] = {table: [] for table in TABLES}
        self._new_versions: set[VersionKey] = set()
        self._new_articles: set[tuple[str, str, str]] = set()
        self._outcomes: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._state == "open":
            self.abort()

    def _check_open(self, run_id: str) -> None:
        if self._state != "open":
            raise RunStateError(f"run {self.run_id} is {self._state}; begin a new run")
        if run_id != self.run_id:
            raise RunStateError(f"a row of run {run_id!r} was given to run {self.run_id!r}")

    def add_observation(self, observation: Observation) -> None:
        """Record one fetch."""
        self._check_open(observation.run_id)
        rows = _converted(observation.url, observations_table, [observation])
        self._batches["observations"].append(rows)
        self._outcomes[observation.outcome] += 1

    def add_version(self, page: HealthTopicPage, run_id: str, observed_at: datetime) -> bool:
        """Store `page` as a version (topics, links, clinical_trials rows).

        Returns False, writing nothing, when the version is already stored or was added
        earlier in this run: a version is written once, ever.
        """
        self._check_open(run_id)
        key = _checked_version_key(page)
        if key in self.index.versions or key in self._new_versions:
            logger.debug("version %s already stored", key)
            return False
        version = [VersionRecord(page=page, run_id=run_id, observed_at=observed_at)]
        topics = _converted(page.url, topics_table, version)
        links = _converted(page.url, links_table, version)
        trials = _converted(page.url, clinical_trials_table, version)
        self._batches["topics"].append(topics)
        self._batches["links"].append(links)
        self._batches["clinical_trials"].append(trials)
        self._new_versions.add(key)
        return True

    def add_journal_articles(
        self, page: HealthTopicPage, run_id: str, observed_at: datetime
    ) -> int:
        """Store the journal articles of `page` not stored before for its topic.

        Articles whose URL carries no PubMed id are skipped. Returns how many were added.
        """
        self._check_open(run_id)
        records = []
        for article in page.journal_articles:
            if article.pmid is None:
                logger.debug(
                    "journal article without pmid skipped on %s: %s", page.url, article.url
                )
                continue
            key = (page.language, page.slug, article.pmid)
            if key in self.index.journal_articles or key in self._new_articles:
                continue
            records.append(
                JournalArticleRecord(
                    language=page.language,
                    slug=page.slug,
                    pmid=article.pmid,
                    title=article.title,
                    url=article.url,
                    position=article.position,
                    first_seen_run=run_id,
                    first_seen_at=observed_at,
                )
            )
        if records:
            rows = _converted(page.url, journal_articles_table, records)
            self._batches["journal_articles"].append(rows)
            self._new_articles.update((page.language, page.slug, r.pmid) for r in records)
        return len(records)

    def outcome_counts(self) -> dict[Outcome, int]:
        """Observations added so far, per outcome (for the run record's counts)."""
        return dict(self._outcomes)

    def commit(self, run: RunRecord) -> RunManifest:
        """Write the run's files and commit it with its manifest; returns the manifest."""
        self._check_open(run.run_id)
        self._batches["runs"] = [runs_table([run])]
        mismatched = [
            outcome for outcome in OUTCOMES if run.count(outcome) != self._outcomes[outcome]
        ]
        if mismatched:
            logger.warning(
                "run %s: the run record's counts of %s differ from the observations added (%s)",
                self.run_id,
                ", ".join(mismatched),
                self._outcomes,
            )
        root = self._store.path
        entries = []
        for table in TABLES:
            batches = self._batches[table]
            rows = pa.concat_tables(batches).combine_chunks() if batches else empty_table(table)
            staged = self._staging / f"{table}.parquet"
            pq.write_table(rows, staged, compression=PARQUET_COMPRESSION)
            with staged.open("rb") as stream:
                os.fsync(stream.fileno())
            sha256, size = file_digest(staged)
            entries.append(
                ManifestFile(
                    table=table,
                    path=part_path(table, self.run_id),
                    rows=rows.num_rows,
                    bytes=size,
                    sha256=sha256,
                )
            )
        _fsync_dir(self._staging)
        for entry in entries:
            target = root / entry.path
            if target.exists():
                raise RunStateError(
                    f"{target} exists although run {self.run_id} is not committed; "
                    "reopen the archive for writing to recover it",
                    path=target,
                )
            (self._staging / f"{entry.table}.parquet").replace(target)
        for table in TABLES:
            _fsync_dir(root / table)
        manifest = RunManifest(
            run_id=self.run_id,
            schema_version=SCHEMA_VERSION,
            committed_at=datetime.now(UTC),
            files=tuple(entries),
            run=run,
        )
        write_json_atomically(root / RUNS_DIR / f"{self.run_id}.json", manifest.to_json())
        # Committed. Leftovers from here on are harmless; recovery removes them.
        self._state = "committed"
        self._batches = {table: [] for table in TABLES}
        self._store._finished(self, manifest)
        try:
            self._staging.rmdir()
        except OSError as error:
            logger.warning("could not remove %s: %s", self._staging, error)
        logger.info(
            "run %s committed to %s: %s",
            self.run_id,
            root,
            ", ".join(f"{entry.table} {entry.rows}" for entry in entries),
        )
        return manifest

    def abort(self) -> None:
        """Forget the run: nothing of it is committed. Safe to call twice."""
        if self._state == "committed":
            raise RunStateError(f"run {self.run_id} is already committed; it cannot be aborted")
        if self._state == "open":
            try:
                shutil.rmtree(self._staging)
            except OSError as error:
                # Nothing of the run is committed either way; recovery retries the removal.
                logger.warning("could not remove %s: %s", self._staging, error)
            self._state = "aborted"
            self._batches = {table: [] for table in TABLES}
            self._store._finished(self, None)
            logger.info("run %s aborted", self.run_id)


def _converted(
    url: str, build: Callable[[Sequence[_Row]], pa.Table], rows: Sequence[_Row]
) -> pa.Table:
    """`build(rows)`, with the page's URL added to a conversion error."""
    try:
        return build(rows)
    except InvalidRecordError as error:
        raise InvalidRecordError(error.table, error.column, error.reason, url=url) from error


def _checked_version_key(page: HealthTopicPage) -> VersionKey:
    """The version key of `page`, each part checked so a bad item fails here, named."""
    problems = {
        "language": page.language not in LANGUAGES,
        "slug": not page.slug or not isinstance(page.slug, str),
        "last_updated": not isinstance(page.last_updated, date)
        or isinstance(page.last_updated, datetime),
        "content_hash": not page.content_hash or not isinstance(page.content_hash, str),
    }
    for field, bad in problems.items():
        if bad:
            value = getattr(page, field)
            raise InvalidRecordError(
                "topics", field, f"bad version key part {value!r}", url=page.url
            )
    return version_key(page)


def read_validators(path: Path | str | None) -> dict[str, Validators]:
    """Validators per canonical URL of the archive at `path`, read without the lock.

    ArchiveNotFoundError when there is no archive there (a first crawl).
    """
    if path is None:
        raise ArchiveNotFoundError("no archive path given")
    store = ArchiveStore.open(path, read_only=True)
    return dict(store.index().validators)
