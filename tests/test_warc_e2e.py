"""Raw capture end to end: a crawl keeps each new version's page in its run's WARC file;
the pages can be re-extracted, replayed, and are verified."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from crawler.parsing import health_topic, parse_health_topic
from pipelines.archive.reextract import commit_reextracted, reextract
from pipelines.core.verify import verify_archive
from pipelines.core.warc import iter_responses, read_response
from tests.crawl_runner import copy_archive, run_cli, run_main

VERSION_KEY = ["language", "slug", "last_updated", "content_hash"]


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory, two_full_crawls: Path) -> Path:
    """The fixture site crawled twice (the second time unchanged) into one archive."""
    return copy_archive(two_full_crawls, tmp_path_factory.mktemp("warc"))


def _manifests(archive: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted((archive / "_runs").glob("*.json"))]


def test_each_new_version_has_its_raw_page_and_unchanged_runs_add_none(crawled: Path) -> None:
    first, second = _manifests(crawled)
    assert "warc" not in second  # an unchanged re-crawl writes no WARC records
    warc = first["warc"]
    assert isinstance(warc, dict)
    topics = pd.read_parquet(crawled / "topics")
    assert len(topics) == 28  # every topic the index lists and robots.txt allows
    assert warc["rows"] == 2 * len(topics)  # a response and a request record per version
    assert sorted(p.name for p in (crawled / "warc").iterdir()) == [Path(str(warc["path"])).name]
    for row in topics.itertuples():
        response = read_response(crawled / row.warc_file, int(row.warc_offset))
        assert response.target_uri == row.url
        assert response.status == 200
        page = parse_health_topic(response.body, response.fetched_from)
        assert page.content_hash == row.content_hash


def test_warcio_check_passes_on_every_warc_file(crawled: Path) -> None:
    for path in (crawled / "warc").iterdir():
        checked = subprocess.run(
            [sys.executable, "-m", "warcio.cli", "check", "-v", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.count("digest pass") >= 28


def test_reextract_round_trip_finds_no_difference(crawled: Path) -> None:
    results = reextract(crawled)
    assert len(results) == 28
    assert [r for r in results if r.changes or r.error] == []
    printed = run_main("reextract", "--archive", crawled, "--all")
    assert printed.returncode == 0, printed
    assert "28 versions re-extracted, 0 would change" in printed.stdout


def test_a_changed_parser_rule_reports_exactly_the_affected_versions(
    crawled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = pd.read_parquet(crawled / "links")
    with_video = {
        tuple(row)
        for row in links[links["badges"].map(lambda badges: "video" in list(badges))][
            VERSION_KEY
        ].itertuples(index=False)
    }
    assert with_video  # the fixture site has video badges
    monkeypatch.setitem(health_topic.BADGES, "video", "film")

    results = reextract(crawled)

    affected = {r.key for r in results if r.changes}
    assert affected == with_video
    for result in results:
        if result.changes:
            assert {change.field for change in result.changes} == {"links", "content_hash"}


def test_committing_corrections_writes_a_new_run_and_never_touches_old_files(
    crawled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "archive"
    subprocess.run(["cp", "-a", str(crawled), str(archive)], check=True)
    before = {p: p.read_bytes() for p in archive.rglob("*.parquet")}
    monkeypatch.setitem(health_topic.BADGES, "video", "film")
    results = reextract(archive)
    changed = [r for r in results if r.changes]

    run_id, skipped = commit_reextracted(archive, results, now=datetime.now(UTC))

    assert run_id is not None
    assert skipped == []
    assert all(p.read_bytes() == data for p, data in before.items() if p.exists())
    new = pd.read_parquet(archive / "topics" / f"part-{run_id}.parquet")
    assert len(new) == len(changed)
    assert verify_archive(archive) == []


def test_replaying_a_warc_rebuilds_the_same_versions(crawled: Path, tmp_path: Path) -> None:
    (warc,) = (crawled / "warc").iterdir()
    replay = tmp_path / "replay"
    result = run_cli("crawl", "--from-warc", warc, "--archive", replay)
    assert result.returncode == 0, result
    original = pd.read_parquet(crawled / "topics")[VERSION_KEY]
    replayed = pd.read_parquet(replay / "topics")[VERSION_KEY]
    assert sorted(map(tuple, original.to_numpy())) == sorted(map(tuple, replayed.to_numpy()))
    assert len(list(iter_responses(next((replay / "warc").iterdir())))) == len(replayed)


def test_verify_finds_a_damaged_warc_record(crawled: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    subprocess.run(["cp", "-a", str(crawled), str(archive)], check=True)
    (warc,) = (archive / "warc").iterdir()
    data = bytearray(warc.read_bytes())
    data[len(data) // 2] ^= 0xFF
    warc.write_bytes(bytes(data))
    kinds = {problem.kind for problem in verify_archive(archive)}
    assert "digest_mismatch" in kinds
    result = run_main("verify", "--archive", archive)
    assert result.returncode == 1, result
