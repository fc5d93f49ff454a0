"""verify_archive: manifests, files, digests, row counts, schemas, leftovers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.archive.index import ArchiveIndex
from pipelines.archive.recorder import RunRecorder
from pipelines.core.errors import ArchiveNotFoundError
from pipelines.core.schema import SCHEMA_VERSION, TABLES
from pipelines.core.store import ArchiveStore, file_digest, new_run_id
from pipelines.core.verify import Problem, verify_archive
from tests.archive_factory import at, commit_run, make_page, run_record

DAY1, DAY2 = date(2024, 3, 1), date(2024, 3, 2)


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, str]:
    """An archive with one committed run; returns its path and the run id."""
    run_id = commit_run(tmp_path, at(DAY1), [make_page(), make_page("copd")])
    return tmp_path, run_id


def _kinds(problems: list[Problem]) -> list[str]:
    return [problem.kind for problem in problems]


def _manifest(root: Path, run_id: str) -> Path:
    return root / "_runs" / f"{run_id}.json"


def test_a_sound_archive_has_no_problems(archive: tuple[Path, str]) -> None:
    root, _ = archive
    commit_run(root, at(DAY2), [make_page(text="Edited.")], gone=[("en", "copd")])
    assert verify_archive(root) == []


def test_an_empty_archive_has_no_problems(tmp_path: Path) -> None:
    ArchiveStore.open(tmp_path).close()
    assert verify_archive(tmp_path) == []


def test_a_directory_that_is_no_archive_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveNotFoundError):
        verify_archive(tmp_path)


def test_a_missing_file(archive: tuple[Path, str]) -> None:
    root, run_id = archive
    (root / "links" / f"part-{run_id}.parquet").unlink()
    (problem,) = verify_archive(root)
    assert problem.kind == "missing_file"
    assert problem.path == f"links/part-{run_id}.parquet"
    assert problem.run_id == run_id
    assert "restore the file from a backup" in str(problem)


def test_a_changed_byte(archive: tuple[Path, str]) -> None:
    root, run_id = archive
    path = root / "topics" / f"part-{run_id}.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    (problem,) = verify_archive(root)
    assert problem.kind == "digest_mismatch"
    assert problem.path == f"topics/part-{run_id}.parquet"
    assert f"changed since run {run_id} committed it" in problem.message


def test_an_orphan_part_of_an_uncommitted_run(archive: tuple[Path, str]) -> None:
    root, run_id = archive
    orphan = root / "topics" / "part-20990101T000000Z-dead.parquet"
    orphan.write_bytes((root / "topics" / f"part-{run_id}.parquet").read_bytes())
    (problem,) = verify_archive(root)
    assert problem.kind == "orphan_part"
    assert problem.path == "topics/part-20990101T000000Z-dead.parquet"
    assert problem.run_id == "20990101T000000Z-dead"
    assert "never committed" in problem.message
    assert "medlineplus-archive crawl" in problem.message
    ArchiveStore.open(root).close()  # recovery
    assert verify_archive(root) == []


def test_a_part_of_a_committed_run_missing_from_its_manifest(archive: tuple[Path, str]) -> None:
    root, run_id = archive
    manifest = _manifest(root, run_id)
    data = json.loads(manifest.read_text())
    data["files"] = [entry for entry in data["files"] if entry["table"] != "links"]
    manifest.write_text(json.dumps(data))
    assert sorted(_kinds(verify_archive(root))) == ["missing_table", "orphan_part"]
    ArchiveStore.open(root).close()  # recovery leaves committed runs' files alone
    assert (root / "links" / f"part-{run_id}.parquet").exists()


def test_leftovers_and_stray_files(archive: tuple[Path, str]) -> None:
    root, _ = archive
    (root / "_staging" / "20990101T000000Z-dead").mkdir()
    (root / "_runs" / ".20990101T000000Z-dead.json.tmp").write_text("{")
    (root / "topics" / "notes.txt").write_text("mine")
    problems = verify_archive(root)
    assert sorted((problem.kind, problem.path) for problem in problems) == [
        ("uncommitted_leftover", "_runs/.20990101T000000Z-dead.json.tmp"),
        ("uncommitted_leftover", "_staging/20990101T000000Z-dead"),
        ("unexpected_file", "topics/notes.txt"),
    ]


def test_a_row_count_that_disagrees_with_the_manifest(archive: tuple[Path, str]) -> None:
    root, run_id = archive
    manifest = _manifest(root, run_id)
    data = json.loads(manifest.read_text())
    for entry in data["files"]:
        if entry["table"] == "topics":
            entry["rows"] += 1
    manifest.write_text(json.dumps(data))
    (problem,) = verify_archive(root)
    assert problem.kind == "row_count_mismatch"
    assert "holds 2 rows" in problem.message


def test_a_file_with_other_columns(archive: tuple[Path, str]) -> None:
    root, run_id = archive
    path = root / "links" / f"part-{run_id}.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["badges"]), path)
    manifest = _manifest(root, run_id)
    data = json.loads(manifest.read_text())
    for entry in data["files"]:
        if entry["table"] == "links":
            entry["sha256"], entry["bytes"] = file_digest(path)
    manifest.write_text(json.dumps(data))
    (problem,) = verify_archive(root)
    assert problem.kind == "schema_mismatch"


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        pytest.param("{not json", "bad_manifest", id="not-json"),
        pytest.param(json.dumps({"format": "x"}), "bad_manifest", id="foreign"),
        pytest.param(None, "newer_schema", id="newer"),
    ],
)
def test_unusable_manifests(archive: tuple[Path, str], content: str | None, kind: str) -> None:
    root, run_id = archive
    manifest = _manifest(root, run_id)
    if content is None:
        content = json.dumps(
            {**json.loads(manifest.read_text()), "schema_version": SCHEMA_VERSION + 1}
        )
    manifest.write_text(content)
    problems = verify_archive(root)
    assert problems[0].kind == kind
    assert problems[0].path == f"_runs/{run_id}.json"
    # Its files are no longer covered by a manifest.
    assert _kinds(problems[1:]) == ["orphan_part"] * len(TABLES)


def test_a_foreign_marker_is_one_problem(archive: tuple[Path, str]) -> None:
    root, _ = archive
    (root / "_archive.json").write_text(json.dumps({"format": "another-tool"}))
    assert _kinds(verify_archive(root)) == ["bad_marker"]


def test_a_newer_marker_is_one_problem(archive: tuple[Path, str]) -> None:
    root, _ = archive
    marker = root / "_archive.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "schema_version": 99}))
    (problem,) = verify_archive(root)
    assert problem.kind == "newer_schema"
    assert "upgrade medlineplus-archive" in problem.message


def test_a_version_stored_twice(archive: tuple[Path, str]) -> None:
    root, _ = archive
    with ArchiveStore.open(root) as store:
        writer = RunRecorder.begin(store, new_run_id(at(DAY2)), at(DAY2))
        writer.index = ArchiveIndex.empty()  # a buggy writer that forgot what is stored
        writer.add_version(make_page(), writer.run_id, at(DAY2))
        writer.commit(run_record(writer.run_id, at(DAY2)))
    (problem,) = verify_archive(root)
    assert problem.kind == "duplicate_version"
    assert "(en, asthma, 2024-01-10" in problem.message
