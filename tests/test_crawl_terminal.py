"""What a crawl shows: the live progress line on a terminal (a pseudo-terminal here), and
the flat items of `scrapy crawl health_topics -O items.jsonl`."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.progress import CLEAR_LINE
from tests.crawl_runner import PERMISSIVE_ROBOTS, QUICK, crawl, last_run
from tests.site_server import SiteServer

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FAILING = "/acne.html"
EDITED = "/asthma.html"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[[\w.]+\] [A-Z]+: ")
STATUS = re.compile(r"\d+/\d+ pages \(\d+%\) \| [\d.]+ pages/s \| ETA [-:\d]+ \| \d+ errors")
FINAL = re.compile(
    r"^finished: (\d+) pages in [\d.:]+( s)? \([\d.]+ pages/s\)"
    r" \| (\d+) errors \| (\d+) not modified$"
)


@pytest.fixture(scope="module")
def server() -> Iterator[SiteServer]:
    with SiteServer() as site:
        site.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
        yield site


def run_in_terminal(command: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run `command` with a pseudo-terminal as its stdin, stdout and stderr; its exit code
    and everything it wrote to the terminal."""
    primary, secondary = os.openpty()
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TERM": "xterm"}
    process = subprocess.Popen(
        command, stdin=secondary, stdout=secondary, stderr=secondary, env=environment
    )
    os.close(secondary)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal's last descriptor
                break
            if not chunk:
                break
            output += chunk
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(primary)
    return code, output.decode("utf-8", errors="replace")


def screen(output: str) -> list[str]:
    """The lines a terminal shows for `output` (carriage return, erase to end of line)."""
    lines = [""]
    column = 0
    position = 0
    while position < len(output):
        if output.startswith("\x1b[K", position):
            lines[-1] = lines[-1][:column]
            position += 3
            continue
        character = output[position]
        if character == "\r":
            column = 0
        elif character == "\n":
            lines.append("")
            column = 0
        else:
            line = lines[-1].ljust(column)
            lines[-1] = line[:column] + character + line[column + 1 :]
            column += 1
        position += 1
    return lines


def test_the_progress_line_counts_every_page_and_log_lines_print_above_it(
    server: SiteServer, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    assert crawl(server.base_url, archive, *QUICK).returncode == 0
    # The re-crawl: most pages answer 304, one is new, one fails (logged mid-crawl).
    server.replace_file(EDITED, server.file_bytes(EDITED) + b"\n<!-- edited -->\n")
    server.script(FAILING, [(500, {}, b"")] * 4)
    server.slow_down(0.15)  # long enough for the line to be redrawn a few times
    command = [sys.executable, "-m", "crawler.commands.cli", "crawl", "--base-url", server.base_url]
    command += ["--archive", str(archive), *QUICK]
    try:
        code, output = run_in_terminal(command)
    finally:
        server.slow_down(0)
        server.restore_file(EDITED)
    assert code == 0, output  # two errors in 30 pages: under the 5% thresholds

    drawn = [
        match.group(0) for match in re.finditer(re.escape(CLEAR_LINE) + STATUS.pattern, output)
    ]
    assert len(drawn) >= 2, output  # the live line was drawn in place during the crawl
    shown = [line.rstrip() for line in screen(output) if line.strip()]
    final = FINAL.match(shown[-1])
    assert final is not None, shown[-3:]
    for line in shown[:-1]:  # every other line is a whole log line, no status left in it
        assert LOG_LINE.match(line), line
        assert not STATUS.search(line), line
    assert any("500" in line for line in shown[:-1])  # the failure was logged mid-crawl
    assert not any("Overridden settings" in line or "Enabled " in line for line in shown)

    seen = last_run(archive)
    fetched = seen[seen["http_status"].notna() | (seen["outcome"] == "error")]
    done, errors, not_modified = (int(final.group(index)) for index in (1, 3, 4))
    assert done == len(fetched) == len(seen)
    assert errors == (seen["outcome"] == "error").sum() >= 1
    assert not_modified == seen["revalidated"].sum() >= 1
    edited = seen[seen["url"] == f"https://medlineplus.gov{EDITED}"]
    assert not edited["revalidated"].any()  # fetched whole (200), and counted too


WITHOUT_DEDUPE = json.dumps(
    {"pipelines.validate.ValidatePipeline": 100, "pipelines.archiving.ArchivePipeline": 300}
)
"""ITEM_PIPELINES with DedupePipeline taken out: the archive classifies pages itself."""


@pytest.mark.parametrize(
    "options",
    [
        pytest.param([], id="default"),
        pytest.param(["-s", f"ITEM_PIPELINES={WITHOUT_DEDUPE}"], id="without-dedupe"),
    ],
)
def test_scrapy_feed_export_writes_flat_topic_items(
    server: SiteServer, tmp_path: Path, options: list[str]
) -> None:
    items = tmp_path / "items.jsonl"
    archive = tmp_path / "archive"
    urls = " ".join(f"https://medlineplus.gov{path}" for path in ("/asthma.html", "/anemia.html"))
    command = [sys.executable, "-m", "scrapy", "crawl", "health_topics", "-O", str(items)]
    command += ["-a", f"base_url={server.base_url}", "-a", f"url={urls}"]
    command += ["-s", f"ARCHIVE_PATH={archive}", "-s", "DOWNLOAD_DELAY=0", *options]
    completed = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "Traceback" not in completed.stderr, completed.stderr[-4000:]
    lines = [json.loads(line) for line in items.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["slug"] for line in lines) == ["anemia", "asthma"]
    for line in lines:
        assert {"title", "slug", "url", "last_updated", "content_hash"} <= set(line)
        assert not {"page", "outcome"} & set(line)
        assert line["url"] == f"https://medlineplus.gov/{line['slug']}.html"
    # dedupe's outcome still reached the archive, beside the items
    assert sorted(last_run(archive)["outcome"]) == ["new", "new"]
