"""Bad input to `crawl` and `extract`: one `error:` line, the documented exit code, no
traceback, and an archive left exactly as it was. Input found bad before anything starts
is checked in this process (`run_main`); the locked archive takes a second process, as
the lock is there to keep one out."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipelines.core.store import ArchiveStore
from tests.crawl_runner import CrawlResult, run_cli, run_main

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _tree_digest(root: Path) -> str:
    """A digest of every file's path and bytes under `root` (the lock file's pid aside)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".lock"):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _assert_one_line_error(result: CrawlResult, code: int) -> None:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) >= 1, result
    assert lines[-1].startswith(("error:", "medlineplus-archive")), result


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(["--languages", "en,fr"], "unknown language 'fr'", id="language"),
        pytest.param(["--limit", "0"], "--limit must be at least 1", id="limit"),
        pytest.param(["--delay", "-1"], "--delay must be at least 0", id="delay"),
        pytest.param(["--concurrency", "0"], "--concurrency must be at least 1", id="concurrency"),
        pytest.param(["--base-url", "ftp://example.org"], "--base-url takes", id="base-url"),
        pytest.param(["--base-url", "file:///no/such/site"], "no such directory", id="base-dir"),
        pytest.param(["--urls", "/no/such/urls.txt"], "no such file", id="urls-file"),
        pytest.param(["--from-xml", "/no/such/dump.xml"], "no such file", id="xml-file"),
        pytest.param(["--url", "medlineplus.gov/asthma.html"], "--url takes", id="url"),
        pytest.param(["-s", "RETRY_TIMES"], "NAME=VALUE", id="setting"),
        pytest.param(["-s", "RETRY_TIMES=x"], "takes a whole number", id="setting-int"),
        pytest.param(["-s", "DOWNLOAD_TIMEOUT=soon"], "takes a number", id="setting-float"),
        pytest.param(["-s", "ROBOTSTXT_OBEY=maybe"], "takes true or false", id="setting-bool"),
        pytest.param(["-s", "ITEM_PIPELINES=none"], "takes a JSON object", id="setting-dict"),
        pytest.param(
            ["-s", "MEDLINEPLUS_PARSE_WORKERS=2.5"], "takes a whole number", id="setting-ours"
        ),
    ],
)
def test_crawl_usage_errors(tmp_path: Path, arguments: list[str], message: str) -> None:
    result = run_main("crawl", "--archive", tmp_path / "archive", *arguments)
    _assert_one_line_error(result, 2)
    assert message in result.stderr
    assert not (tmp_path / "archive").exists()


def test_crawl_refuses_a_locked_archive(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    with ArchiveStore.open(archive):
        before = _tree_digest(archive)
        result = run_cli("crawl", "--archive", archive, "--url", "http://127.0.0.1:9/x.html")
        _assert_one_line_error(result, 3)
        assert "another crawl is writing" in result.stderr
        assert _tree_digest(archive) == before


def test_crawl_refuses_a_foreign_directory(tmp_path: Path) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8 not an archive")
    result = run_main("crawl", "--archive", foreign, "--url", "http://127.0.0.1:9/x.html")
    _assert_one_line_error(result, 2)  # the wrong --archive: a usage error
    assert "not a medlineplus archive" in result.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]


def test_crawl_refuses_a_newer_schema(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    ArchiveStore.open(archive).close()
    marker = archive / "_archive.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "schema_version": 99}))
    before = _tree_digest(archive)
    result = run_main("crawl", "--archive", archive, "--url", "http://127.0.0.1:9/x.html")
    _assert_one_line_error(result, 3)
    assert "newer" in result.stderr
    assert _tree_digest(archive) == before


@pytest.mark.parametrize(
    ("page", "code", "message"),
    [
        pytest.param("/no/such/page.html", 2, "cannot read", id="missing"),
        pytest.param(str(FIXTURES), 2, "cannot read", id="directory"),
        pytest.param(
            str(FIXTURES / "pages" / "not_a_topic_az_index.html"),
            1,
            "not a health-topic page",
            id="not-a-topic",
        ),
        pytest.param(
            str(FIXTURES / "pages" / "topic_without_date.html"), 1, "last_updated", id="no-date"
        ),
    ],
)
def test_extract_errors(page: str, code: int, message: str) -> None:
    result = run_main("extract", page)
    _assert_one_line_error(result, code)
    assert message in result.stderr
    assert result.stdout == ""


def test_unknown_command_is_a_usage_error() -> None:
    _assert_one_line_error(run_main("frobnicate"), 2)
