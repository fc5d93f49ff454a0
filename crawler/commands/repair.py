"""`repair`: rebuild lost run manifests from the runs' files (`pipelines.core.repair`)."""

from __future__ import annotations

import argparse

from crawler.commands.common import EXIT_OK, add_archive_option, archive_path
from crawler.commands.formats import emit


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "repair",
        help="rebuild the manifest of a run whose manifest was lost, from its files",
        description="Rebuild the manifest (_runs/<run_id>.json) of every run older than "
        "the last committed run whose data files are there but whose manifest is not (a "
        "mistaken cleanup, a bad restore: `crawl` then refuses to start and `verify` "
        "names the run), or of a run whose files a compaction merged (they are then in "
        "_retired/ until `vacuum`, and the archive cannot be read until the repair). "
        "Checks each such run's files first: one Parquet part per table "
        "with the table's schema, every row of the run, its run record in the runs "
        "table, and its WARC file's records and digests, which the versions point to. "
        "Then writes the manifests, and moves or rewrites no data file; `verify` passes "
        "afterwards and the next crawl runs. Exit 3, with nothing written, when a run's "
        "files are damaged or inconsistent, or while a crawl holds the write lock. "
        "Prints what it rebuilt; `nothing to repair` when no manifest is missing.",
    )
    add_archive_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.core.repair import repair_archive

    rebuilt = repair_archive(archive_path(args))
    if not rebuilt:
        emit("nothing to repair: no run's manifest is missing\n")
        return EXIT_OK
    emit(
        "".join(
            f"rebuilt the manifest of run {manifest.run_id}: "
            + ", ".join(f"{entry.table} {entry.rows}" for entry in manifest.files)
            + (f", warc {manifest.warc.rows} records" if manifest.warc is not None else "")
            + "\n"
            for manifest in rebuilt
        )
    )
    return EXIT_OK
