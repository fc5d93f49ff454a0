"""What the committed manifests add up to: the files readers use, and checkpoints of it.

`FileSet` is the set of files a reader uses per table, oldest runs first: each run's own
files, except those a committed compaction replaced by its compacted file. It is a pure
function of the run manifests and compaction manifests, applied in commit order.

A *checkpoint* (`_catalog/<last_run>.<compactions>/`) saves that file set, the committed
run ids and compaction ids, and the *derived tables* the layers above give it (named
Arrow tables, one `<name>.parquet` each: the archive domain's sightings log, validators
and stored versions, see `pipelines.archive.state`), so opening a ten-year archive reads
one small JSON file and a few small Parquet files instead of thousands of manifests and
millions of observations. It is derived data: written complete under a temporary name
and renamed into place, trusted only when it agrees with the manifests present (its run
ids must be exactly the committed runs up to its last run, its compactions a prefix of
the committed ones), and never needed: without one, readers rebuild everything from the
manifests and the tables. The catalog does not know what the derived tables mean; it
checks their digests, and their readers give the schema to read them with.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import ArchiveCorruptError
from pipelines.core.layout import (
    CATALOG_DIR,
    PARQUET_COMPRESSION,
    fsync_dir,
    read_json,
    write_file_durably,
)
from pipelines.core.records import CompactionManifest, ManifestFile, RunManifest, decode_value
from pipelines.core.schema import SCHEMA_VERSION, TABLES
from pipelines.core.storage import ArchivePath

logger = logging.getLogger(__name__)

CATALOG_FORMAT = "medlineplus-archive/catalog"
CATALOG_FILE = "catalog.json"
DERIVED_SUFFIX = ".parquet"
"""A derived table `<name>` is saved as `<name>.parquet`."""
CHECKPOINTS_KEPT = 2
"""Checkpoints kept: the newest, and the one before for readers that opened it."""


@dataclass(frozen=True, slots=True)
class LiveFile:
    """A file readers use, and the runs whose rows it holds."""

    entry: ManifestFile
    """The file as committed (path, rows, bytes, sha256)."""
    first_run: str
    """The oldest run with rows in the file."""
    last_run: str
    """The newest run with rows in the file."""
    level: int
    """0 for a run's own file, n for the file of a level-n compaction."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {
            "path": self.entry.path,
            "rows": self.entry.rows,
            "bytes": self.entry.bytes,
            "sha256": self.entry.sha256,
            "first_run": self.first_run,
            "last_run": self.last_run,
            "level": self.level,
        }

    @classmethod
    def from_json(cls, table: str, data: Mapping[str, Any]) -> LiveFile:
        """Parse `to_json`'s output; ValueError, TypeError or KeyError when malformed."""
        entry = ManifestFile(
            table=table,
            path=decode_value(str, data["path"]),
            rows=decode_value(int, data["rows"]),
            bytes=decode_value(int, data["bytes"]),
            sha256=decode_value(str, data["sha256"]),
        )
        return cls(
            entry,
            decode_value(str, data["first_run"]),
            decode_value(str, data["last_run"]),
            decode_value(int, data["level"]),
        )


class FileSet:
    """The files readers use, per table, oldest runs first."""

    def __init__(self, tables: Mapping[str, Sequence[LiveFile]] | None = None) -> None:
        self._tables: dict[str, list[LiveFile]] = {table: [] for table in TABLES}
        for table, files in (tables or {}).items():
            self._tables[table] = list(files)

    def copy(self) -> FileSet:
        """An independent copy."""
        return FileSet(self._tables)

    def files(self, table: str) -> list[LiveFile]:
        """The files of `table`, oldest runs first."""
        return list(self._tables.get(table, ()))

    def __iter__(self) -> Iterator[LiveFile]:
        for files in self._tables.values():
            yield from files

    def paths(self) -> set[str]:
        """Every file's path relative to the archive root."""
        return {live.entry.path for live in self}

    def add_run(self, manifest: RunManifest) -> None:
        """Add the files committed by a run."""
        self.add_run_files(manifest.run_id, manifest.files)

    def add_run_files(self, run_id: str, entries: Iterable[ManifestFile]) -> None:
        """Add `entries`, files committed by run `run_id`."""
        for entry in entries:
            live = LiveFile(entry, run_id, run_id, 0)
            self._tables.setdefault(entry.table, []).append(live)

    def apply_compaction(self, manifest: CompactionManifest) -> None:
        """Replace the inputs of a committed compaction by its files.

        ValueError when the inputs are not consecutive files of the set (the manifests
        disagree with each other); the set is then unchanged.
        """
        replaced: dict[str, list[LiveFile]] = {}
        for part in manifest.tables:
            files = self._tables.get(part.table, [])
            paths = [live.entry.path for live in files]
            wanted = [entry.path for entry in part.inputs]
            merged = LiveFile(part.output, manifest.first_run, manifest.last_run, manifest.level)
            if not wanted:  # the runs merged are older than the table
                if any(
                    manifest.first_run <= live.last_run and live.first_run <= manifest.last_run
                    for live in files
                ):
                    raise ValueError(
                        f"compaction {manifest.compaction_id} lists no {part.table} file "
                        "of its runs, yet some are in use"
                    )
                start = sum(1 for live in files if live.last_run < manifest.first_run)
                replaced[part.table] = [*files[:start], merged, *files[start:]]
                continue
            try:
                start = paths.index(wanted[0])
            except ValueError:
                raise ValueError(
                    f"compaction {manifest.compaction_id} replaces {wanted[0]}, "
                    "which no committed run or compaction left in use"
                ) from None
            if paths[start : start + len(wanted)] != wanted:
                raise ValueError(
                    f"compaction {manifest.compaction_id}: its {part.table} inputs are not "
                    "consecutive files in use"
                )
            replaced[part.table] = [*files[:start], merged, *files[start + len(wanted) :]]
        self._tables.update(replaced)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """Plain JSON types."""
        return {table: [live.to_json() for live in files] for table, files in self._tables.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileSet:
        """Parse `to_json`'s output; ValueError, TypeError or KeyError when malformed."""
        return cls(
            {
                str(table): [LiveFile.from_json(str(table), item) for item in files]
                for table, files in data.items()
            }
        )


def commit_order(run_ids: Iterable[str], compaction_ids: Iterable[str]) -> list[tuple[str, str]]:
    """("run", id) and ("compaction", id) merged in an order that applies each compaction
    after every run and compaction it replaces files of: by id, since a compaction's id
    starts with the id of the last run it covers (see `pipelines.core.compaction`)."""
    items = [("run", run_id) for run_id in run_ids]
    items += [("compaction", compaction_id) for compaction_id in compaction_ids]
    return sorted(items, key=lambda item: item[1])


# --- checkpoints ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint read from `_catalog/` (its derived tables are read on demand)."""

    directory: ArchivePath
    """Its directory."""
    last_run: str
    """The newest run it covers."""
    run_ids: tuple[str, ...]
    """Every run it covers, in order."""
    compaction_ids: tuple[str, ...]
    """Every compaction it covers, in order."""
    files: FileSet
    """The file set after those runs and compactions."""
    state: Mapping[str, Mapping[str, Any]]
    """Per derived table's file name: its sha256, bytes and rows."""

    @property
    def relative_path(self) -> str:
        """Its directory, relative to the archive (as problems name files)."""
        return f"{CATALOG_DIR}/{self.directory.name}"

    @property
    def derived_names(self) -> tuple[str, ...]:
        """The names of the derived tables it holds."""
        return tuple(
            sorted(name.removesuffix(DERIVED_SUFFIX) for name in self.state if _is_derived(name))
        )

    def read_derived(self, name: str, schema: pa.Schema | None = None) -> pa.Table:
        """Derived table `name` (cast to `schema`, when given); ArchiveCorruptError when it
        is damaged, or not in this checkpoint."""
        file_name = f"{name}{DERIVED_SUFFIX}"
        path = self.directory / file_name
        expected = self.state.get(file_name, {})
        try:
            if not expected:
                raise ValueError(f"the catalog lists no {file_name}")
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != expected.get("sha256"):
                raise ValueError("sha256 differs from the catalog's")
            table = pq.read_table(pa.BufferReader(data))
            if schema is not None:
                table = table.cast(schema)
        except (OSError, ValueError, pa.ArrowException) as error:
            raise ArchiveCorruptError(
                f"checkpoint file {path} is unusable ({error}); readers rebuild what it "
                "holds from the tables, and the next crawl writes a new checkpoint",
                path=path,
            ) from error
        return table


def checkpoint_names(root: ArchivePath) -> list[str]:
    """Names of the complete checkpoints, oldest first."""
    try:
        entries = [entry.name for entry in (root / CATALOG_DIR).iterdir()]
    except FileNotFoundError:
        return []
    return sorted((name for name in entries if not name.startswith(".")), key=_checkpoint_order)


def _checkpoint_order(name: str) -> tuple[str, int]:
    last_run, _, count = name.rpartition(".")
    return (last_run, int(count) if count.isdigit() else -1)


def read_checkpoint(
    root: ArchivePath, run_ids: Sequence[str], compaction_ids: Sequence[str]
) -> Checkpoint | None:
    """The newest checkpoint that agrees with the committed `run_ids` and `compaction_ids`
    (both in commit order), None when there is none."""
    for name in reversed(checkpoint_names(root)):
        directory = root / CATALOG_DIR / name
        try:
            checkpoint = _load_checkpoint(directory)
        except (ArchiveCorruptError, ValueError, TypeError, KeyError) as error:
            logger.warning("ignoring checkpoint %s: %s", directory, error)
            continue
        covered = len(checkpoint.run_ids)
        if tuple(run_ids[:covered]) != checkpoint.run_ids or (
            covered < len(run_ids) and run_ids[covered] <= checkpoint.last_run
        ):
            logger.warning(
                "ignoring checkpoint %s: its runs differ from the committed manifests", directory
            )
            continue
        count = len(checkpoint.compaction_ids)
        if tuple(compaction_ids[:count]) != checkpoint.compaction_ids:
            logger.warning(
                "ignoring checkpoint %s: its compactions differ from the committed manifests",
                directory,
            )
            continue
        return checkpoint
    return None


def _load_checkpoint(directory: ArchivePath) -> Checkpoint:
    data = read_json(directory / CATALOG_FILE, "checkpoint")
    if not isinstance(data, dict) or data.get("format") != CATALOG_FORMAT:
        raise ValueError("not a catalog checkpoint")
    version = data.get("schema_version")  # every version so far writes the same checkpoint
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise ValueError(f"schema version {version!r}")
    run_ids = tuple(decode_value(list[str], data["run_ids"]))
    last_run = decode_value(str, data["last_run"])
    if not run_ids or run_ids[-1] != last_run or list(run_ids) != sorted(set(run_ids)):
        raise ValueError("its run ids are not in order")
    state = data["state"]
    if not isinstance(state, dict) or not all(
        _is_derived(name) and isinstance(entry, dict) for name, entry in state.items()
    ):
        raise ValueError("malformed state entry")
    return Checkpoint(
        directory=directory,
        last_run=last_run,
        run_ids=run_ids,
        compaction_ids=tuple(decode_value(list[str], data["compaction_ids"])),
        files=FileSet.from_json(data["files"]),
        state=state,
    )


def write_checkpoint(
    root: Path,
    run_ids: Sequence[str],
    compaction_ids: Sequence[str],
    files: FileSet,
    derived: Mapping[str, pa.Table],
) -> Path | None:
    """Save a checkpoint of the committed state, with the `derived` tables by name;
    returns its directory (None without runs).

    Written under a temporary name, fsync'ed, then renamed: a checkpoint directory is
    always complete. Older checkpoints beyond `CHECKPOINTS_KEPT` are removed (derived
    data, rebuilt on demand).
    """
    if not run_ids:
        return None
    catalog = root / CATALOG_DIR
    catalog.mkdir(exist_ok=True)
    name = f"{run_ids[-1]}.{len(compaction_ids)}"
    final = catalog / name
    temporary = catalog / f".tmp-{name}-{secrets.token_hex(4)}"
    temporary.mkdir()
    state: dict[str, dict[str, Any]] = {}
    for table_name, table in sorted(derived.items()):
        file_name = f"{table_name}{DERIVED_SUFFIX}"
        if "/" in table_name or not _is_derived(file_name):
            raise ValueError(f"{table_name!r} cannot name a derived table")
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=PARQUET_COMPRESSION)
        sha256, size = write_file_durably(temporary / file_name, bytes(sink.getvalue()))
        state[file_name] = {"sha256": sha256, "bytes": size, "rows": table.num_rows}
    document = {
        "format": CATALOG_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "written_at": datetime.now(UTC).isoformat(),
        "last_run": run_ids[-1],
        "run_ids": list(run_ids),
        "compaction_ids": list(compaction_ids),
        "files": files.to_json(),
        "state": state,
    }
    write_file_durably(temporary / CATALOG_FILE, json.dumps(document).encode("utf-8"))
    fsync_dir(temporary)
    if final.exists():
        # One for the same runs already exists (damaged, or it would not be rewritten):
        # set it aside; meanwhile readers use the previous checkpoint.
        aside = catalog / f".tmp-replaced-{name}-{secrets.token_hex(4)}"
        final.replace(aside)
        shutil.rmtree(aside, ignore_errors=True)
    temporary.replace(final)
    fsync_dir(catalog)
    for old in checkpoint_names(root)[:-CHECKPOINTS_KEPT]:
        shutil.rmtree(catalog / old, ignore_errors=True)
    logger.debug("checkpoint %s written", final)
    return final


def _is_derived(file_name: str) -> bool:
    """Whether `file_name` can be a derived table's file (`<name>.parquet`)."""
    return (
        file_name.endswith(DERIVED_SUFFIX)
        and len(file_name) > len(DERIVED_SUFFIX)
        and not file_name.startswith(".")
    )


def remove_temporary_checkpoints(root: Path) -> list[Path]:
    """Remove checkpoints that were never completed; returns what was removed."""
    catalog = root / CATALOG_DIR
    removed = []
    if catalog.is_dir():
        for entry in sorted(catalog.iterdir()):
            if entry.name.startswith(".tmp-"):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed
