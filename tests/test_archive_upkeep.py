"""Archive upkeep through the command line: `compact`, `vacuum`, `verify --deep`, and the
crawl setting ARCHIVE_COMPACT_EVERY."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from crawler import settings as project_settings
from pipelines.archive.recorder import RunRecorder
from pipelines.archive.verify_log import verify_archive_deeply
from pipelines.core.compaction import policy_every
from pipelines.core.schema import TABLES
from pipelines.core.store import ArchiveStore
from pipelines.core.vacuum import vacuum
from pipelines.core.verify import verify_archive
from pipelines.notebook import open_archive
from pipelines.session import ArchiveSession, compaction_policy
from tests.archive_factory import at, commit_run, make_page, run_record
from tests.test_archive_commands import cli

DAY = date(2024, 3, 1)
RUNS = 4
RETIRED_AFTER_COMPACTING_BY_TWO = len(TABLES) * (RUNS + 2)
"""Each run's own file and each level-1 file (runs 1-2, 3-4) of every table, once merged
into one level-2 file."""


def _commit_day(root: Path, index: int) -> str:
    """One run: asthma gets a new version every day, flu stays the same."""
    day = DAY + timedelta(days=index)
    pages = [
        make_page("asthma", last_updated=day, text=f"Asthma text {index}."),
        make_page("flu", text="Flu text."),
        make_page("gripe", language="es", text="Gripe."),
    ]
    return commit_run(root, at(day, 2), pages)


@pytest.fixture(scope="module")
def four_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of four runs, one file per table per run (never compacted)."""
    root = tmp_path_factory.mktemp("upkeep") / "archive"
    for index in range(RUNS):
        _commit_day(root, index)
    assert not (root / "_compactions").exists()
    return root


@pytest.fixture
def archive(four_runs: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(four_runs, tmp_path / "archive"))


def answers(root: Path) -> dict[str, pd.DataFrame]:
    """What the loaders say about the archive, every table and every run's snapshot."""
    loaded = open_archive(root)
    result = {
        "runs": loaded.runs(),
        "observations": loaded.observations(),
        "topics": loaded.topics(),
        "history": loaded.history("asthma"),
        "links": loaded.links(),
        "clinical_trials": loaded.clinical_trials(),
        "journal_articles": loaded.journal_articles(),
    }
    for run_id in loaded.run_ids:
        result[f"topics {run_id}"] = loaded.topics(as_of=run_id)
    return result


def assert_same_answers(got: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    assert got.keys() == expected.keys()
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, obj=name)


def retired_files(root: Path) -> dict[str, int]:
    """Size of every file under `_retired/`, by path relative to it."""
    base = root / "_retired"
    return {
        path.relative_to(base).as_posix(): path.stat().st_size
        for path in base.rglob("*")
        if path.is_file()
    }


def files_in_use(root: Path) -> int:
    return len(ArchiveStore.open(root, read_only=True).live_files("topics"))


def compact_by_two(root: Path) -> None:
    with ArchiveStore.open(root) as store:
        assert len(store.compact(policy_every(2))) == 3


# --- compact ----------------------------------------------------------------------------


def test_compact_merges_now_and_the_answers_stay_the_same(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = answers(archive)
    result = cli(capsys, "compact", "--archive", archive)
    assert (result.code, result.err) == (0, "")
    assert result.out.startswith("nothing to compact: fewer than 16 consecutive files")
    assert files_in_use(archive) == RUNS
    assert not (archive / "_compactions").exists()

    result = cli(capsys, "compact", "--every", "2", "--archive", archive)
    assert (result.code, result.err) == (0, "")
    lines = result.out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [
        f"compaction {path.stem}" for path in sorted((archive / "_compactions").iterdir())
    ]
    assert "(level 2)" in lines[2]
    assert lines[3] == "compacted: 3 compactions; 1 files per table in use"
    assert files_in_use(archive) == 1
    assert len(retired_files(archive)) == RETIRED_AFTER_COMPACTING_BY_TWO
    assert_same_answers(answers(archive), before)
    assert cli(capsys, "verify", "--archive", archive).code == 0


def test_compact_is_refused_while_the_archive_is_locked(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ArchiveStore.open(archive):
        result = cli(capsys, "compact", "--every", "2", "--archive", archive)
    assert result.code == 3
    assert result.err.startswith("error: ")
    assert "another crawl is writing" in result.err
    assert result.out == ""
    assert not (archive / "_compactions").exists()
    assert files_in_use(archive) == RUNS


# --- vacuum -----------------------------------------------------------------------------


def test_vacuum_frees_the_retired_bytes_and_the_archive_stays_sound(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compact_by_two(archive)
    before = answers(archive)
    retired = retired_files(archive)
    assert len(retired) == RETIRED_AFTER_COMPACTING_BY_TWO
    retired_bytes = sum(retired.values())
    # Retired minutes ago: kept by default, however old the files themselves are.
    month_ago = time.time() - 30 * 86400
    for name in retired:
        os.utime(archive / "_retired" / name, (month_ago, month_ago))
    result = cli(capsys, "vacuum", "--archive", archive)
    assert result.code == 0
    assert result.out.startswith(f"freed 0 retired files, 0 bytes; kept {len(retired)} retired")
    assert retired_files(archive) == retired

    result = cli(capsys, "vacuum", "--retain-days", "0", "--dry-run", "--archive", archive)
    assert result.out.startswith(f"would free {len(retired)} retired files, {retired_bytes} bytes")
    assert retired_files(archive) == retired

    result = cli(capsys, "vacuum", "--retain-days", "0", "--archive", archive)
    assert (result.code, result.err) == (0, "")
    assert result.out.startswith(f"freed {len(retired)} retired files, {retired_bytes} bytes (")
    assert retired_files(archive) == {}
    (record,) = (archive / "_vacuumed").iterdir()
    assert record.suffix == ".json"

    assert cli(capsys, "verify", "--archive", archive).code == 0
    assert cli(capsys, "verify", "--deep", "--archive", archive).code == 0
    assert_same_answers(answers(archive), before)
    result = cli(capsys, "vacuum", "--retain-days", "0", "--archive", archive)
    assert result.out == "freed 0 retired files, 0 bytes\n"


def test_vacuum_goes_by_the_age_of_the_compaction(archive: Path) -> None:
    compact_by_two(archive)
    with ArchiveStore.open(archive) as store:
        first, second, _ = store.compactions
        assert first.committed_at < second.committed_at
        between = first.committed_at + (second.committed_at - first.committed_at) / 2
        result = vacuum(store, retain_days=1, now=between + timedelta(days=1))
    assert {entry.path for entry in result.freed} == {
        entry.path for part in first.tables for entry in part.inputs
    }
    assert len(result.kept) == RETIRED_AFTER_COMPACTING_BY_TWO - len(TABLES) * 2
    assert len(retired_files(archive)) == len(result.kept)
    assert verify_archive(archive) == []


def test_vacuum_refuses_a_damaged_archive_and_deletes_nothing(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compact_by_two(archive)
    retired = retired_files(archive)
    (compacted,) = (archive / "links").glob("compacted-*.parquet")
    data = bytearray(compacted.read_bytes())
    data[len(data) // 2] ^= 1
    compacted.write_bytes(bytes(data))
    result = cli(capsys, "vacuum", "--retain-days", "0", "--archive", archive)
    assert result.code == 3
    (line,) = result.err.splitlines()
    assert line.startswith(f"error: {archive} has 1 problem (links/compacted-")
    assert line.endswith("nothing deleted: run `medlineplus-archive verify`")
    assert retired_files(archive) == retired
    assert not (archive / "_vacuumed").exists()


class SimulatedKill(BaseException):
    """The process killed here: nothing after it runs."""


def test_a_vacuum_killed_midway_is_sound_and_finished_by_the_next(
    archive: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    compact_by_two(archive)
    unlink = Path.unlink
    calls = []

    def unlink_once(path: Path, missing_ok: bool = False) -> None:
        calls.append(path)
        if len(calls) > 1:
            raise SimulatedKill
        unlink(path, missing_ok)

    with ArchiveStore.open(archive) as store:
        monkeypatch.setattr(Path, "unlink", unlink_once)
        with pytest.raises(SimulatedKill):
            vacuum(store, retain_days=0)
        monkeypatch.undo()
    assert len(retired_files(archive)) == RETIRED_AFTER_COMPACTING_BY_TWO - 1
    assert verify_archive(archive) == []
    result = cli(capsys, "vacuum", "--retain-days", "0", "--archive", archive)
    assert result.out.startswith(f"freed {RETIRED_AFTER_COMPACTING_BY_TWO - 1} retired files")
    assert retired_files(archive) == {}
    assert verify_archive_deeply(archive) == []


# --- verify --deep ----------------------------------------------------------------------


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def test_verify_hashes_files_in_use_and_deep_also_the_retired_ones(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compact_by_two(archive)
    retired = archive / "_retired" / "observations"
    (changed,) = sorted(retired.glob("part-*.parquet"))[:1]
    _flip_a_byte(changed)
    result = cli(capsys, "verify", "--archive", archive)
    in_use = 4 * len(TABLES)  # files in use per table, after merging two by two
    assert (result.code, result.out) == (0, f"ok: 4 runs, {in_use} files verified\n")
    result = cli(capsys, "verify", "--deep", "--archive", archive)
    assert result.code == 1
    assert result.out.startswith(f"_retired/observations/{changed.name}: changed since run ")

    (in_use,) = (archive / "topics").glob("compacted-*.parquet")
    _flip_a_byte(in_use)
    result = cli(capsys, "verify", "--archive", archive)
    assert result.code == 1
    assert result.out.startswith(f"topics/{in_use.name}: changed since compaction ")


# --- ARCHIVE_COMPACT_EVERY ----------------------------------------------------------------


def _settings(**values: Any) -> Settings:
    settings = Settings()
    settings.setmodule(project_settings, priority="project")
    settings.setdict(values, priority="cmdline")
    return settings


def test_the_compaction_setting_reaches_the_crawl_archive_session(tmp_path: Path) -> None:
    assert compaction_policy(_settings()).fanout == 16
    assert compaction_policy(_settings(ARCHIVE_COMPACT_EVERY="4")).fanout == 4
    assert not compaction_policy(_settings(ARCHIVE_COMPACT_EVERY="0")).merge_on_commit
    with pytest.raises(ValueError, match="ARCHIVE_COMPACT_EVERY must be 0"):
        compaction_policy(_settings(ARCHIVE_COMPACT_EVERY="1"))
    crawler = get_crawler(
        settings_dict={"ARCHIVE_COMPACT_EVERY": "2", "ARCHIVE_PATH": str(tmp_path / "a")}
    )
    session = ArchiveSession.from_crawler(crawler)
    assert session.store is not None
    assert session.store.policy == policy_every(2)
    session.close()


@pytest.mark.parametrize(("every", "compactions"), [(2, 1), (0, 0)])
def test_commits_merge_every_n_runs_or_never(tmp_path: Path, every: int, compactions: int) -> None:
    policy = dataclasses.replace(policy_every(every), checkpoint_every=2)
    with ArchiveStore.open(tmp_path, policy=policy) as store:
        for index in range(2):
            writer = RunRecorder.begin(store, f"2024030{index + 1}T020000Z-0000", at(DAY, 2))
            writer.commit(run_record(writer.run_id, at(DAY, 2)))
        assert len(store.compaction_ids) == compactions
    assert files_in_use(tmp_path) == (1 if compactions else 2)
    assert len(list((tmp_path / "_catalog").iterdir())) == 1  # checkpoints either way
