"""The archive store: layout, lock, commit, recovery, the index; and the table schemas."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawler.parsing.items import NOT_ARCHIVED, HealthTopicPage
from pipelines.archive.index import ArchiveIndex
from pipelines.archive.keys import LatestVersion, TopicKey, VersionKey, version_key
from pipelines.archive.recorder import RunRecorder
from pipelines.archive.state import ArchiveState, read_validators
from pipelines.archive.versions import Validators
from pipelines.core import store as store_module
from pipelines.core.errors import (
    ArchiveCorruptError,
    ArchiveError,
    ArchiveLockedError,
    ArchiveNotAFolderError,
    ArchiveNotFoundError,
    ArchiveSchemaError,
    InvalidRecordError,
    RunStateError,
)
from pipelines.core.records import OUTCOMES, Observation, RunRecord, outcome_count_field
from pipelines.core.schema import (
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    SCHEMAS,
    TABLES,
    UTC_TIMESTAMP,
    TableName,
    file_schema_version,
    journal_articles_table,
    links_table,
    observations_table,
    runs_table,
    topics_table,
)
from pipelines.core.store import ArchiveStore, new_run_id
from pipelines.core.verify import verify_archive
from pipelines.notebook import open_archive
from tests.archive_factory import (
    at,
    commit_run,
    make_page,
    make_sparse_page,
    observe,
    run_record,
)

DAY1, DAY2, DAY3 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)


# --- run ids --------------------------------------------------------------------------


def test_new_run_id_is_utc_start_time_plus_random_suffix() -> None:
    local = datetime(2026, 11, 24, 2, 24, tzinfo=timezone(timedelta(hours=2)))
    run_id = new_run_id(local)
    assert re.fullmatch(r"20261124T002400Z-[0-9a-f]{4}", run_id)


def test_new_run_ids_sort_by_time_and_differ_at_the_same_second() -> None:
    earlier, later = new_run_id(at(DAY1, 23, 59)), new_run_id(at(DAY2))
    assert earlier < later
    assert len({new_run_id(at(DAY1)) for _ in range(20)}) > 1


def test_new_run_id_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        new_run_id(datetime(2024, 1, 1))


# --- opening --------------------------------------------------------------------------


def test_open_creates_the_layout_and_marker(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    with ArchiveStore.open(root) as store:
        assert store.run_ids == ()
        assert not store.read_only
    marker = json.loads((root / "_archive.json").read_text())
    assert marker["schema_version"] == SCHEMA_VERSION
    assert marker["format"] == "medlineplus-archive"
    for directory in ("_runs", "_staging", *TABLES):
        assert (root / directory).is_dir()


def test_open_without_create_refuses_a_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(ArchiveNotFoundError, match="no archive at"):
        ArchiveStore.open(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()


def test_read_only_open_refuses_a_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(ArchiveNotFoundError, match="crawl --archive"):
        ArchiveStore.open(tmp_path, read_only=True)


def test_open_accepts_the_repository_output_directory(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("data only\n")
    (tmp_path / ".gitignore").write_text("*\n")
    with ArchiveStore.open(tmp_path):
        pass
    assert (tmp_path / "_archive.json").is_file()
    assert (tmp_path / "README.md").read_text() == "data only\n"


def test_open_refuses_a_non_empty_directory_that_is_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "thesis.docx").write_bytes(b"precious")
    with pytest.raises(ArchiveSchemaError, match=r"not empty and is not .* thesis\.docx"):
        ArchiveStore.open(tmp_path)
    assert not (tmp_path / "_archive.json").exists()
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["thesis.docx"]


@pytest.mark.parametrize(
    "read_only", [pytest.param(False, id="write"), pytest.param(True, id="read")]
)
@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("archive", "archive is a file, not a folder", id="a-file"),
        pytest.param("archive/sub", "archive/sub is not a folder: ", id="under-a-file"),
    ],
)
def test_open_refuses_a_path_that_is_no_folder(
    tmp_path: Path, read_only: bool, name: str, message: str
) -> None:
    (tmp_path / "archive").write_text("")
    with pytest.raises(ArchiveNotAFolderError, match=message):
        ArchiveStore.open(tmp_path / name, read_only=read_only)
    assert (tmp_path / "archive").read_text() == ""


@pytest.mark.parametrize(
    "read_only", [pytest.param(False, id="write"), pytest.param(True, id="read")]
)
def test_a_newer_schema_version_is_refused(tmp_path: Path, read_only: bool) -> None:
    with ArchiveStore.open(tmp_path):
        pass
    marker = tmp_path / "_archive.json"
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps({**data, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ArchiveSchemaError) as raised:
        ArchiveStore.open(tmp_path, read_only=read_only)
    message = str(raised.value)
    assert str(tmp_path) in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "upgrade medlineplus-archive" in message


def test_a_manifest_of_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    run_id = commit_run(tmp_path, at(DAY1), [make_page()])
    manifest = tmp_path / "_runs" / f"{run_id}.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ArchiveSchemaError, match=re.escape(str(manifest))):
        ArchiveStore.open(tmp_path)
    with pytest.raises(ArchiveSchemaError, match="upgrade"):
        open_archive(tmp_path)


def test_a_foreign_marker_is_refused(tmp_path: Path) -> None:
    (tmp_path / "_archive.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ArchiveSchemaError, match="not a medlineplus-archive marker"):
        ArchiveStore.open(tmp_path)


# --- the lock -------------------------------------------------------------------------


def test_the_lock_refuses_a_second_writer_in_the_same_process(tmp_path: Path) -> None:
    with ArchiveStore.open(tmp_path), pytest.raises(ArchiveLockedError) as raised:
        ArchiveStore.open(tmp_path)
    assert raised.value.pid == os.getpid()
    assert str(raised.value).startswith(f"another crawl is writing {tmp_path} (pid {os.getpid()})")


def test_the_lock_is_released_on_close(tmp_path: Path) -> None:
    ArchiveStore.open(tmp_path).close()
    with ArchiveStore.open(tmp_path) as store:
        assert not store.read_only


def test_readers_take_no_lock(tmp_path: Path) -> None:
    with ArchiveStore.open(tmp_path):
        reader = ArchiveStore.open(tmp_path, read_only=True)
        assert reader.read_only
        assert open_archive(tmp_path).run_ids == ()


_TRY_TO_OPEN = textwrap.dedent(
    """
    import sys
    from pipelines.core.errors import ArchiveLockedError
    from pipelines.core.store import ArchiveStore
    try:
        ArchiveStore.open(sys.argv[1]).close()
    except ArchiveLockedError as error:
        print(error.pid)
        print(error)
        sys.exit(3)
    """
)


def _open_in_subprocess(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _TRY_TO_OPEN, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parent.parent,
    )


def test_the_lock_refuses_a_writer_in_another_process(tmp_path: Path) -> None:
    with ArchiveStore.open(tmp_path):
        held = _open_in_subprocess(tmp_path)
    assert held.returncode == 3, held.stderr
    pid, message = held.stdout.splitlines()
    assert int(pid) == os.getpid()
    assert message == (
        f"another crawl is writing {tmp_path} (pid {os.getpid()}); "
        "wait for it to finish or pass a different --archive"
    )
    released = _open_in_subprocess(tmp_path)
    assert released.returncode == 0, released.stderr


# --- committing -----------------------------------------------------------------------


def test_commit_writes_one_file_per_table_and_the_manifest_last(tmp_path: Path) -> None:
    run_id = commit_run(tmp_path, at(DAY1), [make_page(), make_sparse_page()])
    manifest = json.loads((tmp_path / "_runs" / f"{run_id}.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["run"]["run_id"] == run_id
    assert manifest["run"]["pages_new"] == 2
    files = {entry["table"]: entry for entry in manifest["files"]}
    assert set(files) == set(TABLES)
    expected_rows = {
        "runs": 1,
        "observations": 2,
        "topics": 2,
        "links": 3,
        "clinical_trials": 1,
        "journal_articles": 2,
        "xml_records": 0,
    }
    for table, entry in files.items():
        path = tmp_path / entry["path"]
        assert entry["path"] == f"{table}/part-{run_id}.parquet"
        assert entry["rows"] == expected_rows[table] == pq.read_metadata(path).num_rows
        assert entry["sha256"] == store_module.file_digest(path)[0]
        schema = pq.read_schema(path)
        assert schema.equals(SCHEMAS[table])
        assert file_schema_version(schema.metadata) == SCHEMA_VERSION
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    assert list((tmp_path / "_staging").iterdir()) == []


def test_a_run_with_nothing_in_a_table_still_writes_its_typed_file(tmp_path: Path) -> None:
    run_id = commit_run(tmp_path, at(DAY1), gone=[("en", "asthma")])
    path = tmp_path / "topics" / f"part-{run_id}.parquet"
    assert pq.read_metadata(path).num_rows == 0
    assert pq.read_schema(path).equals(SCHEMAS["topics"])


def test_a_version_is_written_once_ever(tmp_path: Path) -> None:
    page = make_page()
    with ArchiveStore.open(tmp_path) as store:
        writer = RunRecorder.begin(store, new_run_id(at(DAY1)), at(DAY1))
        assert writer.add_version(page, writer.run_id, at(DAY1, 1))
        assert not writer.add_version(page, writer.run_id, at(DAY1, 2))
        writer.commit(run_record(writer.run_id, at(DAY1)))
        writer = RunRecorder.begin(store, new_run_id(at(DAY2)), at(DAY2))
        assert not writer.add_version(page, writer.run_id, at(DAY2, 1))
        assert writer.add_version(make_page(text="Edited."), writer.run_id, at(DAY2, 1))
        writer.commit(run_record(writer.run_id, at(DAY2)))
    assert len(open_archive(tmp_path).history("asthma")) == 2


def test_journal_articles_are_kept_the_first_time_they_are_seen(tmp_path: Path) -> None:
    first = commit_run(tmp_path, at(DAY1), [make_page(pmids=["1", "2", None])])
    second = commit_run(tmp_path, at(DAY2), [make_page(pmids=["3", "2", "1"])])
    articles = open_archive(tmp_path).journal_articles()
    seen = dict(zip(articles["pmid"], articles["first_seen_run"], strict=True))
    assert seen == {"1": first, "2": first, "3": second}


def test_begin_run_refuses_a_run_id_that_does_not_sort_after_the_last(tmp_path: Path) -> None:
    commit_run(tmp_path, at(DAY2), [make_page()])
    with (
        ArchiveStore.open(tmp_path) as store,
        pytest.raises(RunStateError, match="does not sort after"),
    ):
        RunRecorder.begin(store, new_run_id(at(DAY1)), at(DAY1))


@pytest.mark.parametrize(
    "run_id",
    [
        pytest.param("../escape", id="path"),
        pytest.param("", id="empty"),
        pytest.param("a b", id="space"),
    ],
)
def test_begin_run_refuses_a_bad_run_id(tmp_path: Path, run_id: str) -> None:
    with ArchiveStore.open(tmp_path) as store, pytest.raises(RunStateError, match="bad run id"):
        RunRecorder.begin(store, run_id, at(DAY1))


def test_one_run_at_a_time_and_none_read_only(tmp_path: Path) -> None:
    with ArchiveStore.open(tmp_path) as store:
        RunRecorder.begin(store, new_run_id(at(DAY1)), at(DAY1))
        with pytest.raises(RunStateError, match="still open"):
            RunRecorder.begin(store, new_run_id(at(DAY2)), at(DAY2))
    with pytest.raises(RunStateError, match="read-only"):
        ArchiveStore.open(tmp_path, read_only=True).begin_run(new_run_id(at(DAY1)), at(DAY1))


def test_a_writer_refuses_rows_of_another_run_and_rows_after_commit(tmp_path: Path) -> None:
    page = make_page()
    with ArchiveStore.open(tmp_path) as store:
        writer = RunRecorder.begin(store, new_run_id(at(DAY1)), at(DAY1))
        with pytest.raises(RunStateError, match="was given to run"):
            writer.add_version(page, "another-run", at(DAY1))
        writer.commit(run_record(writer.run_id, at(DAY1)))
        with pytest.raises(RunStateError, match="committed"):
            writer.add_observation(observe(page, writer.run_id, at(DAY1), "new"))
        with pytest.raises(RunStateError, match="cannot be aborted"):
            writer.abort()


def test_a_bad_item_fails_where_it_is_added_naming_its_url(tmp_path: Path) -> None:
    page = make_page()
    broken = dataclasses.replace(page, title=None)
    with ArchiveStore.open(tmp_path) as store:
        writer = RunRecorder.begin(store, new_run_id(at(DAY1)), at(DAY1))
        with pytest.raises(
            InvalidRecordError, match=r"topics\.title \(https://medlineplus.gov/asthma\.html\)"
        ):
            writer.add_version(broken, writer.run_id, at(DAY1))
        no_date = dataclasses.replace(page, last_updated=None)
        with pytest.raises(InvalidRecordError, match="last_updated"):
            writer.add_version(no_date, writer.run_id, at(DAY1))
        with pytest.raises(InvalidRecordError, match=r"observed_at.*naive"):
            writer.add_version(page, writer.run_id, datetime(2024, 1, 1))
        with pytest.raises(InvalidRecordError, match=r"observations\.outcome"):
            writer.add_observation(observe(page, writer.run_id, at(DAY1), "moved"))  # type: ignore[arg-type]
        # Nothing half-added: the good page still goes in, once.
        assert writer.add_version(page, writer.run_id, at(DAY1))
        writer.commit(run_record(writer.run_id, at(DAY1)))
    assert len(open_archive(tmp_path).topics()) == 1


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        pytest.param("http_status", "200", r"observations\.http_status.*expected int", id="str"),
        pytest.param("revalidated", 1, r"observations\.revalidated.*expected bool", id="int"),
        pytest.param("last_updated", at(DAY1), r"last_updated.*expected a date", id="datetime"),
        pytest.param("http_status", 2**63, r"http_status.*64 bits", id="overflow"),
    ],
)
def test_an_observation_of_the_wrong_type_fails_where_it_is_added(
    tmp_path: Path, field: str, value: Any, match: str
) -> None:
    with ArchiveStore.open(tmp_path) as store:
        writer = RunRecorder.begin(store, new_run_id(at(DAY1)), at(DAY1))
        bad = observe(make_page(), writer.run_id, at(DAY1), "new", **{field: value})
        with pytest.raises(InvalidRecordError, match=match) as raised:
            writer.add_observation(bad)
        assert raised.value.url == bad.url
        writer.add_observation(observe(make_page(), writer.run_id, at(DAY1), "new"))
        assert writer.outcome_counts()["new"] == 1
        writer.commit(run_record(writer.run_id, at(DAY1), writer))
    assert len(open_archive(tmp_path).observations()) == 1


def test_abort_commits_nothing(tmp_path: Path) -> None:
    with ArchiveStore.open(tmp_path) as store:
        writer = RunRecorder.begin(store, new_run_id(at(DAY1)), at(DAY1))
        writer.add_version(make_page(), writer.run_id, at(DAY1))
        writer.abort()
        writer.abort()
        assert store.run_ids == ()
    assert list((tmp_path / "_staging").iterdir()) == []
    assert list((tmp_path / "topics").iterdir()) == []


def _fail_inside_a_run(store: ArchiveStore) -> None:
    recorder = RunRecorder.begin(store, new_run_id(at(DAY1)), at(DAY1))
    with recorder.writer:  # the core's run writer aborts a run left open
        recorder.add_version(make_page(), recorder.run_id, at(DAY1))
        raise KeyError("boom")


def test_an_exception_inside_the_run_aborts_it(tmp_path: Path) -> None:
    with ArchiveStore.open(tmp_path) as store:
        with pytest.raises(KeyError):
            _fail_inside_a_run(store)
        assert list((tmp_path / "_staging").iterdir()) == []
        RunRecorder.begin(store, new_run_id(at(DAY2)), at(DAY2)).abort()


def test_mismatched_counts_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with ArchiveStore.open(tmp_path) as store:
        writer = RunRecorder.begin(store, new_run_id(at(DAY1)), at(DAY1))
        writer.add_observation(observe(make_page(), writer.run_id, at(DAY1), "new"))
        with caplog.at_level(logging.WARNING, logger="pipelines.archive.recorder"):
            writer.commit(run_record(writer.run_id, at(DAY1)))
    assert "counts of new differ" in caplog.text


# --- recovery -------------------------------------------------------------------------


def _leave_uncommitted_run(root: Path, committed_run: str) -> str:
    """What a crawl killed mid-commit leaves: staging files and parts, no manifest."""
    run_id = new_run_id(at(DAY3))
    staging = root / "_staging" / run_id
    staging.mkdir(parents=True)
    (staging / "links.parquet").write_bytes(b"half a file")
    for table in ("topics", "observations"):
        source = root / table / f"part-{committed_run}.parquet"
        (root / table / f"part-{run_id}.parquet").write_bytes(source.read_bytes())
    return run_id


def test_recovery_quarantines_an_uncommitted_run_that_readers_never_saw(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    committed = commit_run(tmp_path, at(DAY1), [make_page()])
    leftover = _leave_uncommitted_run(tmp_path, committed)
    crashed_part = (tmp_path / "topics" / f"part-{leftover}.parquet").read_bytes()

    archive = open_archive(tmp_path)
    assert archive.run_ids == (committed,)
    assert len(archive.topics()) == 1
    assert len(archive.observations()) == 1
    assert {problem.kind for problem in verify_archive(tmp_path)} == {
        "orphan_part",
        "uncommitted_leftover",
    }

    with caplog.at_level(logging.WARNING, logger="pipelines.core.recovery"):
        ArchiveStore.open(tmp_path).close()
    assert f"part-{leftover}.parquet" in caplog.text
    assert f"_staging/{leftover}" in caplog.text
    assert not list(tmp_path.glob(f"*/part-{leftover}.parquet"))
    assert list((tmp_path / "_staging").iterdir()) == []
    # Moved aside, not deleted: one quarantine folder keeps the paths they had.
    (batch,) = (tmp_path / "_quarantine").iterdir()
    assert (batch / "topics" / f"part-{leftover}.parquet").read_bytes() == crashed_part
    assert (batch / "observations" / f"part-{leftover}.parquet").is_file()
    assert (batch / "_staging" / leftover / "links.parquet").read_bytes() == b"half a file"
    assert verify_archive(tmp_path) == []
    assert (tmp_path / "topics" / f"part-{committed}.parquet").is_file()
    assert len(open_archive(tmp_path).topics()) == 1


def test_a_crash_before_the_manifest_leaves_a_run_that_never_happened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = commit_run(tmp_path, at(DAY1), [make_page()])

    def disk_full(path: Path, data: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "write_json_atomically", disk_full)
    with pytest.raises(OSError, match="No space"):
        commit_run(tmp_path, at(DAY2), [make_page(text="Edited.", last_updated=DAY2)])
    monkeypatch.undo()

    crashed = [path.name for path in (tmp_path / "topics").iterdir()]
    assert len(crashed) == 2  # the committed part and the crashed one
    archive = open_archive(tmp_path)
    assert archive.run_ids == (committed,)
    assert archive.topics()["last_updated"].tolist() == [date(2024, 1, 10)]

    with ArchiveStore.open(tmp_path) as store:
        assert store.run_ids == (committed,)
    assert [path.name for path in (tmp_path / "topics").iterdir()] == [f"part-{committed}.parquet"]
    assert verify_archive(tmp_path) == []


def test_a_store_whose_commit_failed_part_way_takes_no_run_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later run committed in the same store would make the failed run's files, left in
    the table folders, look like a lost manifest (and `repair` would revive them)."""
    committed = commit_run(tmp_path, at(DAY1), [make_page()])

    def disk_full(path: Path, data: object) -> None:
        raise OSError(28, "No space left on device")

    with ArchiveStore.open(tmp_path) as store:
        failed = new_run_id(at(DAY2), after=committed)
        writer = RunRecorder.begin(store, failed, at(DAY2))
        writer.add_version(make_page(text="Edited.", last_updated=DAY2), failed, at(DAY2))
        monkeypatch.setattr(store_module, "write_json_atomically", disk_full)
        with pytest.raises(OSError, match="No space"):
            writer.commit(run_record(failed, at(DAY2), writer))
        monkeypatch.undo()
        writer.abort()
        with pytest.raises(RunStateError, match=f"commit of run {failed} failed part-way"):
            RunRecorder.begin(store, new_run_id(at(DAY3), after=failed), at(DAY3))
    assert (tmp_path / "topics" / f"part-{failed}.parquet").is_file()  # left for recovery

    later = commit_run(tmp_path, at(DAY3), [make_page(text="Later.", last_updated=DAY3)])

    assert open_archive(tmp_path).run_ids == (committed, later)
    assert not (tmp_path / "topics" / f"part-{failed}.parquet").exists()
    assert verify_archive(tmp_path) == []


def test_a_committed_file_gone_missing_is_a_damaged_archive_not_a_full_disk(
    tmp_path: Path,
) -> None:
    committed = commit_run(tmp_path, at(DAY1), [make_page()])
    (tmp_path / "current").unlink()  # the view must be rebuilt at the next opening
    part = tmp_path / "links" / f"part-{committed}.parquet"
    part.unlink()

    with pytest.raises(ArchiveCorruptError, match="is missing, though a manifest commits it"):
        ArchiveStore.open(tmp_path)


# --- the index ------------------------------------------------------------------------


def test_the_index_of_an_empty_archive_is_empty(tmp_path: Path) -> None:
    with ArchiveStore.open(tmp_path) as store:
        assert ArchiveState.of(store).index() == ArchiveIndex.empty()


def test_the_index_knows_versions_latest_articles_and_live_topics(tmp_path: Path) -> None:
    asthma_v1 = make_page()
    asthma_v2 = make_page(text="Asthma, revised.", last_updated=DAY2)
    copd = make_page("copd", pmids=["9"])
    flu_es = make_page("flu", language="es", pmids=[])
    first = commit_run(tmp_path, at(DAY1), [asthma_v1, copd, flu_es])
    second = commit_run(tmp_path, at(DAY2), [asthma_v2], gone=[("en", "copd")])

    with ArchiveStore.open(tmp_path) as store:
        index = ArchiveState.of(store).index()
    assert index.run_ids == (first, second)
    assert index.versions == {version_key(page) for page in (asthma_v1, asthma_v2, copd, flu_es)}
    assert index.latest == {
        TopicKey("en", "asthma"): LatestVersion(DAY2, asthma_v2.content_hash),
        TopicKey("en", "copd"): LatestVersion(copd.last_updated, copd.content_hash),
        TopicKey("es", "flu"): LatestVersion(flu_es.last_updated, flu_es.content_hash),
    }
    assert index.journal_articles == {
        ("en", "asthma", "38000001"),
        ("en", "asthma", "38000002"),
        ("en", "copd", "9"),
    }
    assert index.live_topics == {TopicKey("en", "asthma"), TopicKey("es", "flu")}
    assert ("en", "asthma") in index.live_topics  # plain tuples work for lookups
    assert VersionKey("en", "copd", copd.last_updated, copd.content_hash) in index.versions


def test_a_topic_seen_again_after_it_was_gone_is_live_and_errors_change_nothing(
    tmp_path: Path,
) -> None:
    page = make_page()
    commit_run(tmp_path, at(DAY1), [page])
    commit_run(tmp_path, at(DAY2), gone=[("en", "asthma")])
    with ArchiveStore.open(tmp_path) as store:
        assert ArchiveState.of(store).index().live_topics == frozenset()
    commit_run(tmp_path, at(DAY3), [page])
    commit_run(tmp_path, at(DAY3, 12), errors=[("en", "asthma")])
    with ArchiveStore.open(tmp_path) as store:
        assert ArchiveState.of(store).index().live_topics == {TopicKey("en", "asthma")}


def test_a_reverted_page_makes_its_older_version_latest(tmp_path: Path) -> None:
    original = make_page()
    edited = make_page(text="A same-date edit.")
    commit_run(tmp_path, at(DAY1), [original])
    commit_run(tmp_path, at(DAY2), [edited])
    with ArchiveStore.open(tmp_path) as store:
        assert (
            ArchiveState.of(store).index().latest[TopicKey("en", "asthma")].content_hash
            == edited.content_hash
        )
    commit_run(tmp_path, at(DAY3), [original])
    with ArchiveStore.open(tmp_path) as store:
        assert (
            ArchiveState.of(store).index().latest[TopicKey("en", "asthma")].content_hash
            == original.content_hash
        )


def _write_observations(
    root: Path,
    when: datetime,
    observations: list[Observation],
    versions: Sequence[HealthTopicPage] = (),
) -> None:
    with ArchiveStore.open(root) as store:
        writer = RunRecorder.begin(store, observations[0].run_id, when)
        for page in versions:
            writer.add_version(page, writer.run_id, when)
        for observation in observations:
            writer.add_observation(observation)
        writer.commit(run_record(writer.run_id, when, writer))


def test_validators_come_from_the_latest_successful_fetch_that_had_them(tmp_path: Path) -> None:
    kept, dropped, gone = make_page("kept"), make_page("dropped"), make_page("gone")
    missing = make_page("missing")
    first, second = new_run_id(at(DAY1)), new_run_id(at(DAY2))
    _write_observations(
        tmp_path,
        at(DAY1),
        [
            observe(kept, first, at(DAY1, 1), "new", etag='"k1"', last_modified="Mon"),
            observe(dropped, first, at(DAY1, 2), "new", etag='"d1"'),
            observe(gone, first, at(DAY1, 3), "new", etag='"g1"'),
            # Its version was never stored: it is fetched in full, not revalidated.
            observe(missing, first, at(DAY1, 4), "new", etag='"m1"'),
        ],
        versions=[kept, dropped, gone],
    )
    _write_observations(
        tmp_path,
        at(DAY2),
        [
            # A 304 without headers keeps the validators it was asked with.
            observe(
                kept,
                second,
                at(DAY2, 1),
                "unchanged",
                http_status=304,
                revalidated=True,
                etag=None,
                last_modified=None,
            ),
            # A full fetch without any drops them: they may describe older content.
            observe(dropped, second, at(DAY2, 2), "new", etag=None, last_modified=None),
            observe(TopicKey("en", "gone"), second, at(DAY2, 3), "gone", http_status=404),
        ],
    )
    expected = {kept.url: Validators(etag='"k1"', last_modified="Mon")}
    with ArchiveStore.open(tmp_path) as store:
        assert ArchiveState.of(store).index().validators == expected
    assert read_validators(tmp_path) == expected


def test_read_validators_of_a_missing_archive_raises_an_archive_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveNotFoundError):
        read_validators(tmp_path / "missing")
    with pytest.raises(ArchiveError):
        read_validators(None)


def test_the_index_ignores_uncommitted_runs(tmp_path: Path) -> None:
    committed = commit_run(tmp_path, at(DAY1), [make_page()])
    _leave_uncommitted_run(tmp_path, committed)
    reader = ArchiveStore.open(tmp_path, read_only=True)
    assert ArchiveState.of(reader).index().run_ids == (committed,)
    assert len(ArchiveState.of(reader).index().versions) == 1


# --- table schemas --------------------------------------------------------------------


def test_every_run_record_count_matches_an_outcome() -> None:
    fields = {field.name for field in dataclasses.fields(RunRecord)}
    assert {outcome_count_field(outcome) for outcome in OUTCOMES} <= fields


def test_topic_columns_are_every_page_field_but_the_child_tables() -> None:
    flattened = {"primary_institute": ("name", "url"), "image": ("url", "alt")}
    expected = {"run_id", "observed_at", "warc_file", "warc_offset"}
    for field in dataclasses.fields(HealthTopicPage):
        if field.name in ("links", "clinical_trials", "journal_articles", *NOT_ARCHIVED):
            continue
        parts = flattened.get(field.name)
        expected |= {f"{field.name}_{part}" for part in parts} if parts else {field.name}
    assert set(SCHEMAS["topics"].names) == expected
    assert SCHEMAS["topics"].names[:4] == ["language", "slug", "last_updated", "content_hash"]


def test_column_types_follow_the_annotations() -> None:
    topics = SCHEMAS["topics"]
    assert topics.field("last_updated").type == pa.date32()
    assert not topics.field("last_updated").nullable
    assert topics.field("date_created").type == pa.date32()
    assert topics.field("date_created").nullable
    assert topics.field("fetched_at").type == UTC_TIMESTAMP == pa.timestamp("us", tz="UTC")
    required_string = pa.field("element", pa.string(), nullable=False)
    assert topics.field("also_called").type == pa.list_(required_string)
    related = pa.struct(
        [
            pa.field("title", pa.string(), nullable=False),
            pa.field("url", pa.string(), nullable=False),
        ]
    )
    assert topics.field("related_topics").type == pa.list_(
        pa.field("element", related, nullable=False)
    )
    assert topics.field("primary_institute_name").nullable
    assert topics.field("http_status").type == pa.int64()
    assert SCHEMAS["clinical_trials"].field("nih").type == pa.bool_()
    assert SCHEMAS["links"].field("section_id").type == pa.int64()
    for schema in SCHEMAS.values():
        assert schema.metadata[SCHEMA_VERSION_KEY] == str(SCHEMA_VERSION).encode()


def _all_none_observation(run_id: str) -> Observation:
    return Observation(
        run_id=run_id,
        observed_at=at(DAY1),
        url="https://medlineplus.gov/x.html",
        source_url="https://medlineplus.gov/x.html",
        language="en",
        slug="x",
        outcome="error",
    )


@pytest.mark.parametrize(
    ("table", "build"),
    [
        pytest.param("observations", observations_table, id="observations"),
        pytest.param("runs", runs_table, id="runs"),
        pytest.param("topics", topics_table, id="topics"),
        pytest.param("links", links_table, id="links"),
        pytest.param("journal_articles", journal_articles_table, id="journal_articles"),
    ],
)
def test_an_empty_batch_has_the_schema(
    table: TableName, build: Callable[[list[Any]], pa.Table]
) -> None:
    assert build([]).schema.equals(SCHEMAS[table], check_metadata=True)


def test_an_all_none_batch_has_the_schema() -> None:
    rows = observations_table([_all_none_observation("r1"), _all_none_observation("r1")])
    assert rows.schema.equals(SCHEMAS["observations"], check_metadata=True)
    for name in ("http_status", "last_updated", "content_hash", "error", "etag", "last_modified"):
        assert rows.column(name).null_count == 2


def test_timestamps_are_stored_as_utc() -> None:
    local = datetime(2024, 3, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    observation = dataclasses.replace(_all_none_observation("r1"), observed_at=local)
    stored = observations_table([observation]).column("observed_at")[0].as_py()
    assert stored == datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    assert stored.utcoffset() == timedelta(0)
