"""The `medlineplus-archive` command line.

Every error is one line on stderr, `error: ...`, naming the path, URL or option at
fault, never a traceback. One rule of exit codes for every command (for scheduled jobs):

* 0: success.
* 1: the work ran but is incomplete or failed (a crawl over its error threshold or with
  index pages that failed, a page that is not a topic, a problem `verify` found).
* 2: bad usage or unreadable input, found before anything is fetched or written: a bad
  option or number, a date or run id the archive does not have, an --archive folder
  that holds no archive.
* 3: the environment failed: the site cannot be reached, the archive is locked, on a
  read-only or full disk, not a folder, damaged or from a newer version.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from crawler.commands import (
    changes,
    compact,
    crawl,
    extract,
    history,
    reextract,
    runs,
    snapshot,
    vacuum,
    verify,
)
from crawler.commands.common import (
    EXIT_ARCHIVE,
    EXIT_USAGE,
    CommandLineParser,
    UsageError,
    archive_exit_code,
    os_error_line,
)
from pipelines.errors import ArchiveError


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog="medlineplus-archive",
        description="Crawl MedlinePlus health-topic pages into a versioned Parquet archive.",
        epilog="Exit codes, for every command: 0 success; 1 the work ran but is incomplete "
        "or failed; 2 bad usage or unreadable input (checked before anything is fetched "
        "or written); 3 the environment failed (site unreachable; archive locked, on a "
        "read-only or full disk, not a folder, damaged or from a newer version). Errors "
        "are one line on stderr starting `error:`.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (
        crawl,
        extract,
        runs,
        snapshot,
        history,
        changes,
        verify,
        compact,
        vacuum,
        reextract,
    ):
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
    except OSError as error:  # a disk or file that failed under the command
        print(f"error: {os_error_line(error)}", file=sys.stderr)
        return EXIT_ARCHIVE
    return status


if __name__ == "__main__":
    sys.exit(main())
