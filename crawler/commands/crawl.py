"""`crawl`: one polite crawl of the site (or a mirror) into the archive, as one run."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.commands.common import (
    EXIT_ARCHIVE,
    EXIT_FAILED,
    UsageError,
    add_archive_option,
    archive_path,
)
from crawler.spiders.health_topics import SpiderArgumentError, parse_languages

logger = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "crawl",
        help="crawl health-topic pages into the archive (one run)",
        description="Crawl MedlinePlus health-topic pages politely into the archive as one "
        "committed run. Discovers topics from the A-Z index pages unless --from-xml, "
        "--urls or --url says otherwise. Re-crawls revalidate pages with the previous "
        "run's ETag/Last-Modified. Exit 0 on success, 1 when the run failed (e.g. more "
        "than 5% of pages failed extraction), 2 on bad usage, 3 when the archive is "
        "locked or unusable.",
    )
    add_archive_option(parser)
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="fetch from this site instead of https://medlineplus.gov: a mirror, or a "
        "local copy as file:///path/to/site; items keep their canonical "
        "https://medlineplus.gov URLs",
    )
    parser.add_argument(
        "--languages",
        default="en,es",
        metavar="en,es",
        help="languages to crawl, comma-separated (default: en,es)",
    )
    parser.add_argument(
        "--limit", type=int, metavar="N", help="fetch at most N topic pages (a partial run)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--from-xml",
        metavar="FILE_OR_URL",
        help="take the topic list from NLM's health-topic XML dump (plain or zip)",
    )
    source.add_argument(
        "--from-warc",
        metavar="FILE",
        help="replay the topic pages of a WARC file (this archive's or any standard "
        "WARC of medlineplus.gov pages) through the same pipeline, fetching nothing",
    )
    source.add_argument("--urls", metavar="FILE", help="crawl the topic URLs listed in FILE")
    source.add_argument(
        "--url", action="append", metavar="URL", help="crawl this topic page (repeatable)"
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds between requests (default 1.0; robots.txt Crawl-delay wins when larger)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        metavar="N",
        help="parallel requests to the site (default 2)",
    )
    parser.add_argument(
        "--stats-json",
        metavar="FILE",
        help="write the crawl's final statistics (Scrapy's and ours, archive/...) as JSON",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default INFO)",
    )
    parser.add_argument(
        "-s",
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override any Scrapy setting (repeatable), e.g. -s RETRY_TIMES=5",
    )
    parser.set_defaults(run=run)


def _validate(args: argparse.Namespace) -> None:
    try:
        parse_languages(args.languages)
    except SpiderArgumentError as error:
        raise UsageError(f"--languages: {error}") from error
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.delay < 0:
        raise UsageError("--delay must be 0 or more seconds")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.base_url is not None:
        base = urlsplit(args.base_url)
        if base.scheme == "file" and not Path(base.path).is_dir():
            raise UsageError(f"--base-url: no such directory: {base.path}")
        if base.scheme not in {"http", "https", "file"}:
            raise UsageError(f"--base-url takes an http(s):// or file:// URL, not {args.base_url}")
    for url in args.url or []:
        if urlsplit(url).scheme not in {"http", "https"}:
            raise UsageError(f"--url takes an http(s) URL, not {url}")
    for option, path in (
        ("--urls", args.urls),
        ("--from-xml", args.from_xml),
        ("--from-warc", args.from_warc),
    ):
        if path is None or urlsplit(path).scheme in {"http", "https"}:
            continue
        if not Path(path).is_file():
            raise UsageError(f"{option}: no such file: {path}")
    for assignment in args.set:
        if "=" not in assignment:
            raise UsageError(f"-s takes NAME=VALUE, not {assignment!r}")


def crawl_settings(args: argparse.Namespace) -> Any:
    """Scrapy settings for this crawl: the project's, then the command line's."""
    from scrapy.settings import Settings

    from crawler import settings as project_settings

    settings = Settings()
    settings.setmodule(project_settings, priority="project")
    overrides: dict[str, Any] = {
        "ARCHIVE_PATH": archive_path(args),
        "DOWNLOAD_DELAY": args.delay,
        # AutoThrottle starts from the chosen delay, not from its own default
        "AUTOTHROTTLE_START_DELAY": args.delay,
        "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
        "CONCURRENT_REQUESTS": max(args.concurrency, 8),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(args.concurrency),
        "LOG_LEVEL": args.log_level,
    }
    if args.base_url:
        overrides["MEDLINEPLUS_BASE_URL"] = args.base_url.rstrip("/")
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        overrides[name.strip()] = _checked_override(name.strip(), value, settings.get(name.strip()))
    settings.setdict(overrides, priority="cmdline")
    return settings


OWN_SETTING_PREFIXES = ("MEDLINEPLUS_", "ARCHIVE_")
"""Settings of our own (see crawler/settings.py): an int one is read as a whole number."""


def _checked_override(name: str, value: str, default: Any) -> str:
    """`value` for the setting `name`; UsageError when it cannot be read as the kind of
    value the setting holds by default (Scrapy would fail on it mid-crawl)."""
    from scrapy.settings import BaseSettings

    readable: tuple[str, Callable[[str], object]] | None = None
    if isinstance(default, bool):
        readable = ("true or false", _boolean)
    elif isinstance(default, int) and name.startswith(OWN_SETTING_PREFIXES):
        readable = ("a whole number", int)
    elif isinstance(default, int | float):  # Scrapy reads some int defaults as floats
        readable = ("a number", float)
    elif isinstance(default, dict | BaseSettings):
        readable = ("a JSON object", json.loads)
    if readable is not None:
        expected, read = readable
        try:
            read(value)
        except ValueError as error:
            raise UsageError(f"-s {name} takes {expected}, not {value!r}") from error
    return value


def _boolean(value: str) -> bool:
    if value.strip().lower() not in {"true", "false", "1", "0"}:
        raise ValueError(value)
    return value.strip().lower() in {"true", "1"}


def write_stats(path: Path, stats: dict[str, Any]) -> None:
    """The stats as JSON (datetimes ISO-8601), written atomically."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(stats, indent=2, sort_keys=True, default=str) + "\n")
    temporary.replace(path)


def run(args: argparse.Namespace) -> int:
    _validate(args)
    from scrapy.crawler import CrawlerProcess

    from crawler.log_formatter import demote_startup_messages
    from crawler.shutdown import CrawlShutdown
    from crawler.spiders.health_topics import HealthTopicsSpider
    from pipelines.store import ArchiveStore

    settings = crawl_settings(args)
    # Take the lock once before Scrapy starts: a locked or foreign archive is a clean
    # one-line error here rather than a failure inside the crawl.
    ArchiveStore.open(settings.get("ARCHIVE_PATH")).close()

    demote_startup_messages()
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(HealthTopicsSpider)
    process.crawl(
        crawler,
        base_url=settings.get("MEDLINEPLUS_BASE_URL"),
        languages=args.languages,
        limit=args.limit,
        from_xml=args.from_xml,
        from_warc=args.from_warc,
        urls=args.urls,
        url=args.url,
    )
    shutdown = CrawlShutdown(crawler)
    shutdown.install()
    process.start(install_signal_handlers=False)
    stats = crawler.stats.get_stats() if crawler.stats is not None else {}
    if args.stats_json:
        write_stats(Path(args.stats_json), stats)
    exit_code = stats.get("archive/run/exit_code")
    if exit_code is None:
        logger.error("the crawl ended before its run could be committed")
        return EXIT_FAILED
    if exit_code == EXIT_ARCHIVE:
        logger.error("%s", stats.get("archive/run/error", "the archive is unusable"))
    if shutdown.received is not None:  # stopped early: incomplete, whatever was committed
        return max(int(exit_code), EXIT_FAILED)
    return int(exit_code)
