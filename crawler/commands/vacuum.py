"""`vacuum`: delete the retired files no reader needs any more (`pipelines.core.vacuum`)."""

from __future__ import annotations

import argparse

from crawler.commands.common import EXIT_OK, UsageError, add_archive_option, archive_path
from crawler.commands.formats import emit

DEFAULT_RETAIN_DAYS = 7
"""Days a retired file is kept after its compaction (--retain-days)."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "vacuum",
        help="delete retired files (replaced by a compaction) older than N days",
        description="Delete the files in _retired/: those a compaction replaced by a "
        "merged file, which no reader of the manifests reads, once the compaction was "
        "committed more than N days ago (a reader that opened the archive before it may "
        "still read them). Never deletes a file in use, nor anything no compaction "
        "retired. Verifies the archive first and refuses a damaged one (exit 3, nothing "
        "deleted), then lists the files in _vacuumed/<id>.json before deleting them, so "
        "`verify` passes afterwards. Prints what it freed. Takes the archive's write "
        "lock: exit 3 while a crawl is running.",
    )
    add_archive_option(parser)
    parser.add_argument(
        "--retain-days",
        type=int,
        default=DEFAULT_RETAIN_DAYS,
        metavar="N",
        help=f"keep files retired fewer than N days ago, N >= 0 (default {DEFAULT_RETAIN_DAYS})",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be freed; delete nothing"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.core.store import ArchiveStore
    from pipelines.core.vacuum import vacuum

    if args.retain_days < 0:
        raise UsageError(f"--retain-days must be at least 0, not {args.retain_days}")
    with ArchiveStore.open(archive_path(args), create=False) as store:
        result = vacuum(store, retain_days=args.retain_days, dry_run=args.dry_run)
    verb = "would free" if args.dry_run else "freed"
    line = f"{verb} {_files(len(result.freed))}, {_size(result.freed_bytes)}"
    if result.kept:
        line += (
            f"; kept {_files(len(result.kept))}, {_size(result.kept_bytes)}, retired within "
            f"the last {args.retain_days} days"
        )
    emit(line + "\n")
    return EXIT_OK


def _files(count: int) -> str:
    return f"{count} retired file{'' if count == 1 else 's'}"


def _size(size: int) -> str:
    """Bytes, with a binary-prefixed size beside them: "1536 bytes (1.5 KiB)"."""
    if size < 1024:
        return f"{size} bytes"
    shown, unit = size / 1024, "KiB"
    for larger in ("MiB", "GiB", "TiB"):
        if shown < 1024:
            break
        shown, unit = shown / 1024, larger
    return f"{size} bytes ({shown:.1f} {unit})"
