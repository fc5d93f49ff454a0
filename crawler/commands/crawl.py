"""`crawl`: one polite crawl of the site (or a mirror) into the archive, as one run."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from crawler.commands.common import (
    EXIT_ARCHIVE,
    EXIT_FAILED,
    OutputWriteError,
    UsageError,
    add_archive_option,
    archive_path,
    check_range,
    os_error_line,
)
from crawler.commands.output import output_path, write_text
from crawler.parsing.discovery import url_list
from crawler.parsing.xml_dump import LATEST, Dump
from crawler.spiders.health_topics import SpiderArgumentError, parse_languages
from pipelines.archive.incremental import PLANS, REVALIDATE_DAYS
from pipelines.core.errors import ArchiveCorruptError
from pipelines.reachability import SITE_UNREACHABLE

if TYPE_CHECKING:
    from pipelines.archive.incremental import Plan
    from pipelines.core.store import ArchiveStore
    from pipelines.session import ArchiveSession

logger = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "crawl",
        help="crawl health-topic pages into the archive (one run)",
        description="Crawl MedlinePlus health-topic pages politely into the archive as one "
        "committed run. Discovers topics from the A-Z index pages unless --from-xml, "
        "--urls or --url says otherwise. Re-crawls revalidate pages with the previous "
        "run's ETag/Last-Modified. Exit 0 on success, 1 when the run is incomplete or "
        "failed (e.g. more than 5% of pages failed extraction, an index page failed, the "
        "shrink guard held removals back), 2 on bad usage (checked before anything is "
        "fetched), 3 when the environment failed (the site cannot be reached; the archive "
        "is locked, on a read-only or full disk, not a folder, damaged or from a newer "
        "version).",
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
        "--limit",
        type=int,
        metavar="N",
        help="fetch at most N topic pages, N >= 1 (a partial run)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--from-xml",
        metavar="FILE_OR_URL",
        help="take the topic list from NLM's health-topic XML dump (plain or zip): a file "
        "(or file: URL), a URL (fetched because you named it, whatever robots.txt says; on "
        "any host), or "
        "'latest': the newest dump linked from the site's xml.html. Read before the crawl "
        "starts, at most -s MEDLINEPLUS_XML_MAX_BYTES (default 200 MiB)",
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
        "--plan",
        choices=PLANS,
        default="full",
        help="full (default): fetch every topic the index (or --from-xml, --urls, --url) "
        "lists. incremental: a daily run with --from-xml: fetch only the topics whose "
        "XML record is new or changed since the dump the archive last stored, live "
        "topics the dump no longer lists (to confirm gone with a 404), a rolling 1/N of "
        "the others as conditional requests, and the A-Z index once a week, as a "
        "cross-check (see README: Daily runs)",
    )
    parser.add_argument(
        "--revalidate-days",
        type=int,
        default=REVALIDATE_DAYS,
        metavar="N",
        help=f"with --plan incremental: revalidate every page at least once in N daily "
        f"runs, 1 to {REVALIDATE_DAYS_MOST} (default {REVALIDATE_DAYS})",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds between requests, 0 to 3600 (default 1.0; robots.txt Crawl-delay wins "
        "when larger)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        metavar="N",
        help="parallel requests to the site, 1 to 64 (default 2)",
    )
    parser.add_argument(
        "--stats-json",
        metavar="FILE",
        help="write the crawl's final statistics (Scrapy's and ours, archive/...) as JSON "
        "(- for standard output)",
    )
    parser.add_argument(
        "--notify",
        action="append",
        metavar="URL",
        help="after the run, send a message (status, changes per kind, changed topics) "
        "to this Apprise URL (repeatable): mailto://, slack://, workflows:// (Teams), ntfy://, "
        "json://host/path... Sent only when something changed or the run did not "
        "succeed; a failed notification is a warning and never changes the exit code",
    )
    parser.add_argument(
        "--notify-always",
        action="store_true",
        help="send the --notify message after every run, unchanged ones too",
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


REVALIDATE_DAYS_MOST = 366
"""--revalidate-days at most: a year."""
DELAY_RANGE = (0.0, 3600.0)
"""Seconds between requests (--delay, -s DOWNLOAD_DELAY): an hour at most."""
CONCURRENCY_RANGE = (1, 64)
"""Parallel requests to the site (--concurrency, -s CONCURRENT_REQUESTS_PER_DOMAIN)."""
SETTING_RANGES: dict[str, tuple[float, float]] = {
    "DOWNLOAD_DELAY": DELAY_RANGE,
    "AUTOTHROTTLE_START_DELAY": DELAY_RANGE,
    "AUTOTHROTTLE_MAX_DELAY": DELAY_RANGE,
    "CONCURRENT_REQUESTS_PER_DOMAIN": CONCURRENCY_RANGE,
    "MEDLINEPLUS_STOP_DEADLINE": (1.0, 600.0),
}
"""Settings an option also sets, or that bound the same wait: the option's range (and
the stop deadline: at least a second, at most ten minutes)."""


def _validate(args: argparse.Namespace) -> None:
    try:
        parse_languages(args.languages)
    except SpiderArgumentError as error:
        raise UsageError(f"--languages: {error}") from error
    if args.limit is not None:
        check_range("--limit", args.limit, 1)
    check_range("--delay", args.delay, *DELAY_RANGE)
    check_range("--revalidate-days", args.revalidate_days, 1, REVALIDATE_DAYS_MOST)
    if args.plan == "incremental":
        if not args.from_xml:
            raise UsageError("--plan incremental takes the XML dump: add --from-xml")
        if args.limit is not None:
            raise UsageError("--limit is for --plan full: an incremental run fetches its plan")
    check_range("--concurrency", args.concurrency, *CONCURRENCY_RANGE)
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
        if option == "--from-xml" and path == LATEST:
            continue
        local = url2pathname(urlsplit(path).path) if urlsplit(path).scheme == "file" else path
        if option != "--from-xml" and local != path:
            raise UsageError(f"{option} takes a file name, not {path}")
        if not Path(local).is_file():
            raise UsageError(f"{option}: no such file: {path}")
    args.urls_topics = _read_url_file(args.urls) if args.urls is not None else None
    if args.from_warc is not None:
        from pipelines.core.warc import check_readable

        try:
            check_readable(Path(args.from_warc))
        except ArchiveCorruptError as error:
            raise UsageError(f"--from-warc: {error}") from error
    for assignment in args.set:
        if "=" not in assignment:
            raise UsageError(f"-s takes NAME=VALUE, not {assignment!r}")
    _validate_outputs(args)


def _read_url_file(path: str) -> list[str]:
    """The URLs listed in the --urls file; UsageError when it cannot be read."""
    try:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError as error:
        raise UsageError(f"--urls: {path}: cannot be read ({error.strerror or error})") from error
    return list(url_list(text))


def _validate_outputs(args: argparse.Namespace) -> None:
    """The files the crawl will write besides the archive can be written (before any fetch)."""
    if args.stats_json is not None:
        output_path("--stats-json", args.stats_json)


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
    _set_notifications(args, settings)
    return settings


def _set_notifications(args: argparse.Namespace, settings: Any) -> None:
    """ARCHIVE_NOTIFY with the --notify URLs added (and checked: an unknown service is a
    usage error before anything is fetched); ARCHIVE_NOTIFY_ALWAYS from --notify-always."""
    from crawler.notify import NOTIFY_ALWAYS_SETTING, NOTIFY_SETTING, check_urls, setting_urls

    option = "--notify" if args.notify else f"-s {NOTIFY_SETTING}"
    try:
        urls = setting_urls(settings.get(NOTIFY_SETTING)) + (args.notify or [])
        check_urls(urls)
    except ValueError as error:  # crawler.notify.NotifyUrlError too
        raise UsageError(f"{option}: {error}") from error
    settings.set(NOTIFY_SETTING, urls, priority="cmdline")
    if args.notify_always:
        settings.set(NOTIFY_ALWAYS_SETTING, True, priority="cmdline")


OWN_SETTING_PREFIXES = ("MEDLINEPLUS_", "ARCHIVE_")
"""Settings of our own (see crawler/settings.py): an int one is read as a whole number."""
FLOAT_READ_INT_SETTINGS = frozenset(
    {
        "AUTOTHROTTLE_MAX_DELAY",
        "AUTOTHROTTLE_START_DELAY",
        "DNS_TIMEOUT",
        "DOWNLOAD_DELAY",
        "DOWNLOAD_DELAY_JITTER",
        "DOWNLOAD_TIMEOUT",
    }
)
"""Scrapy settings whose default is a whole number but which Scrapy reads as a float
(getfloat): any finite number is fine. Every other int setting is read with getint and
takes a whole number only."""
SETTING_MINIMUMS: dict[str, float] = {
    "MEDLINEPLUS_XML_MAX_BYTES": 1,
    "MEDLINEPLUS_PARSE_WORKERS": 0,
}
"""Least values of settings with no upper bound."""


def _checked_override(name: str, value: str, default: Any) -> str:
    """`value` for the setting `name`; UsageError when it cannot be read as the kind of
    value the setting holds by default (Scrapy would fail on it mid-crawl)."""
    from scrapy.settings import BaseSettings

    readable: tuple[str, Callable[[str], object]] | None = None
    if isinstance(default, bool):
        readable = ("true or false", _boolean)
    elif isinstance(default, int) and (
        name.startswith(OWN_SETTING_PREFIXES) or name not in FLOAT_READ_INT_SETTINGS
    ):
        readable = ("a whole number", int)
    elif isinstance(default, int | float):
        readable = ("a number", _finite)
    elif isinstance(default, dict | BaseSettings):
        readable = ("a JSON object", json.loads)
    if readable is not None:
        expected, read = readable
        try:
            read(value)
        except ValueError as error:
            raise UsageError(f"-s {name} takes {expected}, not {value!r}") from error
    if name in SETTING_RANGES:
        check_range(f"-s {name}", float(value), *SETTING_RANGES[name])
    if name in SETTING_MINIMUMS:
        check_range(f"-s {name}", float(value), SETTING_MINIMUMS[name])
    if name == "ARCHIVE_COMPACT_EVERY":
        from pipelines.core.compaction import policy_every

        try:
            policy_every(int(value))
        except ValueError as error:
            raise UsageError(f"-s {name} {error}") from error
    return value


def _finite(value: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _boolean(value: str) -> bool:
    if value.strip().lower() not in {"true", "false", "1", "0"}:
        raise ValueError(value)
    return value.strip().lower() in {"true", "1"}


def write_stats(given: str, stats: dict[str, Any]) -> None:
    """The stats as JSON (datetimes ISO-8601), written atomically (or to stdout: `-`)."""
    text = json.dumps(stats, indent=2, sort_keys=True, default=str) + "\n"
    write_text(output_path("--stats-json", given), lambda stream: stream.write(text))


def _read_xml_dump(from_xml: str, settings: Any, languages: str) -> Dump | None:
    """The dump's records, read before the crawl starts and before the archive is
    opened: UsageError (exit 2) when the dump is no usable health-topic XML; None, with
    the error printed, when it cannot be fetched (exit 3)."""
    from crawler.parsing.discovery import DiscoveryError
    from crawler.parsing.xml_dump import DumpLimits, DumpUnreachableError, read_dump

    base_url = str(settings.get("MEDLINEPLUS_BASE_URL")).rstrip("/")
    limits = DumpLimits.from_settings(settings)
    try:
        return read_dump(from_xml, base_url, parse_languages(languages), limits)
    except DiscoveryError as error:
        raise UsageError(f"--from-xml: {error}") from error
    except DumpUnreachableError as error:
        print(f"error: --from-xml: {error}", file=sys.stderr)
        _notify_not_started(settings, f"--from-xml: {error}")
        return None


def _notify_not_started(settings: Any, error: str) -> None:
    """The --notify message of a crawl that failed before Scrapy started (once it has,
    the RunNotifier extension sends it)."""
    from crawler.notify import (
        NOTIFY_ALWAYS_SETTING,
        NOTIFY_SETTING,
        RunOutcome,
        failed_line,
        notify,
    )

    outcome = RunOutcome(
        archive=Path(settings.get("ARCHIVE_PATH")).resolve(), run_id=None, status=None, error=error
    )
    always = settings.getbool(NOTIFY_ALWAYS_SETTING)
    for shown in notify(settings.getlist(NOTIFY_SETTING), outcome, always=always):
        print(f"warning: {failed_line(shown)}", file=sys.stderr)


def _incremental_plan(args: argparse.Namespace, dump: Dump, store: ArchiveStore) -> Plan:
    """What this incremental run fetches (see `pipelines.archive.incremental`), logged."""
    from datetime import UTC, datetime

    from pipelines.archive.incremental import REASONS, plan_incremental
    from pipelines.archive.state import ArchiveState, xml_fingerprints

    last_index_read = max(
        (
            manifest.run.started_at.date()
            for manifest in store.manifests
            if manifest.run.discovery in INDEX_READING and manifest.run.status != "failed"
        ),
        default=None,
    )
    plan = plan_incremental(
        dump,
        xml_fingerprints(store),
        ArchiveState.of(store).index().live_topics,
        languages=parse_languages(args.languages),
        revalidate_days=args.revalidate_days,
        last_index_read=last_index_read,
        today=datetime.now(UTC).date(),
    )
    counts = ", ".join(f"{plan.count(reason)} {reason}" for reason in REASONS)
    index = "; the A-Z index too" if plan.read_index else ""
    logger.info("incremental plan for %s: %s%s", plan.day, counts, index)
    return plan


INDEX_READING = ("index", "incremental+index")
"""Run discoveries that read the whole A-Z index."""


def run(args: argparse.Namespace) -> int:
    _validate(args)
    from pipelines.core.errors import ArchiveError
    from pipelines.core.store import ArchiveStore
    from pipelines.session import ArchiveSession, compaction_policy

    settings = crawl_settings(args)
    archive = Path(settings.get("ARCHIVE_PATH"))

    def open_session() -> ArchiveSession:
        # The crawl's one session: locked, recovered and indexed before Scrapy starts,
        # so a locked, read-only, damaged or newer archive is a clean one-line error
        # here rather than a failure inside the crawl.
        try:
            return ArchiveSession.open(archive, compaction_policy(settings))
        except ArchiveError as unusable:
            _notify_not_started(settings, str(unusable))
            raise

    # An archive that is there already is opened before the dump is fetched; a new one
    # is made only once the dump was read (a bad dump leaves nothing behind).
    session = open_session() if ArchiveStore.folder_exists(archive) else None
    try:
        xml_dump: Dump | None = None
        if args.from_xml:
            xml_dump = _read_xml_dump(args.from_xml, settings, args.languages)
            if xml_dump is None:
                return EXIT_ARCHIVE  # 3: the environment failed
        if session is None:
            session = open_session()
        plan = None
        if args.plan == "incremental":
            assert xml_dump is not None
            assert session.store is not None
            plan = _incremental_plan(args, xml_dump, session.store)
        stats, received = _run_crawler(args, settings, session, xml_dump, plan)
    finally:
        if session is not None:
            session.close()
    exit_code, error = crawl_outcome(stats, received, str(archive))
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
    if args.stats_json:
        try:
            write_stats(args.stats_json, stats)
        except OutputWriteError as failure:  # after the run's own error line
            print(f"error: {failure}", file=sys.stderr)
            exit_code = max(exit_code, EXIT_ARCHIVE)
        except OSError as failure:
            print(f"error: --stats-json: {os_error_line(failure)}", file=sys.stderr)
            exit_code = max(exit_code, EXIT_ARCHIVE)
    return exit_code


def _run_crawler(
    args: argparse.Namespace,
    settings: Any,
    session: ArchiveSession,
    xml_dump: Dump | None,
    plan: Plan | None,
) -> tuple[dict[str, Any], str | None]:
    """Run the crawl on `session`; its stats, and the signal that stopped it (if any)."""
    from scrapy.crawler import CrawlerProcess

    from crawler.log_formatter import demote_startup_messages
    from crawler.shutdown import CrawlShutdown
    from crawler.spiders.health_topics import HealthTopicsSpider

    demote_startup_messages()
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(HealthTopicsSpider)
    session.hand_to(crawler)
    process.crawl(
        crawler,
        base_url=settings.get("MEDLINEPLUS_BASE_URL"),
        languages=args.languages,
        limit=args.limit,
        from_xml=args.from_xml,
        xml_dump=xml_dump,
        plan=plan,
        from_warc=args.from_warc,
        urls=args.urls,
        urls_topics=args.urls_topics,
        url=args.url,
    )
    shutdown = CrawlShutdown(crawler)
    shutdown.install()
    process.start(install_signal_handlers=False)
    shutdown.crawl_ended()
    stats = crawler.stats.get_stats() if crawler.stats is not None else {}
    received = shutdown.received.name if shutdown.received is not None else None
    return stats, received


def crawl_outcome(
    stats: dict[str, Any], signal: str | None, archive: str
) -> tuple[int, str | None]:
    """The crawl's exit code, as its pipeline recorded it in `stats`, and its error line
    (None on success): a crawl that exits non-zero says why on one line."""
    from pipelines.archiving import EXIT_CODE, RUN_ERROR, RUN_REASONS

    stopped = f"stopped by {signal}; " if signal is not None else ""
    exit_code = stats.get(EXIT_CODE)
    if exit_code is None:
        return EXIT_FAILED, f"{stopped}the crawl ended before its run could be committed"
    unreachable = stats.get(SITE_UNREACHABLE)
    if unreachable:  # nothing was committed
        return int(exit_code), str(unreachable)
    if exit_code == EXIT_ARCHIVE:
        return int(exit_code), str(stats.get(RUN_ERROR, f"the archive {archive} is unusable"))
    if exit_code == 0:
        return 0, None
    run_id, status = stats.get("archive/run/id"), stats.get("archive/run/status")
    if status is None:
        return int(exit_code), f"{stopped}nothing committed (no page was done)"
    reasons: list[str] = list(stats.get(RUN_REASONS) or [])
    committed = f"run {run_id} committed as {status}"
    if not reasons:
        return int(exit_code), f"{stopped}{committed}"
    more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return (
        int(exit_code),
        f"{stopped}{committed}: {reasons[0]}{more}; see `medlineplus-archive runs`",
    )
