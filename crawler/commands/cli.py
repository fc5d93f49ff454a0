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
from importlib import metadata

from crawler.commands import (
    changes,
    compact,
    crawl,
    extract,
    feed,
    history,
    page,
    publish,
    reextract,
    repair,
    runs,
    snapshot,
    vacuum,
    verify,
)
from crawler.commands.common import (
    EXIT_ARCHIVE,
    EXIT_FAILED,
    EXIT_USAGE,
    CommandLineParser,
    OutputWriteError,
    UsageError,
    archive_exit_code,
    os_error_line,
)
from pipelines.core.errors import ArchiveError

DISTRIBUTION = "medlineplus-archive"


def installed_version() -> str:
    """The version of the installed distribution ("unknown" when run from a checkout that
    was never installed)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog=DISTRIBUTION,
        description="Crawl MedlinePlus health-topic pages into a versioned Parquet archive.",
        epilog="Exit codes, for every command: 0 success; 1 the work ran but is incomplete "
        "or failed; 2 bad usage or unreadable input (checked before anything is fetched "
        "or written); 3 the environment failed (site unreachable; archive locked, on a "
        "read-only or full disk, not a folder, damaged or from a newer version). Errors "
        "are one line on stderr starting `error:`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (
        crawl,
        extract,
        runs,
        snapshot,
        history,
        page,
        changes,
        feed,
        verify,
        compact,
        vacuum,
        repair,
        reextract,
        publish,
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
    except OutputWriteError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ARCHIVE
    except ArchiveError as error:
        print(f"error: {error}", file=sys.stderr)
        return archive_exit_code(error)
    except OSError as error:  # a disk or file that failed under the command
        print(f"error: {os_error_line(error)}", file=sys.stderr)
        return EXIT_ARCHIVE
    except KeyboardInterrupt:  # Ctrl-C before a crawl handles it (a dump being fetched)
        print("\nerror: interrupted", file=sys.stderr)
        return EXIT_FAILED
    return status


if __name__ == "__main__":
    sys.exit(main())
