"""`changes [--from X] [--to Y] [--language en|es] [--format md|html|json|atom] [--out PATH]
[--exit-code]`: the change report between two points of the archive."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from crawler.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_archive_option,
    archive_path,
)
from crawler.commands.output import STDOUT, output_path, write_text
from crawler.commands.page import copies_directory, write_copies
from crawler.parsing.items import LANGUAGES

if TYPE_CHECKING:
    from pipelines.notebook import Archive

# pipelines.changes.reports.REPORT_FORMATS and the Atom feed (a test checks); not imported here so
# `--help` does not load pandas.
FORMATS = ("md", "html", "json", "atom")

EXIT_CHANGED = EXIT_FAILED
"""With --exit-code: something changed (as `git diff --exit-code`)."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "changes",
        help="report what changed between two runs or dates",
        description="Report which health topics were added, removed, updated (date bumped "
        "and content changed), edited without a new date (same_date_edit) or only re-dated "
        "(date_only) between two points of the archive, with field-level detail: title, "
        "summary word diff, links per section, clinical trials, institute, related topics, "
        "dates. A point is a committed run id (what the archive held right after that run) "
        "or a date YYYY-MM-DD (each topic's newest version dated on or before it). By "
        "default the previous committed run is compared with the latest. When nothing "
        "changed, the report (in every format) is a valid empty one saying `No changes "
        "between A and B`, and that line also goes to stderr unless the report is "
        "Markdown on stdout; exit 0 (with --exit-code: 0 when nothing changed, 1 when "
        "something did). Exit 2 on an unknown run, a bad date or an archive with fewer "
        "than two runs.",
    )
    add_archive_option(parser)
    parser.add_argument(
        "--from",
        dest="from_point",
        metavar="RUN_ID|DATE",
        help="the earlier point (default: the run before --to)",
    )
    parser.add_argument(
        "--to",
        dest="to_point",
        metavar="RUN_ID|DATE",
        help="the later point (default: the latest committed run)",
    )
    parser.add_argument(
        "--language",
        choices=LANGUAGES,
        default=None,
        help="compare only English (en) or Spanish (es) topics (default: both)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="md",
        help="md (default: terminals and e-mail), html (one self-contained page for "
        "people; with --out FILE, the archived pages of the versions compared are written "
        "beside it, in FILE's name with _pages, and linked), json (for machines; schema in "
        "pipelines/changes/reports/change-report.schema.json) or atom (an Atom 1.0 feed, one entry "
        "per changed topic, as the `feed` command writes)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="write the report to PATH (atomically: a complete file or none; through a "
        "symlink to the file it points to) instead of standard output (-)",
    )
    parser.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when something changed and 0 when nothing did, like `git diff "
        "--exit-code` (errors still exit 2, or 3 when the archive's environment failed)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from crawler.commands.feed import atom_report
    from pipelines.archive.as_of import BadAsOfDateError
    from pipelines.changes.detection import compare, resolve_point
    from pipelines.changes.reports import render
    from pipelines.changes.reports.html import render_html
    from pipelines.changes.reports.labels import no_changes_line
    from pipelines.core.errors import ArchiveNotFoundError, UnknownRunError
    from pipelines.notebook import open_archive

    output = output_path("--out", args.out if args.out is not None else STDOUT)
    copies = copies_directory(output) if args.format == "html" else None
    try:
        archive = open_archive(archive_path(args))
    except ArchiveNotFoundError as error:
        raise UsageError(str(error)) from None
    for option, point in (("--from", args.from_point), ("--to", args.to_point)):
        try:
            if point is not None:
                resolve_point(archive, point)
        except (UnknownRunError, BadAsOfDateError) as error:
            raise UsageError(f"{option}: {error}") from None
    points = default_points(archive, args.from_point, args.to_point)
    changes = compare(archive, *points, language=args.language)
    if args.format == "html":
        archived = None if copies is None else write_copies(archive, changes, copies)
        text = render_html(changes, archived)
    elif args.format == "atom":
        text = atom_report(archive, changes)
    else:
        text = render(changes, args.format)
    write_text(output, lambda stream: stream.write(text))
    if not changes.changes and (output.target is not None or args.format != "md"):
        # The Markdown report on stdout says it itself; stdout never holds anything else.
        print(no_changes_line(changes), file=sys.stderr)
    return EXIT_CHANGED if args.exit_code and changes.changes else EXIT_OK


def default_points(
    archive: Archive, from_point: str | None, to_point: str | None
) -> tuple[str, str]:
    """The two points to compare: the given ones, else the previous run and the latest."""
    runs = archive.run_ids
    if to_point is None:
        if len(runs) < 2 and from_point is None:
            raise UsageError(_too_few_runs(archive))
        if not runs:
            raise UsageError(f"{archive.path} has no committed run; pass --to too")
        to_point = runs[-1]
    if from_point is None:
        if to_point not in runs:
            raise UsageError(f"--from is needed when --to is a date ({to_point})")
        index = runs.index(to_point)
        if index == 0:
            if len(runs) < 2:
                raise UsageError(_too_few_runs(archive))
            raise UsageError(
                f"--to {to_point} is the first committed run: nothing before it to compare "
                "with; pass --from"
            )
        from_point = runs[index - 1]
    return from_point, to_point


def _too_few_runs(archive: Archive) -> str:
    count = len(archive.run_ids)
    return (
        f"{archive.path} has {count} committed run{'s' if count != 1 else ''}; comparing "
        "needs two (crawl again, or pass --from and --to dates)"
    )
