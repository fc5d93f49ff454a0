"""End-to-end crawls of the fixture site served on 127.0.0.1 (never the live site)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.crawl_runner import QUICK, copy_archive, crawl, last_run, observations
from tests.site_server import SITE_ROOT, SiteServer

EXPECTED = json.loads((SITE_ROOT.parent / "site_expected.json").read_text(encoding="utf-8"))
SETS = EXPECTED["topic_sets"]
NOT_TOPICS = set(EXPECTED["topic_looking_non_topics"])


def _out_of_scope(path: str) -> bool:
    return path.startswith(("/ency/", "/druginfo/")) or path == "/privatetopic.html"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param([], SETS["az_index_en_allowed"] + SETS["az_index_es"], id="az-index"),
        pytest.param(["--languages", "es"], SETS["az_index_es"], id="az-index-spanish-only"),
        pytest.param(
            ["--from-xml", SITE_ROOT / "mplus_topics_fixture.xml"],
            sorted(set(SETS["xml_en"] + SETS["xml_es"]) - set(SETS["robots_disallowed"])),
            id="xml-dump",
        ),
        pytest.param(["--urls", SITE_ROOT / "urls.txt"], SETS["urls_txt"], id="url-file"),
        pytest.param(
            [
                "--url",
                "https://medlineplus.gov/asthma.html",
                "--url",
                "https://medlineplus.gov/spanish/acne.html",
            ],
            ["https://medlineplus.gov/asthma.html", "https://medlineplus.gov/spanish/acne.html"],
            id="single-urls",
        ),
    ],
)
def test_each_discovery_source_finds_exactly_its_topics(
    quick_site: SiteServer, tmp_path: Path, options: list[str | Path], expected: list[str]
) -> None:
    result = crawl(quick_site.base_url, tmp_path / "archive", *QUICK, *options)
    assert result.returncode == 0, result
    seen = last_run(tmp_path / "archive")
    versions = seen[seen["outcome"] == "new"]
    assert sorted(versions["url"]) == sorted(expected)
    assert set(seen["url"]) - set(expected) <= NOT_TOPICS  # a topic-looking page that is not one
    assert (seen.loc[seen["outcome"] == "error", "error_field"] == "html#health_topic").all()
    requested = quick_site.paths()
    assert not [path for path in requested if _out_of_scope(path)], requested
    assert all(url.startswith("https://medlineplus.gov/") for url in seen["url"])
    assert all(url.startswith(quick_site.base_url) for url in seen["source_url"])


def test_second_crawl_of_unchanged_site_revalidates_every_page(
    quick_site: SiteServer, one_full_crawl: Path, tmp_path: Path
) -> None:
    archive = copy_archive(one_full_crawl, tmp_path)
    first = last_run(archive)
    topic_paths = {url.removeprefix("https://medlineplus.gov") for url in first["url"]}
    topic_paths -= {url.removeprefix("https://medlineplus.gov") for url in NOT_TOPICS}
    quick_site.clear_log()

    stats_file = tmp_path / "stats.json"
    result = crawl(quick_site.base_url, archive, *QUICK, "--stats-json", stats_file)

    assert result.returncode == 0, result
    stats = json.loads(stats_file.read_text(encoding="utf-8"))
    assert "archive/pages/parsed" not in stats  # the one non-topic page fails extraction
    assert stats["archive/pages/not_modified"] == len(topic_paths)
    answers = {r.path: r.status for r in quick_site.requests if r.path in topic_paths}
    assert answers == dict.fromkeys(topic_paths, 304)
    second = last_run(archive)
    pages = second[second["url"].isin({f"https://medlineplus.gov{p}" for p in topic_paths})]
    assert len(pages) == len(topic_paths)
    assert pages["revalidated"].all()
    assert set(pages["outcome"]) == {"unchanged"}
    # a 304 carries no page, so nothing was parsed: the run knows its versions from the archive
    assert pages["content_hash"].notna().all()
    assert len(observations(archive)) == len(first) + len(second)


def test_robots_txt_crawl_delay_is_obeyed(site_server: SiteServer, tmp_path: Path) -> None:
    """The fixture robots.txt says Crawl-delay: 2; --delay 0 must not go below it."""
    pages = ["asthma", "allergy", "acne"]
    options = [
        option for page in pages for option in ("--url", f"https://medlineplus.gov/{page}.html")
    ]
    result = crawl(site_server.base_url, tmp_path / "archive", "--delay", "0", *options)
    assert result.returncode == 0, result
    arrivals = sorted(
        r.at for r in site_server.requests if r.path.removesuffix(".html").lstrip("/") in pages
    )
    assert len(arrivals) == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 1.9, gaps


def test_robots_disallowed_topic_is_never_requested(quick_site: SiteServer, tmp_path: Path) -> None:
    result = crawl(
        quick_site.base_url,
        tmp_path / "archive",
        *QUICK,
        "--url",
        "https://medlineplus.gov/privatetopic.html",
        "--url",
        "https://medlineplus.gov/asthma.html",
        "--url",
        "https://medlineplus.gov/allergy.html",
    )
    assert result.returncode == 0, result
    assert "/privatetopic.html" not in quick_site.paths()
    assert sorted(last_run(tmp_path / "archive")["url"]) == [
        "https://medlineplus.gov/allergy.html",
        "https://medlineplus.gov/asthma.html",
    ]


def test_503_then_200_is_retried(quick_site: SiteServer, tmp_path: Path) -> None:
    quick_site.script("/asthma.html", [(503, {}, b"busy"), (503, {}, b"busy")])
    result = crawl(
        quick_site.base_url,
        tmp_path / "archive",
        *QUICK,
        "--url",
        "https://medlineplus.gov/asthma.html",
    )
    assert result.returncode == 0, result
    assert [r.status for r in quick_site.requests_for("/asthma.html")] == [503, 503, 200]
    assert list(last_run(tmp_path / "archive")["outcome"]) == ["new"]


def test_429_waits_for_retry_after(quick_site: SiteServer, tmp_path: Path) -> None:
    quick_site.script("/asthma.html", [(429, {"Retry-After": "2"}, b"slow down")])
    result = crawl(
        quick_site.base_url,
        tmp_path / "archive",
        *QUICK,
        "--url",
        "https://medlineplus.gov/asthma.html",
    )
    assert result.returncode == 0, result
    first, second = quick_site.requests_for("/asthma.html")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.9
    assert list(last_run(tmp_path / "archive")["outcome"]) == ["new"]


def test_retries_are_bounded(quick_site: SiteServer, tmp_path: Path) -> None:
    quick_site.script("/asthma.html", [(500, {}, b"down")] * 10)
    result = crawl(
        quick_site.base_url,
        tmp_path / "archive",
        *QUICK,
        "-s",
        "RETRY_TIMES=2",
        "--url",
        "https://medlineplus.gov/asthma.html",
        "--url",
        "https://medlineplus.gov/allergy.html",
    )
    assert [r.status for r in quick_site.requests_for("/asthma.html")] == [500, 500, 500]
    seen = last_run(tmp_path / "archive").set_index("url")
    assert seen.loc["https://medlineplus.gov/asthma.html", "outcome"] == "error"
    assert seen.loc["https://medlineplus.gov/asthma.html", "http_status"] == 500
    assert seen.loc["https://medlineplus.gov/allergy.html", "outcome"] == "new"
    assert result.returncode == 1, result  # one of two pages failed: over the 5% threshold
