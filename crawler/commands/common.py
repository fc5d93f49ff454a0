"""What every subcommand shares: exit codes, the usage error, the --archive option."""

from __future__ import annotations

import argparse
import os

EXIT_OK = 0
EXIT_FAILED = 1
"""The work ran but failed: a page that is not a topic, a run over its error threshold."""
EXIT_USAGE = 2
"""Bad arguments or unreadable input."""
EXIT_ARCHIVE = 3
"""The archive is locked by another crawl, or unusable."""

ARCHIVE_ENVIRONMENT = "MEDLINEPLUS_ARCHIVE"


class UsageError(Exception):
    """Bad arguments or unreadable input: exit 2 with the message."""


def default_archive() -> str:
    return os.environ.get(ARCHIVE_ENVIRONMENT) or "output"


def add_archive_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--archive",
        metavar="PATH",
        default=None,
        help=f"the archive directory (default: ${ARCHIVE_ENVIRONMENT}, else ./output)",
    )


def archive_path(args: argparse.Namespace) -> str:
    return str(args.archive or default_archive())
