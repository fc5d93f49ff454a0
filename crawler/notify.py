"""Notifications: one message after a crawl, through Apprise, to every `--notify` URL.

Apprise (https://github.com/caronc/apprise) sends to more than 100 services from one URL
each: `mailto://user:password@example.com`, `slack://...`, `workflows://...` (Teams),
`ntfy://topic`, webhooks such as `json://host:port/path` (a POST of
`{"title", "message", "type", ...}`)... Which ones get the message is the setting
ARCHIVE_NOTIFY (`crawl --notify URL`, repeatable); ARCHIVE_NOTIFY_ALWAYS
(`--notify-always`) sends it after every run, where by default it is sent only when
something changed or the run did not succeed (not committed, or committed as `partial`
or `failed`).

The message gives the run's status (with its failure reasons, or the error that kept it
from being committed), the number of changed topics of each kind between the previous
committed run and this one (`pipelines.changes.detection.compare`), the first `TOP_TOPICS` of
them, and the `changes` command that writes the full report: the crawl itself writes no
report file.

A notification never changes a crawl's exit code: one that cannot be delivered is one
warning line naming the URL without its secrets (Apprise's privacy form: passwords and
tokens masked, no query), and Apprise's own log is kept out of the console.

`RunNotifier` is the Scrapy extension that sends it when the engine has stopped (after
the snapshot pipeline committed the run), so `scrapy crawl health_topics -s
ARCHIVE_NOTIFY='["json://..."]'` notifies as `crawl --notify` does. Apprise is imported
only when a URL is given.
"""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from pipelines.core.errors import ArchiveError

if TYPE_CHECKING:
    from apprise import Apprise
    from scrapy.crawler import Crawler

    from pipelines.changes.detection import ChangeSet
    from pipelines.core.records import RunStatus
    from pipelines.core.storage import ArchivePath
    from pipelines.notebook import Archive

logger = logging.getLogger(__name__)

NOTIFY_SETTING = "ARCHIVE_NOTIFY"
NOTIFY_ALWAYS_SETTING = "ARCHIVE_NOTIFY_ALWAYS"
TOP_TOPICS = 10
"""Changed topics named in a message; the report has them all."""


class NotifyUrlError(ValueError):
    """A notification URL Apprise cannot send to (an unknown scheme, a missing part)."""


def setting_urls(value: Any) -> list[str]:
    """The URLs of an ARCHIVE_NOTIFY value: a list of URLs, a JSON array of them (as
    `-s ARCHIVE_NOTIFY='["json://..."]'` gives it), or one URL. ValueError otherwise."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if not text.startswith("["):
            return [text]
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{NOTIFY_SETTING} is not a JSON array of URLs: {error}") from None
    if isinstance(value, list | tuple) and all(isinstance(url, str) for url in value):
        return [url.strip() for url in value if url.strip()]
    raise ValueError(f"{NOTIFY_SETTING} takes a URL or a JSON array of URLs, not {value!r}")


def check_urls(urls: list[str]) -> None:
    """NotifyUrlError naming the first URL Apprise cannot send to, by its scheme alone (the
    rest of an unreadable URL may hold a password or a token)."""
    if not urls:
        return
    from apprise.manager_plugins import NotificationManager

    _quiet_apprise()
    services = NotificationManager()  # type: ignore[no-untyped-call]
    for url in urls:
        scheme = urlsplit(url).scheme.lower()
        if not scheme or scheme not in services:
            shown = f"{scheme}://" if scheme else "a URL without a scheme"
            raise NotifyUrlError(
                f"Apprise has no service for {shown} (see https://appriseit.com/services/)"
            )
        if _service(url) is None:
            raise NotifyUrlError(f"this {scheme}:// URL lacks a part Apprise needs (host, token?)")


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """How a crawl ended, as far as a notification tells it."""

    archive: Path
    run_id: str | None
    """The committed run; None when nothing was committed."""
    status: RunStatus | None
    """The run's status; None when nothing was committed."""
    error: str | None = None
    """Why nothing was committed (the site unreachable, the archive locked...)."""

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    @property
    def kind(self) -> str:
        """Apprise's type of the message: info (success), warning (partial), failure."""
        return {"success": "info", "partial": "warning"}.get(self.status or "", "failure")


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    changed: bool
    """Something changed since the previous run (a first run: any topic archived)."""


def notify(urls: list[str], outcome: RunOutcome, *, always: bool = False) -> list[str]:
    """Send the message about `outcome` to every URL, unless nothing changed and the run
    succeeded (and not `always`). A failed delivery raises nothing: returns the URLs it
    could not deliver to, as `shown_url` gives them, for the caller to warn about."""
    if not urls:
        return []
    message = compose(outcome)
    if not (always or message.changed or not outcome.succeeded):
        logger.info("no notification: nothing changed")
        return []
    failed: list[str] = []
    for url in urls:
        shown = shown_url(url)
        if _send(url, message, outcome.kind):
            logger.info("notification sent to %s", shown)
        else:
            failed.append(shown)
    return failed


def failed_line(shown: str) -> str:
    """What a crawl says of a notification it could not deliver."""
    return f"notification to {shown} failed"


def compose(outcome: RunOutcome) -> Message:
    """The message about `outcome`: its status, then (for a committed run) its changes."""
    from pipelines.notebook import open_archive

    if outcome.run_id is None:
        error = outcome.error or "the crawl stopped before its run could be committed"
        body = f"Status: not committed: {error}\nArchive: {outcome.archive}"
        return Message("MedlinePlus archive: crawl failed, nothing committed", body, False)
    lines = [f"Status: {outcome.status}"]
    try:
        archive = open_archive(outcome.archive)
        lines += [f"Reason: {reason}" for reason in _failure_reasons(archive, outcome.run_id)]
        headline, changed, change_lines = _changes(archive, outcome.run_id)
    except (ArchiveError, OSError) as error:
        logger.warning("notification without changes: %s", error)
        headline, changed, change_lines = "changes unknown", False, [f"Changes unread: {error}"]
    lines += [f"Archive: {outcome.archive}", f"Run: {outcome.run_id}", *change_lines]
    title = f"MedlinePlus archive: run {outcome.run_id} {outcome.status}, {headline}"
    return Message(title, "\n".join(lines), changed)


def _failure_reasons(archive: Archive, run_id: str) -> list[str]:
    runs = archive.runs()
    reasons = runs.loc[runs["run_id"] == run_id, "failure_reasons"]
    return [str(reason) for reason in reasons.iloc[0]] if len(reasons) else []


def _changes(archive: Archive, run_id: str) -> tuple[str, bool, list[str]]:
    """Since the run before `run_id`: a headline, whether anything changed, and the lines
    saying what."""
    from pipelines.changes.detection import compare

    runs = archive.run_ids
    index = runs.index(run_id)
    if index == 0:
        topics = len(archive.topics(as_of=run_id))
        return f"first run, {_topics(topics)}", topics > 0, [f"First run: {_topics(topics)}"]
    previous = runs[index - 1]
    changes = compare(archive, previous, run_id)
    headline = f"{_topics(len(changes.changes))} changed" if changes.changes else "no changes"
    return headline, bool(changes.changes), _describe(changes, archive.path, previous, run_id)


def _topics(count: int) -> str:
    return f"{count} topic{'' if count == 1 else 's'}"


def _describe(changes: ChangeSet, archive: ArchivePath, previous: str, run_id: str) -> list[str]:
    counts = ", ".join(f"{kind} {count}" for kind, count in changes.counts().items())
    lines = [f"Changes since run {previous}: {counts}"]
    if not changes.changes:
        return [*lines, "No topic changed."]
    top = changes.changes[:TOP_TOPICS]
    lines.append(f"Changed topics ({len(top)} of {len(changes.changes)}):")
    lines += [
        f"- {change.kind}: {change.title} ({change.language}/{change.slug}) {change.url}"
        for change in top
    ]
    lines.append(
        f"Full report: medlineplus-archive changes --archive {shlex.quote(str(archive))} "
        f"--from {previous} --to {run_id} --format html --out changes.html"
    )
    return lines


def shown_url(url: str) -> str:
    """`url` as it may be logged: its scheme and host in Apprise's privacy form (passwords
    and tokens masked: `slack://T...A`, `mailto://user:****@host`), without the path and
    query (a webhook's path may hold its secret); the scheme alone when Apprise cannot
    read it."""
    service = _service(url)
    if service is None:
        return f"{urlsplit(url).scheme}://"
    private = urlsplit(str(service.url(privacy=True)))
    return f"{private.scheme}://{private.netloc}"


def _service(url: str) -> Any:
    """Apprise's service object for `url`, or None when it cannot read it."""
    from apprise import Apprise

    _quiet_apprise()
    return Apprise.instantiate(url)


def _send(url: str, message: Message, kind: str) -> bool:
    """Whether the message (of Apprise's type `kind`) was delivered to `url`."""
    from apprise import Apprise

    _quiet_apprise()
    sender: Apprise = Apprise()
    try:
        if not sender.add(url):
            return False
        return bool(
            sender.notify(
                body=message.body,
                title=message.title,
                notify_type=kind,
            )
        )
    except Exception:  # noqa: BLE001 - a notification must never change the crawl's outcome
        return False


def _quiet_apprise() -> None:
    """Keep Apprise's own log (and its logged errors) out of the crawl's console."""
    apprise_log = logging.getLogger("apprise")
    apprise_log.propagate = False
    if not apprise_log.handlers:  # else logging's last-resort handler prints its errors
        apprise_log.addHandler(logging.NullHandler())


class RunNotifier:
    """Scrapy extension: the notification of a crawl whose ARCHIVE_NOTIFY names URLs, sent
    when the engine has stopped (the snapshot pipeline has committed the run, or not)."""

    def __init__(self, crawler: Crawler, urls: list[str], always: bool) -> None:
        self.crawler = crawler
        self.urls = urls
        self.always = always

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        from scrapy import signals
        from scrapy.exceptions import NotConfigured

        urls = setting_urls(crawler.settings.get(NOTIFY_SETTING))
        if not urls:
            # no message: Scrapy logs a disabled component's message as a warning, and
            # a crawl without notifications (the default) has nothing to warn about
            raise NotConfigured
        check_urls(urls)
        notifier = cls(crawler, urls, crawler.settings.getbool(NOTIFY_ALWAYS_SETTING))
        crawler.signals.connect(notifier.engine_stopped, signal=signals.engine_stopped)
        return notifier

    def engine_stopped(self) -> None:
        for shown in notify(self.urls, self.outcome(), always=self.always):
            logger.warning(failed_line(shown))

    def outcome(self) -> RunOutcome:
        """The run as the snapshot pipeline left it in the crawl's stats."""
        from pipelines.reachability import SITE_UNREACHABLE

        stats = self.crawler.stats.get_stats() if self.crawler.stats is not None else {}
        status = stats.get("archive/run/status")
        error = stats.get(SITE_UNREACHABLE) or stats.get("archive/run/error")
        return RunOutcome(
            archive=Path(self.crawler.settings.get("ARCHIVE_PATH")).resolve(),
            run_id=stats.get("archive/run/id") if status is not None else None,
            status=status,
            error=error,
        )
