"""The archive's acceptance, end to end: real crawls of the fixture site served on
127.0.0.1, then what readers see.

* A re-crawl of an unchanged site adds no version; three kinds of edit add exactly three.
* pandas, DuckDB and the loader agree on the rows and read dates as dates, lists as lists.
* A crawl killed with SIGKILL never happened: `verify` passes (its leftovers are
  warnings, failures only with --strict), readers see the committed runs only, and the
  next crawl moves the leftovers to _quarantine/ and commits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from crawler.commands.cli import main
from pipelines.core.schema import TOPIC_KEY, VERSION_KEY
from pipelines.notebook import open_archive
from tests.crawl_runner import CLI, PERMISSIVE_ROBOTS, QUICK, copy_archive, crawl, observations
from tests.page_edits import with_date, with_text
from tests.site_server import SITE_LAST_MODIFIED, SITE_ROOT, SiteServer, copy_site

ORIGIN = "https://medlineplus.gov"
EXPECTED = json.loads((SITE_ROOT.parent / "site_expected.json").read_text(encoding="utf-8"))
NOT_TOPICS = set(EXPECTED["topic_looking_non_topics"])

DATE_AND_CONTENT = "/allergy.html"
"""Edit (a): date bumped, a summary sentence changed."""
CONTENT_ONLY = "/dementia.html"
"""Edit (b): a summary sentence changed, same date."""
DATE_ONLY = "/lupus.html"
"""Edit (c): date bumped, content identical."""
EDITED = (DATE_AND_CONTENT, CONTENT_ONLY, DATE_ONLY)
NEW_DATE = date(2025, 10, 1)

VERSION_TABLES = ("topics", "links", "clinical_trials")


def _edit_site(site: Path) -> None:
    """The three edits, made in a copy of the site."""

    def edit(path: str, day: date | None = None, text: tuple[str, str] | None = None) -> None:
        page = site / path.lstrip("/")
        html = page.read_text(encoding="utf-8")
        if day is not None:
            html = with_date(html, day)
        if text is not None:
            html = with_text(html, *text)
        page.write_text(html, encoding="utf-8")

    edit(DATE_AND_CONTENT, NEW_DATE, ("harmless. Your", "usually harmless. Your"))
    edit(CONTENT_ONLY, text=("self-care at home.", "self-care at home or with therapy."))
    edit(DATE_ONLY, NEW_DATE)
    # served as the whole site (no replace_file): the copy gets the permissive robots.txt itself
    (site / "robots.txt").write_bytes(PERMISSIVE_ROBOTS)


@dataclass(frozen=True)
class ThreeRuns:
    path: Path
    run_ids: tuple[str, str, str]
    """A first crawl, a re-crawl of the unchanged site, a crawl after the three edits."""
    topic_paths: frozenset[str]
    """Site paths of the topic pages the crawls found."""
    third_answers: dict[str, int]
    """Status the server answered each topic page with during the third crawl."""


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory, two_full_crawls: Path) -> ThreeRuns:
    """The session's two crawls of the unchanged site, then a third after the edits."""
    root = tmp_path_factory.mktemp("acceptance")
    archive = copy_archive(two_full_crawls, root)
    site = copy_site(root / "site")
    _edit_site(site)
    # served one day later than the first two crawls' site: a new version of the site
    with SiteServer(site, last_modified=SITE_LAST_MODIFIED + timedelta(days=1)) as server:
        result = crawl(server.base_url, archive, *QUICK)
        assert result.returncode == 0, result
        requests = server.requests
    seen = observations(archive)
    urls = set(seen["url"]) - NOT_TOPICS
    topic_paths = frozenset(url.removeprefix(ORIGIN) for url in urls)
    run_ids = tuple(sorted(seen["run_id"].unique()))
    assert len(run_ids) == 3
    answers = {r.path: r.status for r in requests if r.path in topic_paths}
    return ThreeRuns(archive, (run_ids[0], run_ids[1], run_ids[2]), topic_paths, answers)


def _rows(archive: Path, table: str, run_id: str) -> int:
    return pq.read_metadata(archive / table / f"part-{run_id}.parquet").num_rows


def _run_observations(archive: Path, run_id: str) -> pd.DataFrame:
    seen = observations(archive)
    return seen[seen["run_id"] == run_id].set_index("url")


# --- versions -------------------------------------------------------------------------


def test_a_recrawl_of_an_unchanged_site_adds_no_version(three_runs: ThreeRuns) -> None:
    first, second, _ = three_runs.run_ids
    assert _rows(three_runs.path, "topics", first) == 28
    for table in (*VERSION_TABLES, "journal_articles"):
        assert _rows(three_runs.path, table, second) == 0, table
    manifest = json.loads((three_runs.path / "_runs" / f"{second}.json").read_text("utf-8"))
    assert {entry["table"]: entry["rows"] for entry in manifest["files"]}["topics"] == 0
    pages = _run_observations(three_runs.path, second).drop(index=list(NOT_TOPICS))
    assert set(pages["outcome"]) == {"unchanged"}
    assert pages["revalidated"].all()


def test_three_edits_write_exactly_three_versions(three_runs: ThreeRuns) -> None:
    archive, (_, second, third) = three_runs.path, three_runs.run_ids
    topics = pd.read_parquet(archive / "topics")
    added = topics[topics["run_id"] == third].set_index("url")
    assert sorted(added.index) == sorted(ORIGIN + path for path in EDITED)
    assert _rows(archive, "topics", third) == 3
    seen = _run_observations(archive, third)
    outcomes = {url.removeprefix(ORIGIN): seen.loc[url, "outcome"] for url in added.index}
    assert outcomes == {DATE_AND_CONTENT: "new", CONTENT_ONLY: "same_date_edit", DATE_ONLY: "new"}
    others = seen.drop(index=[*added.index, *NOT_TOPICS])
    assert set(others["outcome"]) == {"unchanged"}

    before = topics[topics["run_id"] != third].set_index("url")
    old, new = before.loc[ORIGIN + DATE_AND_CONTENT], added.loc[ORIGIN + DATE_AND_CONTENT]
    assert (new["last_updated"], old["last_updated"]) == (NEW_DATE, date(2023, 5, 2))
    assert new["content_hash"] != old["content_hash"]
    old, new = before.loc[ORIGIN + CONTENT_ONLY], added.loc[ORIGIN + CONTENT_ONLY]
    assert new["last_updated"] == old["last_updated"]
    assert new["content_hash"] != old["content_hash"]
    old, new = before.loc[ORIGIN + DATE_ONLY], added.loc[ORIGIN + DATE_ONLY]
    assert (new["last_updated"], old["last_updated"]) == (NEW_DATE, date(2019, 4, 26))
    assert new["content_hash"] == old["content_hash"]  # a date-only change keeps the hash

    # each new version carries its own links and trials, the same entries as before
    for table in ("links", "clinical_trials"):
        entries = pd.read_parquet(archive / table)
        slugs = [path.strip("/").removesuffix(".html") for path in EDITED]
        mine = entries[(entries["language"] == "en") & entries["slug"].isin(slugs)]
        assert (mine["run_id"] == third).sum() == (mine["run_id"] != third).sum() > 0
        assert _rows(archive, table, third) == (mine["run_id"] == third).sum()
        assert _rows(archive, table, second) == 0


def test_edited_pages_are_downloaded_again_and_the_others_revalidated(
    three_runs: ThreeRuns,
) -> None:
    """The ETag follows the bytes: edited pages answer 200, unedited ones 304, although
    the new site copy has a later Last-Modified (If-None-Match wins)."""
    answers = three_runs.third_answers
    assert set(answers) == set(three_runs.topic_paths)
    assert {path: answers[path] for path in EDITED} == dict.fromkeys(EDITED, 200)
    assert {status for path, status in answers.items() if path not in EDITED} == {304}


# --- readers --------------------------------------------------------------------------


def test_pandas_duckdb_and_the_loader_agree_on_the_rows(three_runs: ThreeRuns) -> None:
    archive = three_runs.path
    loader = open_archive(archive)
    plain = pd.read_parquet(archive / "topics")
    glob = f"read_parquet('{archive / 'topics'}/*.parquet')"
    [(rows, versions, topics)] = duckdb.sql(
        f"select count(*), count(distinct (language, slug, last_updated, content_hash)), "
        f"count(distinct (language, slug)) from {glob}"
    ).fetchall()
    current = loader.topics()
    every_version = pd.concat(
        [loader.history(slug, language) for language, slug in current[list(TOPIC_KEY)].values],
        ignore_index=True,
    )
    # one row per version, everywhere: 28 topics, then 3 new versions
    assert rows == versions == len(plain) == len(every_version) == 31
    assert len(plain.drop_duplicates(list(VERSION_KEY))) == 31
    assert topics == len(current) == plain[list(TOPIC_KEY)].drop_duplicates().shape[0] == 28
    # the loader's current version of each topic is its newest stored one
    newest = plain.sort_values("observed_at").drop_duplicates(list(TOPIC_KEY), keep="last")
    as_keys = {tuple(row) for row in newest[list(VERSION_KEY)].itertuples(index=False)}
    assert {tuple(row) for row in current[list(VERSION_KEY)].itertuples(index=False)} == as_keys


def test_dates_are_dates_and_lists_are_lists_for_every_reader(three_runs: ThreeRuns) -> None:
    archive = three_runs.path
    asthma = ("en", "asthma")
    also_called = ["Bronchial asthma", "Reactive airway disease"]

    loaded = open_archive(archive).topics().set_index(list(TOPIC_KEY)).loc[asthma]
    assert str(open_archive(archive).topics()["last_updated"].dtype) == "date32[day][pyarrow]"
    assert type(loaded["last_updated"]) is date
    assert type(loaded["also_called"]) is list
    assert loaded["also_called"] == also_called

    arrow_backed = pd.read_parquet(archive / "topics", dtype_backend="pyarrow")
    row = arrow_backed.set_index(list(TOPIC_KEY)).loc[asthma]
    assert type(row["last_updated"]) is date
    assert row["also_called"] == also_called
    assert list(arrow_backed.dtypes) == list(open_archive(archive).history("asthma").dtypes)

    # pandas' default backend: dates are still date objects; lists come back as numpy
    # arrays of str (pandas' own choice), equal element by element.
    plain = pd.read_parquet(archive / "topics").set_index(list(TOPIC_KEY)).loc[asthma]
    assert type(plain["last_updated"]) is date
    assert isinstance(plain["also_called"], list | np.ndarray)
    assert list(plain["also_called"]) == also_called

    relation = duckdb.sql(
        f"select last_updated, also_called, related_topics "
        f"from read_parquet('{archive / 'topics'}/*.parquet') "
        "where language = 'en' and slug = 'asthma'"
    )
    assert [str(kind) for kind in relation.types[:2]] == ["DATE", "VARCHAR[]"]
    [(last_updated, called, related)] = relation.fetchall()
    assert type(last_updated) is date
    assert called == also_called
    assert type(related) is list
    assert related[0] == {"title": "Allergy", "url": "https://medlineplus.gov/allergy.html"}


# --- a crawl killed midway ------------------------------------------------------------

KILLED_SLUGS = ["asthma", "allergy", "acne", "anemia", "backpain", "burns", "cataract", "lupus"]


def _verify(
    capsys: pytest.CaptureFixture[str], archive: Path, *options: str
) -> tuple[int, str, str]:
    """`verify` in this process: exit code, stdout, stderr."""
    code = main(["verify", "--archive", str(archive), *options])
    out, err = capsys.readouterr()
    return code, out, err


def _wait_for_requests(
    server: SiteServer, paths: list[str], count: int, process: subprocess.Popen[bytes]
) -> None:
    """Wait until the server answered `count` requests for `paths`, failing fast when the
    crawl ended on its own."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len([path for path in server.paths() if path in paths]) >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"the crawl ended (exit {process.returncode}) before it could be killed")
        time.sleep(0.05)
    pytest.fail("the crawl requested no page in 60s")


def _next_second() -> None:
    """Sleep into the next UTC second. Run ids are "<start second>Z-<random>" and a run
    must sort after the last one: a crawl of two pages can end in the second it began."""
    time.sleep(1.01 - time.time() % 1)


def test_a_crawl_killed_midway_never_happened(
    site_server: SiteServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site_server.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
    archive = tmp_path / "archive"
    urls = [option for slug in KILLED_SLUGS for option in ("--url", f"{ORIGIN}/{slug}.html")]
    committed = crawl(site_server.base_url, archive, *QUICK, *urls[:4])  # asthma, allergy
    assert committed.returncode == 0, committed
    (first_run,) = open_archive(archive).run_ids

    # One page at a time, a second each: the crawl is still fetching when it is killed.
    slow_paths = [f"/{slug}.html" for slug in KILLED_SLUGS]
    site_server.slow_down(1.0, slow_paths)
    site_server.clear_log()
    _next_second()
    command = [*CLI, "crawl", "--base-url", site_server.base_url]
    command += ["--archive", str(archive), "--delay", "0", "--concurrency", "1", *urls]
    with (
        (tmp_path / "killed.log").open("w") as log,
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log) as process,
    ):
        _wait_for_requests(site_server, slow_paths, 2, process)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    (staging,) = (archive / "_staging").iterdir()  # the killed run's work in progress
    killed_run = staging.name
    assert killed_run > first_run
    # Had the kill come between moving its files into place and writing its manifest,
    # a part file would be left in a table directory too:
    orphan = archive / "topics" / f"part-{killed_run}.parquet"
    orphan.write_bytes((archive / "topics" / f"part-{first_run}.parquet").read_bytes())

    # The run never happened: verify passes (leftovers are warnings), readers ignore it.
    code, out, err = _verify(capsys, archive)
    assert (code, out) == (0, "ok: 1 runs, 7 files verified\n"), err
    staging_warning, part_warning = sorted(err.splitlines())
    assert staging_warning.startswith(f"warning: _staging/{killed_run}: staging of a run")
    assert part_warning.startswith(f"warning: topics/part-{killed_run}.parquet: left by run")
    code, out, err = _verify(capsys, archive, "--strict")
    assert code == 1
    assert len(out.splitlines()) == 2
    reader = open_archive(archive)
    assert reader.run_ids == (first_run,)
    assert len(reader.topics()) == 2
    assert set(reader.observations()["run_id"]) == {first_run}

    # The next crawl recovers (moves the leftovers to _quarantine/) and commits.
    site_server.slow_down(0, slow_paths)
    result = crawl(site_server.base_url, archive, *QUICK, *urls)
    assert result.returncode == 0, result
    assert list((archive / "_staging").iterdir()) == []
    assert not orphan.exists()
    (batch,) = (archive / "_quarantine").iterdir()
    assert (batch / "topics" / orphan.name).is_file()
    code, out, err = _verify(capsys, archive, "--strict")
    assert (code, out) == (0, "ok: 2 runs, 14 files verified\n")
    assert err.startswith(f"info: _quarantine/{batch.name}: ")  # one line, not a problem
    assert len(err.splitlines()) == 1
    reader = open_archive(archive)
    assert reader.run_ids[0] == first_run
    assert len(reader.run_ids) == 2
    assert killed_run not in reader.run_ids
    plain = pd.read_parquet(archive / "topics")
    assert set(plain["run_id"]) == set(reader.run_ids)
    assert len(plain) == len(KILLED_SLUGS)  # each page stored once: no copy of the orphan
    assert killed_run not in set(pd.read_parquet(archive / "observations")["run_id"])
