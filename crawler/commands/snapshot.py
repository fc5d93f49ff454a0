"""`snapshot --as-of DATE|RUN_ID --out PATH`: materialise one "as of" view of the topics.

What goes where:

* parquet (a directory): topics.parquet, links.parquet, clinical_trials.parquet (the
  entries of the versions selected) and journal_articles.parquet (the articles of those
  topics first seen by then), each with the archive's schema, plus snapshot.json saying
  what the snapshot is (as of what, from which runs, row counts);
* csv (one file): the topics, one row per topic; lists and structs as JSON text;
* jsonl (one file): one topic per line, its links and clinical_trials nested as lists.

Written atomically by crawler.commands.output (a temporary file or directory beside PATH,
then `os.replace`); a csv or jsonl snapshot goes to standard output with `--out -`.
The archive is only read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, get_args

from crawler.commands.common import (
    EXIT_OK,
    LATEST,
    UsageError,
    add_archive_option,
    archive_path,
    describe_as_of,
    resolve_as_of,
)
from crawler.commands.formats import emit, plain, write_csv
from crawler.commands.output import (
    STDOUT,
    OutputPath,
    output_path,
    write_directory,
    write_text,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from pipelines.archive.as_of import AsOf
    from pipelines.notebook import Archive

SnapshotFormat = Literal["parquet", "csv", "jsonl"]
SNAPSHOT_FORMATS: tuple[SnapshotFormat, ...] = get_args(SnapshotFormat)
PARQUET_TABLES = ("topics", "links", "clinical_trials", "journal_articles")
"""The tables of a parquet snapshot, one file each."""
NESTED_TABLES = ("links", "clinical_trials")
"""Entries nested in each topic of a jsonl snapshot."""
SNAPSHOT_INFO = "snapshot.json"
SNAPSHOT_FORMAT_NAME = "medlineplus-archive/snapshot"

_SUFFIX_FORMATS: dict[str, SnapshotFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "snapshot",
        help='write one "as of" view of the topics to a file or directory',
        description='Write one "as of" view of the archive\'s topics. --as-of DATE '
        "(YYYY-MM-DD, valid time): each topic's newest version with last_updated on or "
        "before DATE, leaving out topics observed gone by then. --as-of RUN_ID "
        "(transaction time): what the archive held right after that run. --as-of latest, "
        "or no --as-of: the current version of every live topic. "
        "Formats: parquet writes a directory with topics.parquet, links.parquet, "
        "clinical_trials.parquet, journal_articles.parquet (the archive's schemas) and "
        "snapshot.json (what the snapshot is); csv writes one file of topics, lists as "
        "JSON text; jsonl writes one topic per line with its links and clinical_trials "
        "nested. Written atomically; an existing csv/jsonl file is replaced (through a "
        "symlink: the file it points to), a parquet directory must not exist yet (or be "
        "empty); --out - writes csv or jsonl to standard output. The archive is only read.",
    )
    add_archive_option(parser)
    parser.add_argument(
        "--as-of",
        metavar="DATE|RUN_ID",
        help="a date (YYYY-MM-DD), a committed run id (see `runs`) or latest (the default)",
    )
    parser.add_argument(
        "--format",
        choices=SNAPSHOT_FORMATS,
        help="parquet (a directory), csv or jsonl (one file); default: from --out's suffix "
        "(.csv, .jsonl), else parquet",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="PATH",
        help="where to write: a new directory (parquet) or a file (csv, jsonl; - for "
        "standard output); not inside the archive",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.notebook import open_archive

    out: Path = args.out
    snapshot_format = args.format or _SUFFIX_FORMATS.get(out.suffix.lower(), "parquet")
    archive = open_archive(archive_path(args))
    output = _check_out(out, snapshot_format, archive)
    as_of = resolve_as_of(args.as_of, archive)
    topics = archive.topics(as_of)
    if snapshot_format == "parquet":
        tables = _parquet_tables(archive, as_of, topics)
        info = _info(archive, as_of, {name: table.num_rows for name, table in tables.items()})
        write_directory(output, lambda directory: _write_parquet(directory, tables, info))
        counts = ", ".join(
            f"{table.num_rows} {name.replace('_', ' ')}" for name, table in tables.items()
        )
    else:
        rows = _arrow("topics", topics).to_pylist()
        if snapshot_format == "csv":
            columns = _schema("topics").names
            write_text(output, lambda stream: write_csv(stream, columns, rows))
        else:
            nested = {name: _entries_by_version(archive, name, as_of) for name in NESTED_TABLES}
            write_text(output, lambda stream: _write_jsonl(stream, rows, nested))
        counts = f"{len(rows)} topics"
    report = f"wrote {counts} as of {describe_as_of(as_of, archive)} to {out}\n"
    if output.target is None:  # the snapshot is on standard output: the report goes beside
        sys.stderr.write(report)
    else:
        emit(report)
    return EXIT_OK


# --- what is written ------------------------------------------------------------------


def _schema(table: str) -> pa.Schema:
    from pipelines.core.schema import SCHEMAS, is_table_name

    if not is_table_name(table):
        raise ValueError(f"not a table: {table}")
    return SCHEMAS[table]


def _arrow(table: str, frame: pd.DataFrame) -> pa.Table:
    """A loader's frame as Arrow with the archive's schema (pandas' metadata left out)."""
    import pyarrow as pa

    schema = _schema(table)
    converted = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    return converted.replace_schema_metadata(schema.metadata)


def _parquet_tables(archive: Archive, as_of: AsOf, topics: pd.DataFrame) -> dict[str, pa.Table]:
    from pipelines.core.schema import TOPIC_KEY

    articles = archive.journal_articles(as_of=as_of)
    # Only the articles of the topics in the snapshot: a gone topic's feed is not part of it.
    articles = articles.merge(topics[list(TOPIC_KEY)], on=list(TOPIC_KEY))
    frames = {
        "topics": topics,
        "links": archive.links(as_of=as_of),
        "clinical_trials": archive.clinical_trials(as_of=as_of),
        "journal_articles": articles,
    }
    return {name: _arrow(name, frames[name]) for name in PARQUET_TABLES}


def _entries_by_version(
    archive: Archive, table: str, as_of: AsOf
) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """The entries of `table` per version key, in page order, without the key columns."""
    from pipelines.core.schema import VERSION_KEY

    frame = archive.links(as_of=as_of) if table == "links" else archive.clinical_trials(as_of=as_of)
    key_columns = (*VERSION_KEY, "run_id")
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in _arrow(table, frame).to_pylist():
        key = tuple(row[name] for name in VERSION_KEY)
        grouped.setdefault(key, []).append(
            {name: value for name, value in row.items() if name not in key_columns}
        )
    return grouped


def _write_jsonl(
    stream: IO[str],
    rows: list[dict[str, Any]],
    nested: dict[str, dict[tuple[Any, ...], list[dict[str, Any]]]],
) -> None:
    from pipelines.core.schema import VERSION_KEY

    for row in rows:
        key = tuple(row[name] for name in VERSION_KEY)
        entries = {name: by_version.get(key, []) for name, by_version in nested.items()}
        stream.write(json.dumps(plain({**row, **entries}), ensure_ascii=False) + "\n")


def _info(archive: Archive, as_of: AsOf, rows: dict[str, int]) -> dict[str, Any]:
    from pipelines.core.schema import SCHEMA_VERSION

    newest: tuple[str, ...] = archive.run_ids[-1:]
    if isinstance(as_of, date):
        kind, value = "date", as_of.isoformat()
    elif as_of is not None:
        kind, value, newest = "run", as_of, (as_of,)
    else:
        kind, value = LATEST, LATEST
    return {
        "format": SNAPSHOT_FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "archive": str(archive.path.resolve() if isinstance(archive.path, Path) else archive.path),
        "as_of": value,
        "as_of_kind": kind,
        "newest_run_read": newest[0] if newest else None,
        "created_at": datetime.now(UTC).isoformat(),
        "tables": {
            name: {"file": f"{name}.parquet", "rows": count} for name, count in rows.items()
        },
    }


def _write_parquet(directory: Path, tables: dict[str, pa.Table], info: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    for name, table in tables.items():
        with (directory / f"{name}.parquet").open("wb") as stream:
            pq.write_table(table, stream, compression="zstd")
            _flush(stream)
    with (directory / SNAPSHOT_INFO).open("w", encoding="utf-8") as stream:
        stream.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        _flush(stream)


def _flush(stream: IO[Any]) -> None:
    """Make a written file durable before its directory is renamed into place."""
    stream.flush()
    os.fsync(stream.fileno())


# --- where it is written --------------------------------------------------------------


def _check_out(out: Path, snapshot_format: SnapshotFormat, archive: Archive) -> OutputPath:
    """Where to write, checked (see crawler.commands.output): never into the archive."""
    if str(out) == STDOUT and snapshot_format == "parquet":
        raise UsageError(
            f"--out {STDOUT}: a parquet snapshot is a directory and cannot go to standard "
            "output; pass --format csv or jsonl"
        )
    output = output_path("--out", out, directory=snapshot_format == "parquet")
    if output.target is not None and archive.store.contains(output.target):
        raise UsageError(f"--out: {out} is inside the archive {archive.path}; write elsewhere")
    return output
