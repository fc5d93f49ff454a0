"""Hostile pages through a real crawl of the fixture site: a page whose canonical link
names another topic is filed under the topic fetched (the other's history untouched),
and a page nested past the parser's limit is an `error` observation naming the cause.

Two crawls share one module-scoped set-up: the first stores three topics as served, the
second re-crawls them after asthma.html starts declaring bronchitis.html as its URL and
tinnitus.html is wrapped in 10,000 nested elements.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from crawler.parsing.health_topic import MAX_NESTING
from pipelines.notebook import open_archive
from tests.crawl_runner import PERMISSIVE_ROBOTS, QUICK, CrawlResult, crawl, last_run
from tests.page_edits import with_text
from tests.site_server import SiteServer

ORIGIN = "https://medlineplus.gov"
TOPICS = ("asthma", "bronchitis", "tinnitus")


@dataclass(frozen=True)
class Crawls:
    archive: Path
    second: CrawlResult
    stats: dict[str, int]
    bronchitis_before: pd.DataFrame


def _declaring_bronchitis(html: str) -> str:
    html = with_text(
        html,
        f'<link rel="canonical" href="{ORIGIN}/asthma.html" />',
        f'<link rel="canonical" href="{ORIGIN}/bronchitis.html" />',
    )
    return with_text(
        html,
        f'<meta property="og:url" content="{ORIGIN}/asthma.html" />',
        f'<meta property="og:url" content="{ORIGIN}/bronchitis.html" />',
    )


def _nested(html: str, depth: int) -> str:
    return html.replace("<body>", "<body>" + "<div>" * depth, 1)


@pytest.fixture(scope="module")
def crawls(tmp_path_factory: pytest.TempPathFactory) -> Crawls:
    tmp = tmp_path_factory.mktemp("hostile")
    archive = tmp / "archive"
    urls = [arg for slug in TOPICS for arg in ("--url", f"{ORIGIN}/{slug}.html")]
    with SiteServer() as site:
        site.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
        first = crawl(site.base_url, archive, *QUICK, *urls)
        assert first.returncode == 0, first
        before = open_archive(archive).history("bronchitis")
        asthma = site.file_bytes("/asthma.html").decode("utf-8")
        site.replace_file("/asthma.html", _declaring_bronchitis(asthma))
        tinnitus = site.file_bytes("/tinnitus.html").decode("utf-8")
        assert "<body>" in tinnitus
        site.replace_file("/tinnitus.html", _nested(tinnitus, 10_000))
        stats_file = tmp / "stats.json"
        second = crawl(site.base_url, archive, *QUICK, *urls, "--stats-json", stats_file)
        stats = json.loads(stats_file.read_text(encoding="utf-8"))
    return Crawls(archive, second, stats, before)


def _seen(crawls: Crawls) -> pd.DataFrame:
    return last_run(crawls.archive).set_index("url")


def test_a_canonical_link_naming_another_topic_leaves_its_history_unchanged(
    crawls: Crawls,
) -> None:
    after = open_archive(crawls.archive).history("bronchitis")
    pd.testing.assert_frame_equal(after, crawls.bronchitis_before)
    seen = _seen(crawls)
    assert seen.loc[f"{ORIGIN}/bronchitis.html", "outcome"] == "unchanged"
    # asthma's page is filed under asthma: the same content as before, so no new version
    assert seen.loc[f"{ORIGIN}/asthma.html", "outcome"] == "unchanged"
    assert len(open_archive(crawls.archive).history("asthma")) == 1


def test_the_declared_url_is_flagged(crawls: Crawls) -> None:
    assert crawls.stats["archive/pages/declared_url_mismatch"] == 1
    assert f"declares itself {ORIGIN}/bronchitis.html" in crawls.second.stderr


def test_deep_nesting_is_an_error_observation_naming_the_cause(crawls: Crawls) -> None:
    tinnitus = _seen(crawls).loc[f"{ORIGIN}/tinnitus.html"]
    assert tinnitus["outcome"] == "error"
    assert tinnitus["error_field"] == "html"
    assert f"nested more than {MAX_NESTING} deep" in tinnitus["error"]
    assert len(open_archive(crawls.archive).history("tinnitus")) == 1
    assert "RecursionError" not in crawls.second.stderr
    assert crawls.second.returncode == 1, crawls.second  # one page of three failed
