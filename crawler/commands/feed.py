"""`feed [--days N] [--language en|es] [--out PATH]`: an Atom feed of the changes that the
runs of the last N days found, one entry per changed topic version."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from crawler.commands.common import (
    EXIT_OK,
    UsageError,
    add_archive_option,
    archive_path,
    check_range,
    run_end_times,
)
from crawler.commands.output import STDOUT, output_path, write_text
from crawler.parsing.items import LANGUAGES

if TYPE_CHECKING:
    from pipelines.notebook import Archive

DEFAULT_DAYS = 30
MAX_DAYS = 36500


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "feed",
        help="write an Atom feed of the changes found in the last N days",
        description="Write an Atom 1.0 feed of the changes that the runs of the last N days "
        "found: each such run is compared with the committed run before it (as `changes "
        "--from PREVIOUS --to RUN` does), and every changed topic version is one entry, "
        "with a stable id (the same change has the same id in every feed made), a title, "
        "a link to the topic's page, the time the run ended and a summary of what changed. "
        "The feed's updated time is its newest entry's, so an unchanged archive gives the "
        "same feed. A run is in the window when it ended at most N days ago.",
    )
    add_archive_option(parser)
    parser.add_argument(
        "--days",
        type=int,
        default=DEFAULT_DAYS,
        metavar="N",
        help=f"the runs that ended in the last N days, 1 to {MAX_DAYS} (default {DEFAULT_DAYS})",
    )
    parser.add_argument(
        "--language",
        choices=LANGUAGES,
        default=None,
        help="English (en) or Spanish (es) topics only (default: both)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="write the feed to PATH (atomically) instead of standard output (-)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.changes.detection import compare
    from pipelines.changes.reports.atom import RecordedChanges, render_atom
    from pipelines.changes.reports.labels import language_label

    check_range("--days", args.days, 1, MAX_DAYS)
    output = output_path("--out", args.out if args.out is not None else STDOUT)
    archive = open_readable(archive_path(args))
    ended = run_end_times(archive)
    since = datetime.now(UTC) - timedelta(days=args.days)
    recorded = [
        RecordedChanges(
            changes=compare(archive, previous, current, language=args.language),
            recorded_at=ended[current],
        )
        for previous, current in pairwise(archive.run_ids)
        if ended[current] >= since
    ]
    text = render_atom(
        recorded,
        language=args.language,
        subtitle=f"Changes found by the runs of the last {args.days} days, "
        f"{language_label(args.language)}",
        last_checked=max(ended.values()),
    )
    write_text(output, lambda stream: stream.write(text))
    return EXIT_OK


def open_readable(path: str) -> Archive:
    """The archive at `path`, with at least one committed run; UsageError otherwise."""
    from pipelines.notebook import open_archive

    archive = open_archive(path)  # no archive there: ArchiveNotFoundError, exit 2
    if not archive.run_ids:
        raise UsageError(f"{archive.path} has no committed run")
    return archive
