"""The `medlineplus-archive` command line.

Every command prints a one-line `error: ...` and exits non-zero on bad input, never a
traceback: 1 when the work itself failed (a page that is not a health topic), 2 for bad
usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from crawler.errors import ExtractionError
from crawler.items import to_jsonable
from crawler.parsing import parse_health_topic

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad arguments or unreadable input: exit 2 with the message."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medlineplus-archive",
        description="Crawl MedlinePlus health-topic pages into a versioned Parquet archive.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    extract = commands.add_parser(
        "extract",
        help="parse one saved page and print its item as JSON",
        description="Parse one saved health-topic page and print its item as one JSON object "
        "(field names as in DESIGN.md, dates ISO-8601). Exit 1 when the page is not a "
        "complete health topic.",
    )
    extract.add_argument("page", type=Path, metavar="PAGE.html", help="a saved page")
    extract.add_argument(
        "--url",
        help="the URL the page was fetched from, for resolving relative links "
        "(default: https://medlineplus.gov/<file name>; the page's canonical link wins)",
    )
    extract.set_defaults(run=run_extract)
    return parser


def run_extract(args: argparse.Namespace) -> int:
    page: Path = args.page
    try:
        body = page.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {page}: {error.strerror or error}") from error
    url = args.url or f"https://medlineplus.gov/{page.name}"
    try:
        item = parse_health_topic(body, url)
    except ExtractionError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(to_jsonable(item), ensure_ascii=False, indent=2))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return status


if __name__ == "__main__":
    sys.exit(main())
