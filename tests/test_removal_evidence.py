"""A topic is marked gone only on positive evidence from its own URL (missing from the
index is only a reason to request it), a run that would remove too much at once removes
nothing (the shrink guard), and a site that cannot be reached changes nothing: full
index crawls of the fixture site (tests/site_server.py) into a copy of an
archive that holds one healthy full crawl, with the fault injected by the server, then
what the archive holds (observations, runs, the latest view) and the exit code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pipelines.notebook import open_archive
from tests.crawl_runner import (
    QUICK,
    CrawlResult,
    copy_archive,
    crawl,
    last_run,
    run_main,
)
from tests.site_server import SITE_ROOT, SiteServer

EXPECTED = json.loads((SITE_ROOT.parent / "site_expected.json").read_text(encoding="utf-8"))
BOUNDED = [*QUICK, "-s", "RETRY_TIMES=2"]
LETTER_PAGE = "/healthtopics_{}.html"


def only_on_letters(*letters: str) -> set[str]:
    """Slugs of the English topics that only the index pages of `letters` list (from the
    fixture's own description of its index pages)."""
    slugs = set()
    for path, page in EXPECTED["topic_pages"].items():
        listed = {
            source.removeprefix("az_index_en:")
            for source in page["discovered_by"]
            if source.startswith("az_index_en:")
        }
        if listed and listed <= set(letters) and page["robots_allowed"]:
            slugs.add(Path(path).stem)
    return slugs


@dataclass(frozen=True)
class Baseline:
    archive: Path
    run_id: str
    topics: pd.DataFrame
    """The latest view after the first crawl."""


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, one_full_crawl: Path) -> Baseline:
    """An archive holding one healthy full index crawl of the fixture site (copied by
    each test)."""
    archive = copy_archive(one_full_crawl, tmp_path_factory.mktemp("baseline"))
    loaded = open_archive(archive)
    (run_id,) = loaded.run_ids
    return Baseline(archive, run_id, loaded.topics())


def _gone(archive: Path) -> set[str]:
    """Slugs the newest run observed gone."""
    seen = last_run(archive)
    return set(seen.loc[seen["outcome"] == "gone", "slug"])


def _latest_run(archive: Path) -> pd.Series:
    return open_archive(archive).runs().iloc[-1]


def _live_slugs(archive: Path) -> set[str]:
    topics = open_archive(archive).topics()
    return set(topics.loc[topics["language"] == "en", "slug"])


# --- an index page that fails -------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 404])
def test_a_letter_page_that_fails_marks_nothing_gone_and_the_run_is_partial(
    quick_site: SiteServer, baseline: Baseline, tmp_path: Path, status: int
) -> None:
    archive = copy_archive(baseline.archive, tmp_path)
    failing = LETTER_PAGE.format("b")
    if status == 500:
        quick_site.error_burst(failing, 500, count=10)
    else:
        quick_site.replace_file(failing, None)
    unreached = only_on_letters("b")
    assert len(unreached) >= 3  # under the shrink guard's floor: the index failure decides

    result = crawl(quick_site.base_url, archive, *BOUNDED)

    assert result.returncode == 1, result
    assert _gone(archive) == set()
    run = _latest_run(archive)
    assert (run["status"], run["pages_gone"]) == ("partial", 0)
    reasons = list(run["failure_reasons"])
    assert any(
        quick_site.url(failing) in reason and f"HTTP {status}" in reason for reason in reasons
    )
    (line,) = _error_lines(result)
    assert line.startswith(f"error: run {run['run_id']} committed as partial: {reasons[0]}")
    assert unreached <= _live_slugs(archive)
    assert (
        open_archive(archive)
        .topics()[["language", "slug"]]
        .equals(baseline.topics[["language", "slug"]])
    )


# --- the shrink guard ---------------------------------------------------------------------

EMPTY_LETTER_PAGE = (
    "<!DOCTYPE html>\n<html lang='en'><head><title>Health Topics</title></head>"
    "<body><h1>Health Topics</h1><ul id='index'></ul></body></html>\n"
)


@pytest.fixture
def three_empty_letters(quick_site: SiteServer) -> set[str]:
    """Letter pages d, l and t answer 200 but list no topic; the topics only they list.
    (l also lists the fixture's one page that is not a topic: none of the pages crawled
    fails extraction, so the run's status is about the index alone.)"""
    for letter in "dlt":
        quick_site.replace_file(LETTER_PAGE.format(letter), EMPTY_LETTER_PAGE)
    dropped = only_on_letters(*"dlt")
    assert len(dropped) > 5
    return dropped


def test_three_empty_letter_pages_mark_nothing_gone(
    quick_site: SiteServer, baseline: Baseline, tmp_path: Path, three_empty_letters: set[str]
) -> None:
    archive = copy_archive(baseline.archive, tmp_path)

    result = crawl(quick_site.base_url, archive, *QUICK)

    assert result.returncode == 1, result
    assert _gone(archive) == set()
    run = _latest_run(archive)
    assert (run["status"], run["pages_gone"]) == ("partial", 0)
    expected = f"the en index lists {len(three_empty_letters)} fewer topics than run"
    assert any(f"{expected} {baseline.run_id}" in reason for reason in run["failure_reasons"])
    (line,) = _error_lines(result)
    assert line.startswith(f"error: run {run['run_id']} committed as partial: "), line
    assert f"{expected} {baseline.run_id}" in line
    assert three_empty_letters <= _live_slugs(archive)
    # too many to be a removal: none of them was requested to find out
    assert not [slug for slug in three_empty_letters if quick_site.requests_for(f"/{slug}.html")]


def test_the_setting_lets_a_deliberate_large_removal_through(
    quick_site: SiteServer, baseline: Baseline, tmp_path: Path, three_empty_letters: set[str]
) -> None:
    archive = copy_archive(baseline.archive, tmp_path)
    for slug in three_empty_letters:  # a removal: unlisted, and gone from the site too
        quick_site.replace_file(f"/{slug}.html", None)

    result = crawl(quick_site.base_url, archive, *QUICK, "-s", "ARCHIVE_MAX_GONE_SHARE=1")

    assert result.returncode == 0, result
    assert _gone(archive) == three_empty_letters
    assert _latest_run(archive)["status"] == "success"
    assert not three_empty_letters & _live_slugs(archive)


def test_many_pages_answering_404_at_once_are_errors_not_removals(
    quick_site: SiteServer, baseline: Baseline, tmp_path: Path
) -> None:
    archive = copy_archive(baseline.archive, tmp_path)
    missing = sorted(only_on_letters("c", "d"))
    assert len(missing) > 5
    for slug in missing:
        quick_site.replace_file(f"/{slug}.html", None)

    result = crawl(quick_site.base_url, archive, *QUICK)

    assert result.returncode == 1, result
    seen = last_run(archive).query("language == 'en'").set_index("slug")
    assert list(seen.loc[missing, "outcome"]) == ["error"] * len(missing)
    assert set(seen.loc[missing, "http_status"]) == {404}
    run = _latest_run(archive)
    assert (run["status"], run["pages_gone"]) == ("partial", 0)
    expected = f"{len(missing)} en topics answered 404/410"
    assert any(expected in reason for reason in run["failure_reasons"])
    assert set(missing) <= _live_slugs(archive)


def _unlist_burns(site: SiteServer) -> None:
    """Take Burns off letter page b, the one index page that lists it."""
    letter_page = LETTER_PAGE.format("b")
    listing = site.file_bytes(letter_page).decode("utf-8")
    without_burns, removed = re.subn(r'<li><a href="/burns\.html">Burns</a></li>\n', "", listing)
    assert removed == 1
    site.replace_file(letter_page, without_burns)


def test_one_real_removal_is_marked_gone(
    quick_site: SiteServer, baseline: Baseline, tmp_path: Path
) -> None:
    archive = copy_archive(baseline.archive, tmp_path)
    _unlist_burns(quick_site)
    quick_site.replace_file("/burns.html", None)

    result = crawl(quick_site.base_url, archive, *QUICK)

    assert result.returncode == 0, result
    assert _gone(archive) == {"burns"}
    run = _latest_run(archive)
    assert (run["status"], run["pages_gone"]) == ("success", 1)
    assert _live_slugs(archive) == set(baseline.topics.query("language == 'en'")["slug"]) - {
        "burns"
    }


# --- missing from the index is a reason to look, not evidence ------------------------------


def test_a_letter_page_missing_from_the_navigation_removes_nothing(
    quick_site: SiteServer, baseline: Baseline, tmp_path: Path
) -> None:
    """Letter page b is linked from no index page, so it is never requested and never
    fails; its topics, no longer listed, are requested at their own URLs and answer."""
    archive = copy_archive(baseline.archive, tmp_path)
    for page in sorted(SITE_ROOT.glob("healthtopics*.html")):
        path = f"/{page.name}"
        navigation = quick_site.file_bytes(path).decode("utf-8")
        without_b, removed = re.subn(
            r'<li(?: class="current")?><a href="/healthtopics_b\.html">B</a></li>\n', "", navigation
        )
        assert removed == 1, path
        quick_site.replace_file(path, without_b)
    unlisted = only_on_letters("b")
    assert unlisted
    stats_file = tmp_path / "stats.json"

    result = crawl(quick_site.base_url, archive, *QUICK, "--stats-json", stats_file)

    assert result.returncode == 0, result
    assert quick_site.requests_for(LETTER_PAGE.format("b")) == []
    for slug in unlisted:
        (request,) = quick_site.requests_for(f"/{slug}.html")
        assert request.header("If-None-Match"), slug  # conditional, as any known topic
    assert _gone(archive) == set()
    seen = last_run(archive).query("language == 'en'").set_index("slug")
    assert set(seen.loc[sorted(unlisted), "outcome"]) == {"unchanged"}
    run = _latest_run(archive)
    assert (run["status"], run["pages_gone"]) == ("success", 0)
    stats = json.loads(stats_file.read_text(encoding="utf-8"))
    assert stats["archive/discovery/unlisted_but_served"] == len(unlisted)
    assert unlisted <= _live_slugs(archive)


def test_an_unlisted_topic_redirected_to_another_topic_is_gone(
    quick_site: SiteServer, baseline: Baseline, tmp_path: Path
) -> None:
    archive = copy_archive(baseline.archive, tmp_path)
    _unlist_burns(quick_site)
    quick_site.replace_file("/burninjuries.html", quick_site.file_bytes("/burns.html"))
    quick_site.script("/burns.html", [(301, {"Location": "/burninjuries.html"}, b"")])

    result = crawl(quick_site.base_url, archive, *QUICK)

    assert result.returncode == 0, result
    assert quick_site.pending_scripts() == {}
    assert _gone(archive) == {"burns"}
    seen = last_run(archive).query("language == 'en'").set_index("slug")
    assert seen.loc["burns", "http_status"] == 301
    assert "redirects to https://medlineplus.gov/burninjuries.html" in seen.loc["burns", "error"]
    assert seen.loc["burninjuries", "outcome"] == "new"
    run = _latest_run(archive)
    assert (run["status"], run["pages_gone"]) == ("success", 1)
    live = _live_slugs(archive)
    assert "burninjuries" in live
    assert "burns" not in live


# --- a site that cannot be reached --------------------------------------------------------


def _error_lines(result: CrawlResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_stopped_server_changes_nothing(two_full_crawls: Path, tmp_path: Path) -> None:
    archive = copy_archive(two_full_crawls, tmp_path)  # two runs, for `changes` to compare
    with SiteServer() as server:
        base_url = server.base_url
    before = open_archive(archive)
    report = run_main("changes", "--archive", archive, "--format", "json")
    assert report.returncode == 0, report

    result = crawl(base_url, archive, *QUICK)  # the server is stopped

    assert result.returncode == 3, result
    (line,) = _error_lines(result)
    assert line.startswith(f"error: {base_url} could not be reached ("), line
    assert "Traceback" not in result.stderr + result.stdout
    after = open_archive(archive)
    assert after.run_ids == before.run_ids
    assert not (after.observations()["outcome"] == "gone").any()
    pd.testing.assert_frame_equal(after.topics(), before.topics())
    report_after = run_main("changes", "--archive", archive, "--format", "json")
    assert report_after.stdout == report.stdout
    assert json.loads(report_after.stdout)["counts"]["removed"] == 0


@pytest.mark.parametrize(
    ("base_url", "options"),
    [
        pytest.param("http://127.0.0.1:1", (), id="connection-refused"),
        pytest.param("http://nonexistent.invalid", (), id="dns-failure"),
        pytest.param(
            "http://127.0.0.1:1", ("-s", "ROBOTSTXT_OBEY=false"), id="every-request-fails"
        ),
    ],
)
def test_an_unreachable_site_is_one_error_line_and_exit_3(
    tmp_path: Path, base_url: str, options: tuple[str, ...]
) -> None:
    archive = tmp_path / "archive"

    result = crawl(base_url, archive, *QUICK, *options)

    assert result.returncode == 3, result
    (line,) = _error_lines(result)
    assert re.fullmatch(rf"error: {re.escape(base_url)} could not be reached \(.+\)", line), line
    assert "Traceback" not in result.stderr + result.stdout
    assert open_archive(archive).run_ids == ()
