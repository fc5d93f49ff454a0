"""`extract PAGE.html [--url URL]`: parse one saved page and print its item as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crawler.commands.common import EXIT_FAILED, EXIT_OK, UsageError
from crawler.parsing import parse_health_topic
from crawler.parsing.errors import ExtractionError
from crawler.parsing.items import to_jsonable


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "extract",
        help="parse one saved page and print its item as JSON",
        description="Parse one saved health-topic page and print its item as one JSON object "
        "(field names as in DESIGN.md, dates ISO-8601). Exit 1 when the page is not a "
        "complete health topic.",
    )
    parser.add_argument("page", type=Path, metavar="PAGE.html", help="a saved page")
    parser.add_argument(
        "--url",
        help="the URL the page was fetched from: it names the topic and resolves relative "
        "links (default: the page's own canonical link names it)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    page: Path = args.page
    try:
        body = page.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {page}: {error.strerror or error}") from error
    url = args.url or page.resolve().as_uri()  # not a topic page's URL: the canonical link wins
    try:
        item = parse_health_topic(body, url)
    except ExtractionError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(to_jsonable(item), ensure_ascii=False, indent=2))
    return EXIT_OK
