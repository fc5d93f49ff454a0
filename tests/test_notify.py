"""`crawl --notify URL`: one Apprise message after a run (crawler/notify.py).

A webhook on 127.0.0.1 stands for the service: Apprise's `json://` POSTs
`{"title", "message", "type", ...}` to it. Every crawl fetches two topics (`--url`) of the
fixture site, re-crawling a copy of one module-wide first run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crawler.commands.cli import main
from crawler.notify import RunOutcome, compose, notify
from pipelines.core.store import ArchiveStore
from tests import archive_factory
from tests.archive_factory import at, commit_run, make_page
from tests.crawl_runner import PERMISSIVE_ROBOTS, QUICK, crawl
from tests.page_edits import with_date, with_text
from tests.site_server import SITE_ROOT, SiteServer

pytestmark = pytest.mark.filterwarnings(
    # Apprise checks whether Python still has imghdr (for PGPy), importing it once.
    "ignore:'imghdr' is deprecated:DeprecationWarning"
)

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = "https://medlineplus.gov"
TOPICS = ("--url", f"{ORIGIN}/asthma.html", "--url", f"{ORIGIN}/allergy.html")


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.bodies.append(json.loads(self.rfile.read(length)))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class Webhook:
    """An HTTP endpoint on 127.0.0.1 that records the JSON body of every POST."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        self._server.bodies = []  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.port = self._server.server_address[1]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = self._server.bodies  # type: ignore[attr-defined]
        return bodies

    def url(self, credentials: str = "") -> str:
        return f"json://{credentials}127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.stop()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive with one run of asthma and allergy."""
    archive = tmp_path_factory.mktemp("notify") / "archive"
    with SiteServer() as server:
        server.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
        result = crawl(server.base_url, archive, *QUICK, *TOPICS)
    assert result.returncode == 0, result
    return archive


@pytest.fixture
def archive(first_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(first_run, tmp_path / "archive"))


@pytest.fixture
def site() -> Iterator[SiteServer]:
    with SiteServer() as server:
        server.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
        yield server


def edit_allergy(server: SiteServer) -> None:
    """Allergy updated: a new date and a changed summary."""
    page = (SITE_ROOT / "allergy.html").read_text(encoding="utf-8")
    page = with_text(with_date(page, date(2025, 10, 1)), "harmless. Your", "pollen. Your")
    server.replace_file("/allergy.html", page)


def notification_lines(stderr: str, port: int) -> list[str]:
    return [line for line in stderr.splitlines() if f"127.0.0.1:{port}" in line]


def test_a_changed_run_sends_one_message_naming_the_topic_and_an_unchanged_one_none(
    archive: Path, site: SiteServer, webhook: Webhook
) -> None:
    edit_allergy(site)
    changed = crawl(site.base_url, archive, *QUICK, *TOPICS, "--notify", webhook.url())
    assert changed.returncode == 0, changed
    assert len(webhook.bodies) == 1
    [body] = webhook.bodies
    assert body["type"] == "info"
    assert "success" in body["title"]
    message = body["message"]
    assert "Status: success" in message
    assert "updated 1, same_date_edit 0, date_only 0" in message
    assert "- updated: Allergy (en/allergy) https://medlineplus.gov/allergy.html" in message
    assert "asthma" not in message.lower()
    assert f"changes --archive {archive.resolve()} --from " in message

    unchanged = crawl(site.base_url, archive, *QUICK, *TOPICS, "--notify", webhook.url())
    assert unchanged.returncode == 0, unchanged
    assert len(webhook.bodies) == 1


def test_notify_always_sends_after_an_unchanged_run_and_a_dead_endpoint_is_one_warning(
    archive: Path, site: SiteServer, webhook: Webhook
) -> None:
    down = Webhook()
    down.stop()  # nothing listens on its port any more
    dead_url = down.url(credentials="alerts:s3cret@")
    options = ["--notify", dead_url, "--notify", webhook.url(), "--notify-always"]
    result = crawl(site.base_url, archive, *QUICK, *TOPICS, *options)
    assert result.returncode == 0, result
    assert len(webhook.bodies) == 1
    [body] = webhook.bodies
    assert body["title"].endswith("success, no changes")
    assert "added 0, removed 0, updated 0, same_date_edit 0, date_only 0" in body["message"]
    assert "No topic changed." in body["message"]

    lines = notification_lines(result.stderr, down.port)
    assert len(lines) == 1, result.stderr
    assert "WARNING" in lines[0]
    # scheme and host only: a webhook's path may hold its secret
    assert lines[0].endswith(f"notification to json://alerts:****@127.0.0.1:{down.port} failed")
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr
    assert "apprise" not in result.stderr.lower()
    assert "Connection error" not in result.stderr


def test_scrapy_crawl_takes_the_same_as_settings(
    archive: Path, site: SiteServer, webhook: Webhook
) -> None:
    """`scrapy crawl` users set ARCHIVE_NOTIFY (a JSON array) and ARCHIVE_NOTIFY_ALWAYS."""
    command = [
        sys.executable,
        *("-m", "scrapy", "crawl", "health_topics", "-a", f"url={ORIGIN}/allergy.html"),
        *("-s", f"MEDLINEPLUS_BASE_URL={site.base_url}", "-s", f"ARCHIVE_PATH={archive}"),
        *("-s", "DOWNLOAD_DELAY=0", "-s", f"ARCHIVE_NOTIFY={json.dumps([webhook.url()])}"),
        *("-s", "ARCHIVE_NOTIFY_ALWAYS=true"),
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(webhook.bodies) == 1
    assert "No topic changed." in webhook.bodies[0]["message"]


def test_an_unreachable_site_is_notified_as_a_failure_and_exits_3(
    archive: Path, webhook: Webhook
) -> None:
    with SiteServer() as stopped:
        base_url = stopped.base_url
    result = crawl(base_url, archive, *QUICK, *TOPICS, "--notify", webhook.url())
    assert result.returncode == 3, result
    assert len(webhook.bodies) == 1
    [body] = webhook.bodies
    assert body["type"] == "failure"
    assert "nothing committed" in body["title"]
    assert f"Status: not committed: {base_url} could not be reached" in body["message"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--notify", "nope://alerts:s3cret@example.com/"], "error: --notify: "),
        (["--notify", "json://"], "error: --notify: "),
        (["-s", 'ARCHIVE_NOTIFY=["nope://alerts:s3cret@example.com/"]'], "error: -s ARCHIVE"),
        (["-s", "ARCHIVE_NOTIFY=[not json"], "error: -s ARCHIVE_NOTIFY: "),
    ],
)
def test_a_url_apprise_cannot_use_is_exit_2_before_anything_is_fetched(
    first_run: Path,
    site: SiteServer,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    expected: str,
) -> None:
    runs = sorted((first_run / "_runs").iterdir())
    arguments = ["crawl", "--base-url", site.base_url, "--archive", str(first_run), *TOPICS]
    code = main([*arguments, *options])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert stderr.startswith(expected), stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert "s3cret" not in stderr
    assert site.requests == []
    assert sorted((first_run / "_runs").iterdir()) == runs


def test_a_locked_archive_is_notified_and_exits_3(
    archive: Path, webhook: Webhook, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["crawl", "--archive", str(archive), "--base-url", "http://127.0.0.1:9"]
    with ArchiveStore.open(archive):
        code = main([*arguments, *TOPICS, "--notify", webhook.url()])
    stderr = capsys.readouterr().err
    assert code == 3, stderr
    assert stderr.startswith(f"error: another crawl is writing {archive} "), stderr
    assert len(stderr.splitlines()) == 1, stderr
    [body] = webhook.bodies
    assert body["type"] == "failure"
    assert body["message"].startswith(f"Status: not committed: another crawl is writing {archive}")


# --- the message and when it is sent, on hand-made runs (no crawl) ---------------------

REASON = "the en index lists 9 fewer topics than run R"


def test_a_run_that_did_not_succeed_is_sent_with_its_reasons_and_ten_topics(
    tmp_path: Path, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    slugs = [f"topic{number:02d}" for number in range(12)]
    first = commit_run(tmp_path, at(date(2024, 1, 1)), [make_page(slug) for slug in slugs])
    success = RunOutcome(archive=tmp_path, run_id=first, status="success")
    assert compose(success).title.endswith(f"run {first} success, first run, 12 topics")
    recorded = archive_factory.run_record
    monkeypatch.setattr(
        archive_factory,
        "run_record",
        lambda *args: dataclasses.replace(
            recorded(*args), status="partial", failure_reasons=[REASON]
        ),
    )
    edited = [make_page(slug, text=f"{slug} was edited.") for slug in slugs]
    second = commit_run(tmp_path, at(date(2024, 2, 1)), edited)
    partial = RunOutcome(archive=tmp_path, run_id=second, status="partial")

    assert notify([webhook.url()], partial) == []
    [body] = webhook.bodies
    assert body["type"] == "warning"
    assert body["title"] == f"MedlinePlus archive: run {second} partial, 12 topics changed"
    lines = body["message"].splitlines()
    assert lines[:2] == ["Status: partial", f"Reason: {REASON}"]
    assert "Changed topics (10 of 12):" in lines
    assert sum(line.startswith("- same_date_edit: ") for line in lines) == 10
    assert "topic09" in body["message"]
    assert "topic10" not in body["message"]


def test_an_unchanged_successful_run_is_not_sent_unless_always(
    tmp_path: Path, webhook: Webhook
) -> None:
    commit_run(tmp_path, at(date(2024, 1, 1)), [make_page("asthma")])
    run_id = commit_run(tmp_path, at(date(2024, 2, 1)), [make_page("asthma")])
    outcome = RunOutcome(archive=tmp_path, run_id=run_id, status="success")
    assert notify([webhook.url()], outcome) == []
    assert webhook.bodies == []
    assert notify([webhook.url()], outcome, always=True) == []
    assert len(webhook.bodies) == 1
    assert webhook.bodies[0]["type"] == "info"
