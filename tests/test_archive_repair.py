"""A lost run manifest: writers refuse before moving anything, `verify` names the run,
`repair_archive` rebuilds the manifest from the run's files or refuses damaged ones.

Archives are hand-made with `commit_run` (no crawl); the command-line acceptance test,
on crawled runs, is in test_archive_commands.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawler.parsing.items import HealthTopicPage, RawResponse
from pipelines.archive.state import ArchiveState
from pipelines.core.catalog import read_checkpoint
from pipelines.core.compaction import CompactionPolicy
from pipelines.core.errors import (
    ArchiveCorruptError,
    ArchiveLockedError,
    LostManifestError,
    RepairRefusedError,
)
from pipelines.core.lock import write_locked
from pipelines.core.records import RunManifest
from pipelines.core.repair import repair_archive
from pipelines.core.store import ArchiveStore
from pipelines.core.vacuum import vacuum
from pipelines.core.verify import verify_archive
from pipelines.notebook import open_archive
from tests.archive_factory import at, commit_run, make_page

DAYS = [date(2024, 3, day) for day in (1, 2, 3)]
FIXTURE_V1 = Path(__file__).parent / "fixtures" / "archive_v1"


def _fingerprint(root: Path) -> dict[str, str]:
    return {
        entry.relative_to(root).as_posix(): (
            hashlib.sha256(entry.read_bytes()).hexdigest() if entry.is_file() else "directory"
        )
        for entry in sorted(root.rglob("*"))
    }


def _page_with_raw(text: str, day: date) -> HealthTopicPage:
    page = make_page(text=text, last_updated=day)
    page.raw = RawResponse(
        url=page.url,
        status=200,
        reason="OK",
        headers=[("Content-Type", "text/html; charset=utf-8")],
        body=f"<html><body>{text}</body></html>".encode(),
        request_path="/asthma.html",
        request_headers=[("User-Agent", "test")],
        fetched_at=at(day),
    )
    return page


def _editions(root: Path, days: list[date]) -> list[str]:
    """One committed run per day of `days`, each storing a new version of asthma with its
    raw page; their run ids."""
    return [
        commit_run(root, at(day), [_page_with_raw(f"Asthma, edition {index}.", day)])
        for index, day in enumerate(days)
    ]


@pytest.fixture
def three_runs(tmp_path: Path) -> tuple[Path, list[str]]:
    """Three committed runs, each storing a new version of asthma with its raw page."""
    root = tmp_path / "archive"
    return root, _editions(root, DAYS)


@pytest.fixture
def lost_middle(three_runs: tuple[Path, list[str]]) -> tuple[Path, str]:
    """The three runs with the middle run's manifest deleted; the archive and that run."""
    root, run_ids = three_runs
    (root / "_runs" / f"{run_ids[1]}.json").unlink()
    return root, run_ids[1]


def test_a_rebuilt_manifest_equals_the_lost_one_but_for_its_commit_time(
    three_runs: tuple[Path, list[str]],
) -> None:
    root, run_ids = three_runs
    middle = root / "_runs" / f"{run_ids[1]}.json"
    original = json.loads(middle.read_text())
    assert "warc" in original  # the run's WARC file is checked and listed too
    topics = open_archive(root).topics()
    middle.unlink()

    (rebuilt,) = repair_archive(root)

    assert rebuilt.run_id == run_ids[1]
    restored = json.loads(middle.read_text())
    assert restored.pop("committed_at") != original.pop("committed_at")
    assert restored == original
    assert verify_archive(root) == []
    assert open_archive(root).topics().equals(topics)
    assert repair_archive(root) == []  # nothing left to repair


def test_a_checkpoint_of_the_three_runs_is_ignored_until_the_repair_and_used_after(
    three_runs: tuple[Path, list[str]],
) -> None:
    root, run_ids = three_runs
    with ArchiveStore.open(root) as store:
        ArchiveState.of(store)  # the checkpoint then saves the sightings log too
        checkpoint = store.write_checkpoint()
    assert checkpoint is not None
    topics = open_archive(root).topics()
    (root / "_runs" / f"{run_ids[1]}.json").unlink()
    without = [run_ids[0], run_ids[2]]
    assert read_checkpoint(root, without, []) is None
    assert ArchiveStore.open(root, read_only=True).read_table("topics").num_rows == 2

    repair_archive(root)

    used = read_checkpoint(root, run_ids, [])
    assert used is not None
    assert used.directory == checkpoint
    assert ArchiveStore.open(root, read_only=True).read_table("topics").num_rows == 3
    assert open_archive(root).topics().equals(topics)
    assert verify_archive(root) == []


def _refusal_to_writers(root: Path, lost: str) -> str:
    """The error a writer opening `root` gets: one line naming run `lost` and `repair`."""
    with pytest.raises(LostManifestError) as raised:
        ArchiveStore.open(root)
    message = str(raised.value)
    assert "\n" not in message
    assert f"run {lost}" in message
    assert "medlineplus-archive repair" in message
    return message


def test_writers_refuse_a_lost_manifest_and_move_nothing(lost_middle: tuple[Path, str]) -> None:
    root, lost = lost_middle
    (root / "_staging" / "29990101T000000Z-dead").mkdir()  # a crash, also left alone
    before = _fingerprint(root)

    message = _refusal_to_writers(root, lost)
    assert f"topics/part-{lost}.parquet" in message
    assert f"warc/{lost}.warc.gz" in message
    assert _fingerprint(root) == before
    (problem,) = [problem for problem in verify_archive(root) if problem.kind == "lost_manifest"]
    assert problem.run_id == lost
    assert f"warc/{lost}.warc.gz" in problem.message
    assert "orphan_part" not in {problem.kind for problem in verify_archive(root)}


def test_a_run_newer_than_the_last_committed_one_is_a_crash_not_a_lost_manifest(
    three_runs: tuple[Path, list[str]],
) -> None:
    root, run_ids = three_runs
    (root / "_runs" / f"{run_ids[2]}.json").unlink()
    ArchiveStore.open(root).close()
    (batch,) = (root / "_quarantine").iterdir()
    assert (batch / "topics" / f"part-{run_ids[2]}.parquet").is_file()
    assert (batch / "warc" / f"{run_ids[2]}.warc.gz").is_file()
    assert verify_archive(root) == []


def _rewrite(path: Path, change: str) -> None:
    rows = pq.read_table(path)
    if change == "run_id":
        rows = rows.set_column(
            rows.schema.get_field_index("run_id"),
            rows.schema.field("run_id"),
            pa.array(["20000101T000000Z-0000"] * rows.num_rows, rows.schema.field("run_id").type),
        )
    elif change == "column":
        rows = rows.drop_columns([rows.schema.names[-1]])
    path.unlink()
    pq.write_table(rows, path)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        pytest.param("truncate_links", "not readable Parquet", id="truncated-part"),
        pytest.param("missing_links", "not one per table", id="missing-part"),
        pytest.param("only_warc", "no Parquet part of the run is left", id="only-its-warc-left"),
        pytest.param("foreign_rows", "rows of other runs", id="rows-of-another-run"),
        pytest.param("dropped_column", "columns are not those", id="other-columns"),
        pytest.param("warc_bytes", "not a readable WARC file", id="damaged-warc"),
    ],
)
def test_repair_refuses_damaged_files_and_changes_nothing(
    three_runs: tuple[Path, list[str]], damage: str, reason: str
) -> None:
    root, run_ids = three_runs
    run_id = run_ids[1]
    (root / "_runs" / f"{run_id}.json").unlink()
    links = root / "links" / f"part-{run_id}.parquet"
    if damage == "truncate_links":
        links.write_bytes(links.read_bytes()[:100])
    elif damage == "missing_links":
        links.unlink()
    elif damage == "only_warc":
        for part in root.glob(f"*/part-{run_id}.parquet"):
            part.unlink()
    elif damage == "foreign_rows":
        _rewrite(root / "topics" / f"part-{run_id}.parquet", "run_id")
    elif damage == "dropped_column":
        _rewrite(root / "topics" / f"part-{run_id}.parquet", "column")
    else:
        warc = root / "warc" / f"{run_id}.warc.gz"
        data = bytearray(warc.read_bytes())
        data[len(data) // 2] ^= 0xFF
        warc.write_bytes(bytes(data))
    before = _fingerprint(root)

    with pytest.raises(RepairRefusedError, match=f"cannot repair run {run_id}") as raised:
        repair_archive(root)

    assert reason in str(raised.value)
    assert str(raised.value).isprintable()  # one line, whatever the damaged bytes hold
    assert "nothing was changed" in str(raised.value)
    assert _fingerprint(root) == before


def test_repair_rebuilds_a_run_of_schema_version_1(tmp_path: Path) -> None:
    root = Path(shutil.copytree(FIXTURE_V1, tmp_path / "archive"))
    first, _ = sorted(path.stem for path in (root / "_runs").glob("*.json"))
    lost = root / "_runs" / f"{first}.json"
    original = RunManifest.from_json(json.loads(lost.read_text()))
    assert original.schema_version == 1
    lost.unlink()

    (rebuilt,) = repair_archive(root)

    assert rebuilt == dataclasses.replace(original, committed_at=rebuilt.committed_at)
    assert verify_archive(root) == []


def test_repair_refuses_while_a_crawl_holds_the_lock(lost_middle: tuple[Path, str]) -> None:
    root, lost = lost_middle
    with write_locked(root), pytest.raises(ArchiveLockedError):
        repair_archive(root)
    assert not (root / "_runs" / f"{lost}.json").exists()


def test_every_kind_of_crash_leftover_is_quarantined_and_logged(
    three_runs: tuple[Path, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    root, run_ids = three_runs
    crashed = "29990101T000000Z-dead"
    leftovers = {
        f"_staging/{crashed}/topics.parquet": b"half a file",
        f"_runs/.{crashed}.json.tmp": b"{",
        f"topics/part-{crashed}.parquet": (root / "topics" / f"part-{run_ids[0]}.parquet"),
        f"warc/{crashed}.warc.gz": (root / "warc" / f"{run_ids[0]}.warc.gz"),
        f"links/compacted-{crashed}-L01.parquet": (root / "links" / f"part-{run_ids[0]}.parquet"),
    }
    contents = {}
    for relative, content in leftovers.items():
        data = content.read_bytes() if isinstance(content, Path) else content
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
        contents[relative] = data

    with caplog.at_level(logging.WARNING, logger="pipelines.core.recovery"):
        ArchiveStore.open(root).close()

    (batch,) = (root / "_quarantine").iterdir()
    for relative, data in contents.items():
        assert not (root / relative).exists()
        assert (batch / relative).read_bytes() == data
    moved = [record.getMessage() for record in caplog.records if "moved" in record.getMessage()]
    assert len(moved) == len(contents)
    assert verify_archive(root) == []


# --- a lost manifest of a run a compaction merged -------------------------------------

FOUR_DAYS = [date(2024, 3, day) for day in (1, 2, 3, 4)]


@pytest.fixture
def compacted(tmp_path: Path) -> tuple[Path, list[str]]:
    """Four committed runs merged by one compaction: their parts are in `_retired/`."""
    root = tmp_path / "archive"
    run_ids = _editions(root, FOUR_DAYS)
    with ArchiveStore.open(root, policy=CompactionPolicy(fanout=4, automatic=False)) as store:
        (compaction,) = store.compact()
    assert {entry.path for part in compaction.tables for entry in part.inputs} >= {
        f"topics/part-{run_id}.parquet" for run_id in run_ids
    }
    assert (root / "_retired" / "topics" / f"part-{run_ids[1]}.parquet").is_file()
    return root, run_ids


@pytest.mark.parametrize("which", [1, 3])  # a middle run, and the newest run
def test_a_lost_manifest_of_a_compacted_run_is_named_and_repaired(
    compacted: tuple[Path, list[str]], which: int
) -> None:
    root, run_ids = compacted
    lost = run_ids[which]
    manifest = root / "_runs" / f"{lost}.json"
    original = json.loads(manifest.read_text())
    topics = open_archive(root).topics()
    manifest.unlink()
    before = _fingerprint(root)

    message = _refusal_to_writers(root, lost)
    assert f"_retired/topics/part-{lost}.parquet" in message
    with pytest.raises(ArchiveCorruptError) as unreadable:
        open_archive(root)
    message = str(unreadable.value)
    assert "\n" not in message
    assert f"run {lost}" in message
    assert "medlineplus-archive repair" in message
    problems = verify_archive(root)
    assert [(problem.kind, problem.run_id) for problem in problems] == [("lost_manifest", lost)]
    assert f"_retired/topics/part-{lost}.parquet" in problems[0].message
    assert _fingerprint(root) == before

    (rebuilt,) = repair_archive(root)

    assert rebuilt.run_id == lost
    restored = json.loads(manifest.read_text())
    assert restored.pop("committed_at") != original.pop("committed_at")
    assert restored == original  # the original paths, as the compaction names them
    assert verify_archive(root) == []
    assert open_archive(root).topics().equals(topics)
    assert repair_archive(root) == []
    ArchiveStore.open(root).close()  # writers open it again


def test_a_lost_manifest_of_a_compacted_run_whose_parts_were_vacuumed_is_refused(
    compacted: tuple[Path, list[str]],
) -> None:
    root, run_ids = compacted
    with ArchiveStore.open(root) as store:
        vacuum(store, retain_days=0, now=at(date(2999, 1, 1)))
    assert not (root / "_retired" / "topics" / f"part-{run_ids[1]}.parquet").exists()
    (root / "_runs" / f"{run_ids[1]}.json").unlink()
    before = _fingerprint(root)

    with pytest.raises(RepairRefusedError) as raised:
        repair_archive(root)

    message = str(raised.value)
    assert "\n" not in message
    assert f"run {run_ids[1]}" in message
    assert "vacuum" in message
    assert "backup" in message
    assert _fingerprint(root) == before
    with pytest.raises(LostManifestError):
        ArchiveStore.open(root)
    assert [problem.kind for problem in verify_archive(root)] == ["lost_manifest"]
