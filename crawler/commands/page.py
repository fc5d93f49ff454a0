"""`page SLUG [--language en|es] [--as-of DATE|RUN_ID] --out PATH`: the archived page of one
topic, as the site served it; and the archived copies an HTML change report links to.

Both write the raw page kept in a run's WARC file (`pipelines.archive.pages`), byte for byte,
through crawler.commands.output (checked before any work, atomic, `-` for stdout).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from crawler.commands.common import EXIT_OK, UsageError, add_archive_option, archive_path
from crawler.commands.formats import emit
from crawler.commands.output import OutputPath, output_path, write_bytes
from crawler.commands.snapshot import describe_as_of, resolve_as_of
from crawler.parsing.items import LANGUAGES

if TYPE_CHECKING:
    from pipelines.archive.as_of import AsOf
    from pipelines.archive.keys import VersionKey
    from pipelines.changes.detection import ChangeSet
    from pipelines.notebook import Archive

COPIES_SUFFIX = "_pages"
"""The directory of archived copies beside a report: report.html -> report_pages/."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "page",
        help="write the archived page of one topic, as the site served it",
        description="Write the raw page of one topic's version, exactly as the site served "
        "it (the bytes kept in the run's WARC file). The version is the one `snapshot` "
        "would show: --as-of DATE (YYYY-MM-DD), the topic's newest version with "
        "last_updated on or before DATE; --as-of RUN_ID, its version right after that "
        "run; latest or no --as-of, its current version. Exit 2 when the archive holds no "
        "version of the topic at that point. The page is untrusted HTML: its scripts and "
        "styles still point at the live site.",
    )
    parser.add_argument("slug", metavar="SLUG", help='the topic\'s slug, e.g. "asthma"')
    parser.add_argument(
        "--language",
        choices=LANGUAGES,
        default="en",
        help="the topic's language (default en; es is the page under /spanish/)",
    )
    add_archive_option(parser)
    parser.add_argument(
        "--as-of",
        metavar="DATE|RUN_ID",
        help="a date (YYYY-MM-DD), a committed run id (see `runs`) or latest (the default)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="where to write the page (atomically; - for standard output)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.archive.pages import page_as_of, read_page
    from pipelines.notebook import open_archive

    slug: str = args.slug
    language: str = args.language
    output = output_path("--out", args.out)
    archive = open_archive(archive_path(args))
    as_of = resolve_as_of(args.as_of, archive)
    page = page_as_of(archive, slug, language, as_of)
    if page is None:
        raise UsageError(_no_version(archive, slug, language, as_of))
    when = f"{language}/{slug} {page.key.last_updated.isoformat()} (run {page.run_id})"
    if page.location is None:
        raise UsageError(f"no raw page was kept for {when} in {archive.path}")
    write_bytes(output, read_page(archive, page.location))
    shown = args.out if output.target is not None else "standard output"
    report = f"wrote the page of {when} to {shown}\n"
    if output.target is None:  # the page is on standard output: the report goes beside
        sys.stderr.write(report)
    else:
        emit(report)
    return EXIT_OK


def _no_version(archive: Archive, slug: str, language: str, as_of: AsOf) -> str:
    topic = f"{language}/{slug}"
    point = describe_as_of(as_of, archive)
    versions = len(archive.history(slug, language))
    if versions == 0:
        others = [other for other in LANGUAGES if other != language]
        found = [other for other in others if not archive.history(slug, other).empty]
        hint = f" (it has versions in {found[0]}: pass --language {found[0]})" if found else ""
        return f"no stored version of topic {topic} in {archive.path}{hint}"
    return (
        f"topic {topic} had no live version as of {point} (`medlineplus-archive history "
        f"{slug} --language {language}` lists its {versions} stored version"
        f"{'s' if versions != 1 else ''})"
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
