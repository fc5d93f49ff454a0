"""`reextract [--run RUN_ID | --all] [--commit]`: the current parser over the stored raw pages."""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from crawler.commands.common import EXIT_OK, add_archive_option, archive_path
from pipelines.core.errors import UnknownRunError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "reextract",
        help="re-run the current parser over the raw pages kept in WARC files",
        description="Parse again the raw page (from the run WARC files) of every stored "
        "version of one run (--run) or of all runs (--all, the default), and report, per "
        "field, which versions the current parser would extract differently. With "
        "--commit, the corrected versions are written as a new run (old files are never "
        "rewritten); a correction that keeps the version key (e.g. only date_created) "
        "cannot be stored again and is listed as skipped.",
    )
    add_archive_option(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--run", dest="run_id", metavar="RUN_ID", help="only the versions this run stored"
    )
    which.add_argument("--all", action="store_true", help="every version (the default)")
    parser.add_argument(
        "--commit", action="store_true", help="write the corrected versions as a new run"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.archive.reextract import commit_reextracted, reextract
    from pipelines.core.store import ArchiveStore
    from pipelines.notebook import open_archive

    path = archive_path(args)
    archive = open_archive(path)  # one-line errors for a missing or foreign archive
    if args.run_id is not None and args.run_id not in archive.run_ids:
        raise UnknownRunError(args.run_id, Path(path))
    if args.commit:
        # Before the work: a locked archive, or one on a read-only or full disk, is exit 3.
        ArchiveStore.open(path, create=False).close()
    results = reextract(path, [args.run_id] if args.run_id else None)
    per_field: Counter[str] = Counter()
    for result in results:
        per_field.update(change.field for change in result.changes)
    changed = [result for result in results if result.changes or result.error]
    print(f"{len(results)} versions re-extracted, {len(changed)} would change")
    for field, count in sorted(per_field.items()):
        print(f"  {field}: {count} versions")
    for result in changed:
        language, slug, last_updated, content_hash = result.key
        what = result.error or ", ".join(sorted({change.field for change in result.changes}))
        print(f"{language}/{slug} {last_updated} {content_hash[:12]} (run {result.run_id}): {what}")
    if args.commit:
        run_id, skipped = commit_reextracted(path, results, datetime.now(UTC))
        print(f"committed as run {run_id}" if run_id else "nothing to commit")
        for result in skipped:
            print(f"skipped (same version key): {result.key[0]}/{result.key[1]} {result.key[2]}")
    return EXIT_OK
