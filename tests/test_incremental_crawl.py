"""`crawl --plan incremental` end to end on the local fixture site, with XML dumps written
here from the fixture site's own dump (tests/fixtures/site/mplus_topics_fixture.xml).

* only the changed, new, missing and revalidation-window topics are fetched (the
  server's request log), the missing ones to confirm: one still served is not marked
  gone and is reported by the cross-check, one that answers 404 is marked gone;
* a change the dump does not show is found within N runs, by revalidation.

The revalidation window is checked against the partition the README documents (sha256
of "<language>/<slug>", first 8 bytes, mod N == the dump day's ordinal mod N), computed
here on its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from crawler.parsing.urls import topic_path
from tests.crawl_runner import PERMISSIVE_ROBOTS, QUICK, copy_archive, crawl, last_run, run_main
from tests.page_edits import with_text
from tests.site_server import SITE_ROOT, SiteServer

FIXTURE_DUMP = SITE_ROOT / "mplus_topics_fixture.xml"
DAY = date(2025, 11, 4)
LIVE = "https://medlineplus.gov"


def _records() -> tuple[str, dict[str, str]]:
    """The fixture dump's head and its records by URL (but the robots-disallowed topic's:
    never fetched, it would be planned as new every day)."""
    text = FIXTURE_DUMP.read_text("utf-8")
    head, _, rest = text.partition("<health-topic ")
    records = re.findall(r"<health-topic .*?</health-topic>\n", "<health-topic " + rest, re.S)
    by_url = {re.search(r'url="([^"]*)"', r)[1]: r for r in records}  # type: ignore[index]
    del by_url[f"{LIVE}/privatetopic.html"]
    return head, by_url


def _write_dump(path: Path, day: date, records: dict[str, str]) -> Path:
    head, _ = _records()
    head = re.sub(r'date-generated="[^"]*"', f'date-generated="{day:%m/%d/%Y} 02:30:23"', head)
    path.write_text(head + "".join(records.values()) + "</health-topics>\n", "utf-8")
    return path


def _in_window(url: str, day: date, days: int) -> bool:
    slug, language = topic_path(url) or ("", "")
    digest = hashlib.sha256(f"{language}/{slug}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % days == day.toordinal() % days


def _topic_paths(site: SiteServer) -> set[str]:
    return {
        path
        for path in site.paths()
        if path.endswith(".html") and not re.search(r"healthtopics[^/]*\.html$", path)
    }


def _path(url: str) -> str:
    return url.removeprefix(LIVE)


def _runs(archive: Path) -> pd.DataFrame:
    return pd.read_parquet(archive / "runs").sort_values("run_id").reset_index(drop=True)


@pytest.fixture
def site(site_server: SiteServer) -> SiteServer:
    site_server.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
    return site_server


@pytest.fixture(scope="module")
def first_crawl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive holding one full crawl given the dump of DAY (every record): the start of
    each test's history (copied by each test)."""
    root = tmp_path_factory.mktemp("first")
    _, records = _records()
    archive = root / "archive"
    with SiteServer() as server:
        server.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
        dump = _write_dump(root / "d0.xml", DAY, records)
        result = crawl(server.base_url, archive, *QUICK, "--from-xml", dump)
    assert result.returncode == 0, result
    return archive


def test_incremental_run_fetches_only_its_plan_and_confirms_gone_by_404(
    site: SiteServer, first_crawl: Path, tmp_path: Path
) -> None:
    _, records = _records()
    archive = copy_archive(first_crawl, tmp_path)
    baseline = pd.read_parquet(archive / "xml_records")
    assert len(baseline) == len(records) == 28

    changed, new = f"{LIVE}/acne.html", f"{LIVE}/wheezing.html"
    still_served, removed = f"{LIVE}/tinnitus.html", f"{LIVE}/bronchitis.html"
    today = DAY + timedelta(days=1)
    records[changed] = records[changed].replace('title="Acne"', 'title="Acne (pimples)"')
    records[new] = records[f"{LIVE}/asthma.html"].replace("asthma.html", "wheezing.html")
    del records[still_served], records[removed]
    site.replace_file(_path(removed), None)  # 404
    site.clear_log()

    result = crawl(
        site.base_url,
        archive,
        *QUICK,
        "--plan",
        "incremental",
        "--from-xml",
        _write_dump(tmp_path / "d2.xml", today, records),
        "--stats-json",
        tmp_path / "stats.json",
    )

    assert result.returncode == 0, str(result)
    unchanged = set(records) - {changed, new}
    window = {url for url in unchanged if _in_window(url, today, 7)}
    assert 0 < len(window) < len(unchanged)
    expected = {_path(url) for url in {changed, new, still_served, removed} | window}
    assert _topic_paths(site) == expected
    for url in window:  # revalidated with the archived validators: 304
        (request,) = site.requests_for(_path(url))
        assert request.header("If-None-Match") is not None
        assert request.status == 304
    seen = last_run(archive).set_index("url")["outcome"]
    assert seen[removed] == "gone"
    assert seen[still_served] == "unchanged"
    assert seen[changed] == "unchanged"
    assert seen[new] == "new"
    run = _runs(archive).iloc[-1]
    assert run["discovery"] == "incremental+index"
    assert run["status"] == "success"
    notes = " | ".join(run["notes"])
    assert "missing from the XML dump: 1 still served (not marked gone): en/tinnitus" in notes
    assert "1 answered 404/410 (marked gone): en/bronchitis" in notes
    assert (
        "(en/bronchitis, en/newsletter, en/privatetopic, en/tinnitus) listed by the A-Z index"
        in notes
    )
    assert "en/wheezing) in the XML dump, not listed by the A-Z index" in notes
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["archive/plan/changed"] == 1
    assert stats["archive/plan/new"] == 1
    assert stats["archive/plan/missing"] == 2
    assert stats["archive/plan/revalidate"] == len(window)
    stored = pd.read_parquet(archive / "xml_records")
    added = stored[~stored["run_id"].isin(baseline["run_id"])]
    assert sorted(added["slug"]) == ["acne", "wheezing"]
    assert set(added["dump_date"]) == {today}


def test_change_hidden_from_the_xml_is_found_within_n_runs(
    site: SiteServer, first_crawl: Path, tmp_path: Path
) -> None:
    _, records = _records()
    archive = copy_archive(first_crawl, tmp_path)
    days = 3
    edited = "/lupus.html"
    site.replace_file(
        edited,
        with_text(site.file_bytes(edited).decode(), "others get better", "others recover").encode(),
    )
    found_on = None
    for run in range(1, days + 1):
        day = DAY + timedelta(days=run)
        dump = _write_dump(tmp_path / f"d{run}.xml", day, records)
        site.clear_log()
        options = ("--plan", "incremental", "--revalidate-days", str(days), "--from-xml", dump)
        result = crawl(site.base_url, archive, *QUICK, *options)
        assert result.returncode == 0, result
        fetched = edited in _topic_paths(site)
        assert fetched == _in_window(f"{LIVE}{edited}", day, days)
        if fetched:
            found_on = run
            break
    assert found_on is not None
    seen = last_run(archive).set_index("url")["outcome"]
    assert seen[f"{LIVE}{edited}"] == "same_date_edit"
    run_record = _runs(archive).iloc[-1]
    assert list(run_record["hidden_changes"]) == ["en/lupus: summary"], str(result)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--plan", "incremental"), "--plan incremental takes the XML dump: add --from-xml"),
        (
            ("--plan", "incremental", "--from-xml", str(FIXTURE_DUMP), "--limit", "3"),
            "--limit is for --plan full",
        ),
        (("--revalidate-days", "0"), "--revalidate-days must be at least 1 and at most 366"),
    ],
)
def test_incremental_usage_errors_exit_2_before_anything_is_written(
    tmp_path: Path, options: tuple[str, ...], message: str
) -> None:
    archive = tmp_path / "archive"
    result = run_main("crawl", "--base-url", "http://127.0.0.1:9", "--archive", archive, *options)
    assert result.returncode == 2, result
    assert result.stderr.startswith(f"error: {message}")
    assert not archive.exists()
