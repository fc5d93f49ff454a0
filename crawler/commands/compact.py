"""`compact`: merge runs' small files now, as a crawl does after its commit."""

from __future__ import annotations

import argparse

from crawler.commands.common import EXIT_OK, UsageError, add_archive_option, archive_path
from crawler.commands.formats import emit


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "compact",
        help="merge runs' small files into larger ones now (a crawl does it every 16 runs)",
        description="Merge the runs' small files now, as a crawl does after its commit: "
        "every N consecutive runs' files of each table into one file (and every N such "
        "files into one again), committed with a manifest in _compactions/; the files "
        "merged move to _retired/ (see `vacuum`). Then writes a checkpoint, so opening "
        "stays fast. For archives crawled with -s ARCHIVE_COMPACT_EVERY=0 (no merging "
        "during crawls), or to catch up. Readers see the same rows before and after. "
        "Takes the archive's write lock: exit 3 while a crawl is running, or when a file "
        "to merge is damaged (nothing is committed then).",
    )
    add_archive_option(parser)
    parser.add_argument(
        "--every",
        type=int,
        default=None,
        metavar="N",
        help="merge N consecutive files of one level, N >= 2 (default 16, like the crawl "
        "setting ARCHIVE_COMPACT_EVERY)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.archive.state import ArchiveState
    from pipelines.core.compaction import DEFAULT_COMPACT_EVERY, policy_every
    from pipelines.core.store import ArchiveStore

    every = DEFAULT_COMPACT_EVERY if args.every is None else args.every
    if every < 2:
        raise UsageError(f"--every must be at least 2, not {every}")
    policy = policy_every(every)
    with ArchiveStore.open(archive_path(args), create=False) as store:
        ArchiveState.of(store)  # so that the checkpoint saves the sightings log too
        done = store.compact(policy)
        files = len(store.live_files("topics"))
    lines = [
        f"compaction {manifest.compaction_id}: {len(manifest.tables[0].inputs)} files of "
        f"runs {manifest.first_run} to {manifest.last_run} merged into one per table "
        f"(level {manifest.level})\n"
        for manifest in done
    ]
    if done:
        lines.append(f"compacted: {len(done)} compactions; {files} files per table in use\n")
    else:
        lines.append(
            f"nothing to compact: fewer than {every} consecutive files of one level "
            f"({files} files per table in use)\n"
        )
    emit("".join(lines))
    return EXIT_OK
