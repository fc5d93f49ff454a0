"""`changes [--from X] [--to Y] [--language en|es] [--format md|html|json|atom] [--out PATH]
[--exit-code]`: the change report between two points of the archive; beside an HTML
report written to a file, the archived copies of the pages it names (the raw pages kept
in the runs' WARC files, `pipelines.archive.pages`), which it links to."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from crawler.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_archive_option,
    archive_path,
    run_end_times,
)
from crawler.commands.output import STDOUT, OutputPath, output_path, write_bytes, write_text
from crawler.parsing.items import LANGUAGES

if TYPE_CHECKING:
    from pipelines.archive.keys import VersionKey
    from pipelines.changes.detection import ChangeSet
    from pipelines.notebook import Archive

# pipelines.changes.reports.REPORT_FORMATS and the Atom feed (a test checks); not imported here so
# `--help` does not load pandas.
FORMATS = ("md", "html", "json", "atom")

EXIT_CHANGED = EXIT_FAILED
"""With --exit-code: something changed (as `git diff --exit-code`)."""
COPIES_SUFFIX = "_pages"
"""The directory of archived copies beside a report: report.html -> report_pages/."""


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


def atom_report(archive: Archive, changes: ChangeSet) -> str:
    """`changes` as an Atom feed (`changes --format atom`): its entries are updated when
    the run of the later point ended; a date point takes the latest run's end."""
    from pipelines.changes.reports.atom import RecordedChanges, render_atom
    from pipelines.changes.reports.labels import language_label

    ended = run_end_times(archive)
    point = changes.to_point
    recorded_at = ended[point.run_id] if point.run_id in ended else max(ended.values())
    return render_atom(
        [RecordedChanges(changes=changes, recorded_at=recorded_at)],
        language=changes.language,
        subtitle=f"Changes between {changes.from_point.name} and {point.name}, "
        f"{language_label(changes.language)}",
        last_checked=recorded_at,
    )


# --- the archived copies beside an HTML change report ----------------------------------


def copies_directory(report: OutputPath) -> Path | None:
    """Where the archived copies of a report written to `report` go (None: the report goes
    to standard output, so no copies), checked before any work: a directory beside the
    report file named after it (report.html -> report_pages/), new or writable."""
    if report.target is None:
        return None
    directory = report.target.with_name(f"{report.target.stem}{COPIES_SUFFIX}")
    if directory.exists() and not directory.is_dir():
        raise UsageError(
            f"{report.option}: {directory}, where the archived pages beside the report go, "
            "is not a directory"
        )
    if directory.is_dir() and not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{report.option}: cannot write into {directory}: not writable")
    return directory


def write_copies(archive: Archive, changes: ChangeSet, directory: Path) -> dict[VersionKey, str]:
    """Write the archived page of every version `changes` names into `directory` (as
    `<language>/<slug>-<last_updated>-<hash8>.html`); their URLs relative to the report
    beside `directory`. Versions without a kept raw page are left out. Files already there
    are replaced (the same name holds the same version) and others left alone."""
    from pipelines.archive.pages import read_page
    from pipelines.changes.pages import report_pages

    planned = []
    for page in report_pages(archive, changes).values():
        if page.location is None:
            continue
        path = directory / page.copy_name
        if path.parent.exists() and not path.parent.is_dir():
            raise UsageError(f"--out: {path.parent}, for the archived pages, is not a directory")
        if path.exists() or path.is_symlink():
            output_path("--out", path)  # what is there must be a file to replace
        planned.append((page, page.location, path))
    hrefs: dict[VersionKey, str] = {}
    for page, location, path in planned:
        data = read_page(archive, location)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(
                f"--out: cannot make {path.parent} for the archived pages: "
                f"{error.strerror or error}"
            ) from error
        write_bytes(output_path("--out", path), data)
        hrefs[page.key] = f"{quote(directory.name)}/{quote(page.copy_name)}"
    return hrefs
