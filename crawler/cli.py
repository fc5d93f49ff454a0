"""The `medlineplus-archive` command line.

Every command prints a one-line `error: ...` and exits non-zero on bad input, never a
traceback. Exit codes (for scheduled jobs): 0 success, 1 the work ran but failed (a run
over its error threshold, a page that is not a topic), 2 bad usage or unreadable input,
3 the site could not be reached, or the archive is locked by another crawl or unusable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from crawler.commands import (
    changes,
    crawl,
    extract,
    history,
    reextract,
    runs,
    snapshot,
    verify,
)
from crawler.commands.common import (
    EXIT_USAGE,
    CommandLineParser,
    UsageError,
    archive_exit_code,
)
from pipelines.errors import ArchiveError


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog="medlineplus-archive",
        description="Crawl MedlinePlus health-topic pages into a versioned Parquet archive.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (crawl, extract, runs, snapshot, history, changes, verify, reextract):
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ArchiveError as error:
        print(f"error: {error}", file=sys.stderr)
        return archive_exit_code(error)
    return status


if __name__ == "__main__":
    sys.exit(main())
