"""What every subcommand shares: exit codes (from `pipelines.exit_codes`), the usage error,
the --archive option, the range checks of numbers, --as-of and when runs ended."""

from __future__ import annotations

import argparse
import math
import os
from datetime import date, datetime
from typing import TYPE_CHECKING, NoReturn

from pipelines.core.errors import (
    ArchiveError,
    ArchiveNotFoundError,
    ArchiveSchemaError,
    UnknownRunError,
)
from pipelines.exit_codes import EXIT_ARCHIVE as EXIT_ARCHIVE
from pipelines.exit_codes import EXIT_FAILED as EXIT_FAILED
from pipelines.exit_codes import EXIT_OK as EXIT_OK
from pipelines.exit_codes import EXIT_USAGE as EXIT_USAGE

if TYPE_CHECKING:
    from pipelines.archive.as_of import AsOf
    from pipelines.notebook import Archive

ARCHIVE_ENVIRONMENT = "MEDLINEPLUS_ARCHIVE"


class UsageError(Exception):
    """Bad arguments or unreadable input: exit 2 with the message."""


class OutputWriteError(Exception):
    """An output that was checked and allowed could not be written (a full or read-only
    disk): the environment failed, exit 3 with the message."""


class CommandLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, `error: ...`, and exit 2.

    Subcommand parsers made by `add_subparsers().add_parser` inherit the class.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")


def archive_exit_code(error: ArchiveError) -> int:
    """The exit code for an archive error.

    2 (EXIT_USAGE) when the command named the wrong thing, so changing the arguments fixes
    it: no archive at the path (a missing folder, or one without an archive for a command
    that reads), a folder that holds something else, a run id that is not committed.
    3 (EXIT_ARCHIVE) when the archive's environment failed: a path that is not a folder
    (a file, or a path through one), the archive locked by a crawl, a disk it cannot be
    written on, written by a newer medlineplus-archive, or damaged (a marker, manifest or
    Parquet file that cannot be read: run `verify`).
    """
    if isinstance(error, ArchiveNotFoundError | UnknownRunError):
        return EXIT_USAGE
    if isinstance(error, ArchiveSchemaError) and error.newer_version is None:
        return EXIT_USAGE
    return EXIT_ARCHIVE


def os_error_line(error: OSError) -> str:
    """An error of the operating system as one line naming its file: "PATH: reason"."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    return f"{error.filename}: {reason}"


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


def check_range(name: str, value: float, low: float, high: float | None = None) -> None:
    """UsageError unless `value` is a finite number from `low` to `high` (None: no limit)."""
    if math.isfinite(value) and low <= value and (high is None or value <= high):
        return
    upper = "" if high is None else f" and at most {high:g}"
    raise UsageError(f"{name} must be at least {low:g}{upper}, not {value}")


# --- --as-of, and the runs' times, as the commands that read the archive take them

LATEST = "latest"
"""--as-of latest: the current version of every live topic."""


def resolve_as_of(text: str | None, archive: Archive) -> AsOf:
    """--as-of as the loader takes it: None (latest), a committed run id or a date
    (`pipelines.archive.as_of.resolve_as_of` decides which)."""
    from pipelines.archive.as_of import BadAsOfDateError, DateCut, RunCut
    from pipelines.archive.as_of import resolve_as_of as resolve

    if text is None or text == LATEST:
        return None
    try:
        cut = resolve(text, archive.run_ids, archive.path)
    except BadAsOfDateError as error:
        raise UsageError(f"--as-of: {error}") from None
    except UnknownRunError:
        raise UsageError(
            f"--as-of: {text!r} is neither a date (YYYY-MM-DD) nor a committed run of "
            f"{archive.path}; `medlineplus-archive runs --archive {archive.path}` lists the runs"
        ) from None
    if isinstance(cut, RunCut):
        return cut.last_run
    if isinstance(cut, DateCut):
        return cut.day
    return None


def describe_as_of(as_of: AsOf, archive: Archive) -> str:
    if isinstance(as_of, date):
        return f"{as_of.isoformat()} (valid time)"
    if as_of is not None:
        return f"run {as_of}"
    newest = archive.run_ids[-1] if archive.run_ids else "no runs yet"
    return f"{LATEST} ({newest})"


def run_end_times(archive: Archive) -> dict[str, datetime]:
    """When each committed run ended (UTC)."""
    runs = archive.runs()
    return {
        run_id: ended.to_pydatetime()
        for run_id, ended in zip(runs["run_id"], runs["finished_at"], strict=True)
    }
