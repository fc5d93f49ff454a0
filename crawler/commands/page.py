"""`page SLUG [--language en|es] [--as-of DATE|RUN_ID] --out PATH`: the archived page of one
topic, as the site served it.

It writes the raw page kept in a run's WARC file (`pipelines.archive.pages`), byte for byte,
through crawler.commands.output (checked before any work, atomic, `-` for stdout).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from crawler.commands.common import (
    EXIT_OK,
    UsageError,
    add_archive_option,
    archive_path,
    describe_as_of,
    resolve_as_of,
)
from crawler.commands.formats import emit
from crawler.commands.output import output_path, write_bytes
from crawler.parsing.items import LANGUAGES

if TYPE_CHECKING:
    from pipelines.archive.as_of import AsOf
    from pipelines.notebook import Archive


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
