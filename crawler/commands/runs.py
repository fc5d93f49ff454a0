"""`runs`: the archive's committed runs, oldest first, with their status and counts."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from crawler.commands.common import EXIT_OK, add_archive_option, archive_path
from crawler.commands.formats import (
    OUTPUT_FORMATS,
    emit,
    render_csv,
    render_json,
    render_table,
    short_time,
)
from crawler.parsing.items import to_jsonable

if TYPE_CHECKING:
    from pipelines.core.records import RunManifest

TABLE_COLUMNS = (
    "run_id",
    "started",
    "took",
    "status",
    "fetched",
    "new",
    "unchanged",
    "same_date_edit",
    "error",
    "gone",
    "versions",
    "notes",
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "runs",
        help="list the archive's committed runs with their status and counts",
        description="List the archive's committed runs, newest last: when each started, "
        "how it ended (success, partial, failed), how many pages it fetched and what it "
        "found (new, unchanged, same_date_edit, error, gone), and how many versions it "
        "wrote. Runs of crawls that died before committing never happened and are not "
        "listed. Reads the run manifests only; works while a crawl is running.",
    )
    add_archive_option(parser)
    parser.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default="table",
        help="table (default, for people), csv or json (every field of the run record, "
        "plus committed_at and versions_written)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.notebook import open_archive

    archive = open_archive(archive_path(args))
    manifests = archive.store.manifests
    if args.format == "table":
        if not manifests:
            emit(f"no committed runs in {archive.path}\n")
        else:
            emit(render_table(TABLE_COLUMNS, [_table_row(manifest) for manifest in manifests]))
        return EXIT_OK
    rows = [_full_row(manifest) for manifest in manifests]
    columns = list(rows[0]) if rows else _full_columns()
    render = render_csv if args.format == "csv" else render_json
    emit(render(columns, rows))
    return EXIT_OK


def versions_written(manifest: RunManifest) -> int:
    """Rows the run added to the topics table: the versions it stored."""
    return sum(entry.rows for entry in manifest.files if entry.table == "topics")


def _table_row(manifest: RunManifest) -> list[Any]:
    run = manifest.run
    notes = [*run.failure_reasons, *run.notes]
    if run.finish_reason and run.finish_reason != "finished":
        notes.insert(0, f"finish reason: {run.finish_reason}")
    return [
        run.run_id,
        short_time(run.started_at),
        _duration((run.finished_at - run.started_at).total_seconds()),
        run.status,
        run.pages_fetched,
        run.pages_new,
        run.pages_unchanged,
        run.pages_same_date_edit,
        run.pages_error,
        run.pages_gone,
        versions_written(manifest),
        "; ".join(notes),
    ]


def _full_row(manifest: RunManifest) -> dict[str, Any]:
    row: dict[str, Any] = to_jsonable(manifest.run)
    row["committed_at"] = manifest.committed_at
    row["versions_written"] = versions_written(manifest)
    return row


def _full_columns() -> list[str]:
    import dataclasses

    from pipelines.core.records import RunRecord

    return [f.name for f in dataclasses.fields(RunRecord)] + ["committed_at", "versions_written"]


def _duration(seconds: float) -> str:
    """1.5 -> "1.5s", 754 -> "12m34s", 7384 -> "2h03m"."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, second = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{second:02d}s"
    hours, minute = divmod(minutes, 60)
    return f"{hours}h{minute:02d}m"
