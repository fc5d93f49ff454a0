"""An archive written by an older schema version keeps working after an upgrade.

tests/fixtures/archive_v1 was written by the code of schema version 1 (see its README):
no xml_records table, runs files without the notes and hidden_changes columns, a
checkpoint. The current code must read it unchanged, verify it, append full and
incremental crawls to it, and compact its old files with new ones.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.core.compaction import CompactionPolicy
from pipelines.core.schema import (
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    SCHEMAS,
    TABLES,
    promote,
    version_schema,
    version_tables,
)
from pipelines.core.store import ArchiveStore
from pipelines.core.verify import verify_archive
from pipelines.notebook import open_archive
from tests.crawl_runner import QUICK, crawl, run_main
from tests.site_server import SITE_ROOT

FIXTURE = Path(__file__).parent / "fixtures" / "archive_v1"
FIXTURE_DUMP = SITE_ROOT / "mplus_topics_fixture.xml"
SITE_URL = SITE_ROOT.resolve().as_uri()


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("README.md"))
    return target


def _old_manifests() -> list[dict[str, object]]:
    return [json.loads(path.read_text()) for path in sorted((FIXTURE / "_runs").glob("*.json"))]


def _file_rows(archive: Path, table: str) -> int:
    """Rows of `table` in the archive's files, straight from the Parquet footers."""
    return sum(pq.read_metadata(path).num_rows for path in (archive / table).glob("*.parquet"))


def _digests(archive: Path) -> dict[str, str]:
    return {
        str(path.relative_to(archive)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in archive.rglob("*")
        if path.is_file() and path.name not in {".lock", "README.md"}
    }


def _verify_strict(archive: Path) -> None:
    """`verify --strict` exits 0 (the command, as the console script runs it)."""
    result = run_main("verify", "--archive", archive, "--strict")
    assert result.returncode == 0, result


def test_the_fixture_is_of_schema_version_1() -> None:
    """What the other tests rely on: the fixture really is an old-format archive."""
    assert json.loads((FIXTURE / "_archive.json").read_text())["schema_version"] == 1
    manifests = _old_manifests()
    assert len(manifests) == 2
    for manifest in manifests:
        assert manifest["schema_version"] == 1
        tables = {entry["table"] for entry in manifest["files"]}  # type: ignore[attr-defined]
        assert "xml_records" not in tables
    runs_columns = pq.read_schema(next((FIXTURE / "runs").glob("*.parquet"))).names
    assert "notes" not in runs_columns
    assert "hidden_changes" not in runs_columns
    assert list((FIXTURE / "_catalog").iterdir())


def test_readers_and_verify_read_an_old_archive_unchanged(tmp_path: Path) -> None:
    archive = _copy(FIXTURE, tmp_path / "archive")
    before = _digests(archive)

    opened = open_archive(archive)
    runs = opened.runs()
    assert list(runs["run_id"]) == [manifest["run_id"] for manifest in _old_manifests()]
    assert runs["notes"].isna().all()
    assert runs["hidden_changes"].isna().all()
    topics = opened.topics()
    stored = pq.read_table(archive / "topics", columns=["language", "slug"])
    assert len(topics) == len(set(zip(*stored.to_pydict().values(), strict=True)))
    first_run = runs["run_id"].iloc[0]
    assert len(opened.topics(as_of=first_run)) == len(topics)
    # Each topic has one version (the second run found nothing new): all links are latest.
    assert len(opened.links()) == _file_rows(archive, "links")
    slug, language = topics["slug"].iloc[0], topics["language"].iloc[0]
    versions = opened.history(slug, language)
    assert len(versions) == 1
    assert opened.changes(first_run, runs["run_id"].iloc[1]).empty
    assert opened.store.read_table("xml_records").num_rows == 0

    commands = {
        "verify": ("verify", "--archive", archive, "--strict"),
        "runs": ("runs", "--archive", archive, "--format", "json"),
        "history": (
            "history",
            slug,
            "--language",
            language,
            "--archive",
            archive,
            "--format",
            "json",
        ),
        "changes": ("changes", "--archive", archive, "--format", "json"),
        "snapshot": (
            "snapshot",
            "--archive",
            archive,
            "--format",
            "jsonl",
            "--out",
            tmp_path / "s.jsonl",
        ),
    }
    results = {name: run_main(*command) for name, command in commands.items()}
    for result in results.values():
        assert result.returncode == 0, result
    for run in json.loads(results["runs"].stdout):
        assert run["notes"] == []
        assert run["hidden_changes"] == []
    history = [row["content_hash"] for row in json.loads(results["history"].stdout)]
    assert history == list(versions["content_hash"])
    assert json.loads(results["changes"].stdout)["to"]["run_id"] == runs["run_id"].iloc[-1]
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == len(topics)
    assert _digests(archive) == before  # reading and verifying changed nothing


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The old archive after a full crawl given the XML dump and an incremental crawl, by
    the current code: two runs of version 1, then two of the current version."""
    archive = _copy(FIXTURE, tmp_path_factory.mktemp("upgrade") / "archive")
    old_files = _digests(archive)
    full = crawl(SITE_URL, archive, *QUICK, "--from-xml", FIXTURE_DUMP)
    assert full.returncode == 0, full
    assert verify_archive(archive) == []  # no problem at all: `verify --strict` passes
    incremental = crawl(
        SITE_URL, archive, *QUICK, "--plan", "incremental", "--from-xml", FIXTURE_DUMP
    )
    assert incremental.returncode == 0, incremental
    # The old files are used as they are: nothing of them is rewritten.
    now = _digests(archive)
    assert {name: now.get(name) for name in old_files} == old_files
    return archive


def test_new_crawls_append_to_an_old_archive(extended: Path) -> None:
    assert verify_archive(extended) == []
    runs = open_archive(extended).runs()
    old_ids = [manifest["run_id"] for manifest in _old_manifests()]
    assert len(runs) == 4
    assert list(runs["run_id"][:2]) == old_ids
    assert runs["notes"][:2].isna().all()
    assert runs["notes"][2:].notna().all()
    assert runs["hidden_changes"][2:].notna().all()
    xml_runs = set(open_archive(extended).store.read_table("xml_records")["run_id"].to_pylist())
    assert xml_runs  # the full crawl given the dump stored its records
    assert xml_runs.isdisjoint(old_ids)


@pytest.mark.parametrize("fanout", [2, 4])
def test_compaction_merges_old_and_new_files(extended: Path, tmp_path: Path, fanout: int) -> None:
    """fanout 2: the old runs' files merge on their own (their xml_records file is made
    from no input), then with the new runs' merged files; fanout 4: all four runs'
    files, of both versions, in one merge."""
    archive = _copy(extended, tmp_path / "archive")
    counts = {table: _file_rows(archive, table) for table in TABLES}
    before = open_archive(archive)
    topics, runs = before.topics(), before.runs()

    with ArchiveStore.open(archive, policy=CompactionPolicy(fanout=fanout)) as store:
        merged = store.compact()
    assert merged
    assert all(list((archive / table).glob("part-*")) == [] for table in TABLES)

    assert verify_archive(archive) == []
    assert {table: _file_rows(archive, table) for table in TABLES} == counts
    after = open_archive(archive)
    assert after.topics().equals(topics)
    compacted_runs = after.runs()
    assert list(compacted_runs["run_id"]) == list(runs["run_id"])
    assert compacted_runs["notes"][:2].isna().all()
    assert list(compacted_runs["notes"][2:].map(list)) == list(runs["notes"][2:].map(list))

    if fanout == 2:  # the merge made from no xml_records input is read back by a crawl
        again = crawl(
            SITE_URL, archive, *QUICK, "--plan", "incremental", "--from-xml", FIXTURE_DUMP
        )
        assert again.returncode == 0, again
        _verify_strict(archive)


def test_a_current_run_still_needs_every_table(extended: Path, tmp_path: Path) -> None:
    """Only runs of a version that had no such table may lack its file."""
    archive = _copy(extended, tmp_path / "archive")
    new_manifest = sorted((archive / "_runs").glob("*.json"))[-1]
    data = json.loads(new_manifest.read_text())
    data["files"] = [entry for entry in data["files"] if entry["table"] != "xml_records"]
    new_manifest.write_text(json.dumps(data))
    kinds = {(problem.kind, problem.run_id) for problem in verify_archive(archive)}
    assert ("missing_table", data["run_id"]) in kinds
    assert all(run_id == data["run_id"] for kind, run_id in kinds if kind == "missing_table")


def test_an_old_file_is_promoted_to_the_current_schema() -> None:
    old_runs = pq.read_table(next((FIXTURE / "runs").glob("*.parquet")))
    promoted = promote("runs", old_runs)
    assert promoted.schema.equals(SCHEMAS["runs"], check_metadata=True)
    assert promoted.column("notes").null_count == old_runs.num_rows
    assert promoted.select(old_runs.column_names).equals(old_runs.cast(version_schema("runs", 1)))
    assert "xml_records" not in version_tables(1)
    with pytest.raises(KeyError):
        version_schema("xml_records", 1)


def test_a_file_whose_columns_are_not_those_of_its_version_is_refused() -> None:
    """A version-1 file with the current columns, or a file of a newer version."""
    current = SCHEMAS["runs"].empty_table()
    claims_v1 = current.replace_schema_metadata(version_schema("runs", 1).metadata)
    with pytest.raises(ValueError, match="columns"):
        promote("runs", claims_v1)
    newer = {**(current.schema.metadata or {}), SCHEMA_VERSION_KEY: b"%d" % (SCHEMA_VERSION + 1)}
    with pytest.raises(ValueError, match="schema version"):
        promote("runs", current.replace_schema_metadata(newer))


def test_an_old_run_listing_a_newer_table_is_a_bad_manifest(tmp_path: Path) -> None:
    archive = _copy(FIXTURE, tmp_path / "archive")
    manifest = sorted((archive / "_runs").glob("*.json"))[0]
    data = json.loads(manifest.read_text())
    runs_entry = next(entry for entry in data["files"] if entry["table"] == "runs")
    data["files"].append({**runs_entry, "table": "xml_records"})
    manifest.write_text(json.dumps(data))
    assert "bad_manifest" in {problem.kind for problem in verify_archive(archive)}
