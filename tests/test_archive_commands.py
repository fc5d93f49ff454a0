"""The archive commands (`runs`, `snapshot`, `history`, `verify`) on an archive made by
real crawls of the fixture site, and their answers to bad input.

The archive is made once per module (see `crawled`: a copy of the session's full crawl,
then one more crawl); every test only reads it, and an autouse fixture checks it is byte
for byte unchanged after each test. Tests that need a damaged or different archive work
on a copy under their own tmp_path. The commands run in-process through
`crawler.commands.cli.main` (fast), a few also as a real subprocess.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from crawler.commands.cli import main
from crawler.commands.common import ARCHIVE_ENVIRONMENT, archive_exit_code
from pipelines.core.errors import (
    ArchiveCorruptError,
    ArchiveError,
    ArchiveLockedError,
    ArchiveNotAFolderError,
    ArchiveNotFoundError,
    ArchiveSchemaError,
    ArchiveUnwritableError,
    UnknownRunError,
)
from pipelines.core.schema import SCHEMAS, TABLES, VERSION_KEY
from pipelines.core.store import ArchiveStore
from pipelines.notebook import open_archive
from tests.archive_factory import at, commit_run, make_page
from tests.crawl_runner import PERMISSIVE_ROBOTS, QUICK, crawl, run_cli
from tests.page_edits import with_date, with_text
from tests.site_server import SITE_ROOT, SiteServer

ALLERGY_URL = "https://medlineplus.gov/allergy.html"
ALLERGY_BEFORE = date(2023, 5, 2)
ALLERGY_AFTER = date(2025, 10, 1)


@dataclass(frozen=True)
class Crawled:
    path: Path
    run_ids: tuple[str, str]
    """The full crawl, then a crawl of allergy.html alone after its date and text changed."""
    fingerprint: dict[str, str]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def fingerprint(root: Path) -> dict[str, str]:
    """Every file and directory under `root` with a digest of its bytes."""
    return {
        entry.relative_to(root).as_posix(): (
            hashlib.sha256(entry.read_bytes()).hexdigest() if entry.is_file() else "directory"
        )
        for entry in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory, one_full_crawl: Path) -> Crawled:
    archive = Path(shutil.copytree(one_full_crawl, tmp_path_factory.mktemp("commands") / "archive"))
    with SiteServer() as server:
        server.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
        page = (SITE_ROOT / "allergy.html").read_text(encoding="utf-8")
        page = with_text(with_date(page, ALLERGY_AFTER), "harmless. Your", "pollen. Your")
        server.replace_file("/allergy.html", page)
        second = crawl(server.base_url, archive, *QUICK, "--url", ALLERGY_URL)
        assert second.returncode == 0, second
    run_ids = tuple(sorted(path.stem for path in (archive / "_runs").glob("*.json")))
    assert len(run_ids) == 2
    return Crawled(archive, (run_ids[0], run_ids[1]), fingerprint(archive))


@pytest.fixture(autouse=True)
def archive_untouched(request: pytest.FixtureRequest) -> Iterator[None]:
    """No command changes the shared archive, whatever it is asked."""
    yield
    if "crawled" in request.fixturenames:
        shared: Crawled = request.getfixturevalue("crawled")
        assert fingerprint(shared.path) == shared.fingerprint


def cli(capsys: pytest.CaptureFixture[str], *arguments: str | Path) -> Result:
    """`medlineplus-archive ARGUMENTS...` in this process: exit code, stdout, stderr."""
    try:
        code = main([str(argument) for argument in arguments])
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return Result(code, out, err)


def copy_archive(crawled: Crawled, destination: Path) -> Path:
    return Path(shutil.copytree(crawled.path, destination))


# --- runs -----------------------------------------------------------------------------


def test_runs_prints_a_table_of_committed_runs_newest_last(
    crawled: Crawled, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli(capsys, "runs", "--archive", crawled.path)
    assert (result.code, result.err) == (0, "")
    header, rule, *lines = result.out.splitlines()
    assert header.split() == [
        "run_id",
        "started",
        "took",
        "status",
        "fetched",
        "new",
        "unchanged",
        "same_date_edit",
        "error",
        "gone",
        "versions",
        "notes",
    ]
    assert set(rule) <= {"-", " "}
    assert [line.split()[0] for line in lines] == list(crawled.run_ids)
    full, allergy = (line.split() for line in lines)
    # run_id, date, time, took, status, fetched, new, unchanged, edits, errors, gone, versions
    assert full[4:] == ["success", "29", "28", "0", "0", "1", "0", "28"]
    assert allergy[4:] == ["success", "1", "1", "0", "0", "0", "0", "1"]


@pytest.mark.parametrize("output", ["csv", "json"])
def test_runs_csv_and_json_carry_the_run_records(
    crawled: Crawled, capsys: pytest.CaptureFixture[str], output: str
) -> None:
    result = cli(capsys, "runs", "--archive", crawled.path, "--format", output)
    assert result.code == 0, result.err
    if output == "csv":
        rows = list(csv.DictReader(io.StringIO(result.out)))
        languages = [json.loads(row["languages"]) for row in rows]
    else:
        rows = json.loads(result.out)
        languages = [row["languages"] for row in rows]
    loaded = open_archive(crawled.path).runs()
    assert [row["run_id"] for row in rows] == list(loaded["run_id"])
    assert [int(row["pages_new"]) for row in rows] == list(loaded["pages_new"])
    assert [int(row["versions_written"]) for row in rows] == [28, 1]
    assert languages == [["en", "es"], ["en", "es"]]
    assert [row["status"] for row in rows] == ["success", "success"]
    assert all(date.fromisoformat(row["started_at"][:10]) for row in rows)


def test_runs_of_an_archive_without_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ArchiveStore.open(tmp_path / "empty").close()
    table = cli(capsys, "runs", "--archive", tmp_path / "empty")
    assert (table.code, table.out) == (0, f"no committed runs in {tmp_path / 'empty'}\n")
    as_json = cli(capsys, "runs", "--archive", tmp_path / "empty", "--format", "json")
    assert json.loads(as_json.out) == []
    as_csv = cli(capsys, "runs", "--archive", tmp_path / "empty", "--format", "csv")
    assert as_csv.out.splitlines()[0].startswith("run_id,started_at,")
    assert len(as_csv.out.splitlines()) == 1


def test_the_archive_defaults_to_the_environment_then_output(
    crawled: Crawled,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ARCHIVE_ENVIRONMENT, str(crawled.path))
    assert crawled.run_ids[1] in cli(capsys, "runs").out
    monkeypatch.delenv(ARCHIVE_ENVIRONMENT)
    result = cli(capsys, "runs")
    assert result.code == 2
    assert result.err == "error: no archive at output (no such directory)\n"


# --- history --------------------------------------------------------------------------


def test_history_lists_every_version_oldest_first(
    crawled: Crawled, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli(capsys, "history", "allergy", "--archive", crawled.path)
    assert (result.code, result.err) == (0, "")
    header, _, old, new = result.out.splitlines()
    assert header.split() == [
        "last_updated",
        "content_hash",
        "first_seen_run",
        "outcome",
        "last_seen_run",
        "current",
        "title",
    ]
    first, second = crawled.run_ids
    assert old.split() == [str(ALLERGY_BEFORE), old.split()[1], first, "new", first, "Allergy"]
    assert new.split() == [
        str(ALLERGY_AFTER),
        new.split()[1],
        second,
        "new",
        second,
        "yes",
        "Allergy",
    ]
    assert len(old.split()[1]) == 12


def test_history_as_json_has_full_hashes_and_the_current_version(
    crawled: Crawled, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli(capsys, "history", "allergy", "--archive", crawled.path, "--format", "json")
    rows = json.loads(result.out)
    loaded = open_archive(crawled.path).history("allergy")
    assert [row["content_hash"] for row in rows] == list(loaded["content_hash"])
    assert [row["last_updated"] for row in rows] == [str(ALLERGY_BEFORE), str(ALLERGY_AFTER)]
    assert [row["current"] for row in rows] == [False, True]
    assert {row["url"] for row in rows} == {ALLERGY_URL}


def test_history_of_a_spanish_topic(crawled: Crawled, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["history", "asthma", "--language", "es", "--format", "csv"]
    result = cli(capsys, *arguments, "--archive", crawled.path)
    (row,) = csv.DictReader(io.StringIO(result.out))
    assert (row["language"], row["title"], row["current"]) == ("es", "Asma", "true")
    # the second crawl fetched only allergy.html: Spanish asthma was last seen by the first
    assert row["last_seen_run"] == row["first_seen_run"] == crawled.run_ids[0]


# --- snapshot -------------------------------------------------------------------------


def test_a_parquet_snapshot_is_a_directory_of_the_selected_versions(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "now"
    result = cli(capsys, "snapshot", "--archive", crawled.path, "--out", out)
    assert result.code == 0, result.err
    assert result.out.startswith("wrote 28 topics, ")
    assert sorted(path.name for path in out.iterdir()) == [
        "clinical_trials.parquet",
        "journal_articles.parquet",
        "links.parquet",
        "snapshot.json",
        "topics.parquet",
    ]
    archive = open_archive(crawled.path)
    for table, loaded in (
        ("topics", archive.topics()),
        ("links", archive.links()),
        ("clinical_trials", archive.clinical_trials()),
    ):
        written = pq.read_table(out / f"{table}.parquet")
        assert written.schema.equals(SCHEMAS[table], check_metadata=True)
        assert written.num_rows == len(loaded)
    topics = pd.read_parquet(out / "topics.parquet")
    allergy = topics[topics["slug"] == "allergy"].set_index("language")
    assert allergy.loc["en", "last_updated"] == ALLERGY_AFTER
    info = json.loads((out / "snapshot.json").read_text(encoding="utf-8"))
    assert (info["as_of"], info["newest_run_read"]) == ("latest", crawled.run_ids[1])
    assert info["tables"]["topics"]["rows"] == 28
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


@pytest.mark.parametrize(
    ("as_of", "allergy_date", "topics"),
    [
        pytest.param("first-run", ALLERGY_BEFORE, 28, id="run-id"),
        pytest.param("latest", ALLERGY_AFTER, 28, id="latest"),
        pytest.param("2023-06-01", ALLERGY_BEFORE, 18, id="date-between-versions"),
        pytest.param("2020-01-01", None, 7, id="date-before-allergy"),
        pytest.param("1990-01-01", None, 0, id="date-before-everything"),
    ],
)
def test_a_snapshot_as_of_a_run_or_a_date(
    crawled: Crawled,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    as_of: str,
    allergy_date: date | None,
    topics: int,
) -> None:
    value = crawled.run_ids[0] if as_of == "first-run" else as_of
    out = tmp_path / "snapshot.csv"
    result = cli(capsys, "snapshot", "--archive", crawled.path, "--as-of", value, "--out", out)
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == topics
    dates = {row["slug"]: row["last_updated"] for row in rows if row["language"] == "en"}
    assert dates.get("allergy") == (allergy_date.isoformat() if allergy_date else None)
    if as_of.startswith(("19", "20")):
        assert all(row["last_updated"] <= as_of for row in rows)


def test_a_csv_snapshot_is_one_flat_file_with_lists_as_json(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "topics.csv"
    assert cli(capsys, "snapshot", "--archive", crawled.path, "--out", out).code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0]) == SCHEMAS["topics"].names
    asthma = next(row for row in rows if (row["language"], row["slug"]) == ("en", "asthma"))
    assert json.loads(asthma["also_called"]) == ["Bronchial asthma", "Reactive airway disease"]
    assert [topic["title"] for topic in json.loads(asthma["related_topics"])][:1] == ["Allergy"]
    assert date.fromisoformat(asthma["last_updated"]) == date(2024, 7, 19)
    assert asthma["last_reviewed"] == ""  # None is an empty cell


def test_a_jsonl_snapshot_nests_links_and_trials_in_each_topic(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "topics.jsonl"
    assert cli(capsys, "snapshot", "--archive", crawled.path, "--out", out).code == 0
    topics = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    archive = open_archive(crawled.path)
    assert len(topics) == len(archive.topics())
    assert sum(len(topic["links"]) for topic in topics) == len(archive.links())
    assert sum(len(topic["clinical_trials"]) for topic in topics) == len(archive.clinical_trials())
    asthma = next(t for t in topics if (t["language"], t["slug"]) == ("en", "asthma"))
    assert len(asthma["links"]) == 24
    sections: dict[str, list[int]] = {}
    for link in asthma["links"]:  # in page order: 0, 1, 2... within each section
        sections.setdefault(link["section"], []).append(link["position"])
    assert all(positions == list(range(len(positions))) for positions in sections.values())
    assert not set(VERSION_KEY) & set(asthma["links"][0])


def test_a_file_snapshot_replaces_an_older_one_atomically(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "snapshot.jsonl"
    out.write_text("stale\n", encoding="utf-8")
    result = cli(
        capsys, "snapshot", "--archive", crawled.path, "--as-of", "2020-01-01", "--out", out
    )
    assert result.code == 0, result.err
    assert len(out.read_text(encoding="utf-8").splitlines()) == 7
    assert sorted(path.name for path in tmp_path.iterdir()) == ["snapshot.jsonl"]


def test_a_parquet_snapshot_may_go_into_an_empty_directory(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    result = cli(capsys, "snapshot", "--archive", crawled.path, "--out", tmp_path / "empty")
    assert result.code == 0, result.err
    assert (tmp_path / "empty" / "topics.parquet").is_file()


# --- verify ---------------------------------------------------------------------------


def test_verify_a_sound_archive(crawled: Crawled, capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(capsys, "verify", "--archive", crawled.path)
    assert (result.code, result.out, result.err) == (0, "ok: 2 runs, 14 files verified\n", "")
    assert cli(capsys, "verify", "--strict", "--archive", crawled.path).code == 0


def test_verify_prints_each_problem_on_one_line(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = copy_archive(crawled, tmp_path / "archive")
    first = crawled.run_ids[0]
    changed = archive / "links" / f"part-{first}.parquet"
    changed.write_bytes(changed.read_bytes() + b"\0")
    (archive / "topics" / f"part-{crawled.run_ids[1]}.parquet").unlink()
    result = cli(capsys, "verify", "--archive", archive)
    assert result.code == 1
    changed_line, missing_line = sorted(result.out.splitlines())
    assert changed_line.startswith(f"links/part-{first}.parquet: changed since run {first}")
    assert missing_line.startswith(f"topics/part-{crawled.run_ids[1]}.parquet: missing")
    assert result.err == f"error: 2 problems in {archive}\n"


def test_verify_warns_about_leftovers_of_uncommitted_runs_and_strict_fails(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = copy_archive(crawled, tmp_path / "archive")
    dead = "20990101T000000Z-dead"
    (archive / "_staging" / dead).mkdir()
    shutil.copyfile(
        archive / "topics" / f"part-{crawled.run_ids[0]}.parquet",
        archive / "topics" / f"part-{dead}.parquet",
    )
    lenient = cli(capsys, "verify", "--archive", archive)
    assert (lenient.code, lenient.out) == (0, "ok: 2 runs, 14 files verified\n")
    warnings = lenient.err.splitlines()
    assert [line.split(":")[0] for line in warnings] == ["warning", "warning"]
    assert f"topics/part-{dead}.parquet" in lenient.err
    assert f"_staging/{dead}" in lenient.err
    strict = cli(capsys, "verify", "--strict", "--archive", archive)
    assert strict.code == 1
    assert len(strict.out.splitlines()) == 2


def _rows_per_table(archive: Path) -> dict[str, int]:
    store = ArchiveStore.open(archive, read_only=True)
    return {table: store.read_table(table).num_rows for table in TABLES}


def test_a_lost_manifest_stops_crawls_until_repair_rebuilds_it(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15's acceptance: the manifest of a middle run is deleted; a crawl refuses
    (exit 3, one line naming the run and `repair`, no file touched), verify names the
    run (exit 1); after `repair`, verify passes, the rows are back and crawls run again."""
    archive = copy_archive(crawled, tmp_path / "archive")
    with SiteServer() as server:
        server.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
        third = crawl(server.base_url, archive, *QUICK, "--url", ALLERGY_URL)
        assert third.returncode == 0, third
        first, middle, _ = sorted(path.stem for path in (archive / "_runs").glob("*.json"))
        assert (first, middle) == crawled.run_ids
        rows = _rows_per_table(archive)
        (archive / "_runs" / f"{middle}.json").unlink()
        assert _rows_per_table(archive)["topics"] < rows["topics"]  # readers lost the run
        before = fingerprint(archive)

        refused = crawl(server.base_url, archive, *QUICK, "--url", ALLERGY_URL)
        assert refused.returncode == 3, refused
        (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert f"run {middle}" in line
        assert f"warc/{middle}.warc.gz" in line
        assert "medlineplus-archive repair" in line
        assert fingerprint(archive) == before

        verify = cli(capsys, "verify", "--archive", archive)
        assert verify.code == 1
        (problem,) = verify.out.splitlines()
        assert problem.startswith(f"_runs/{middle}.json: missing: run {middle}")
        assert f"topics/part-{middle}.parquet" in problem

        repaired = cli(capsys, "repair", "--archive", archive)
        assert (repaired.code, repaired.err) == (0, "")
        assert repaired.out.startswith(f"rebuilt the manifest of run {middle}: runs 1,")
        assert cli(capsys, "verify", "--archive", archive).out == "ok: 3 runs, 21 files verified\n"
        assert _rows_per_table(archive) == rows

        again = crawl(server.base_url, archive, *QUICK, "--url", ALLERGY_URL)
        assert again.returncode == 0, again
    after = cli(capsys, "verify", "--archive", archive)
    assert (after.code, after.err) == (0, "")
    assert cli(capsys, "repair", "--archive", archive).out == (
        "nothing to repair: no run's manifest is missing\n"
    )


def test_repair_refuses_a_damaged_run_with_exit_3_and_changes_nothing(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = copy_archive(crawled, tmp_path / "archive")
    first, _ = crawled.run_ids
    (archive / "_runs" / f"{first}.json").unlink()
    part = archive / "topics" / f"part-{first}.parquet"
    part.write_bytes(part.read_bytes()[:-100])
    before = fingerprint(archive)
    result = cli(capsys, "repair", "--archive", archive)
    assert (result.code, result.out) == (3, "")
    assert result.err.startswith(f"error: cannot repair run {first}: {part}: not readable Parquet")
    assert len(result.err.splitlines()) == 1
    assert fingerprint(archive) == before


# --- bad input ------------------------------------------------------------------------

NEWER_MARKER = {"format": "medlineplus-archive", "schema_version": 99}


def _not_an_archive(tmp_path: Path) -> Path:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("not an archive\n", encoding="utf-8")
    return tmp_path / "notes"


def _a_file(tmp_path: Path) -> Path:
    (tmp_path / "archive.txt").write_text("not an archive\n", encoding="utf-8")
    return tmp_path / "archive.txt"


# (arguments with {archive}, {tmp}... placeholders, expected exit code, start of the error;
# a path that is not a folder is the environment failing, exit 3, not bad usage)
BAD_INPUT = [
    pytest.param(["runs", "--archive", "{tmp}/missing"], 2, "no archive at", id="runs-missing"),
    pytest.param(
        ["runs", "--archive", "{file}"], 3, "{file} is a file, not a folder", id="runs-a-file"
    ),
    pytest.param(["runs", "--archive", "{foreign}"], 2, "no archive at", id="runs-not-archive"),
    pytest.param(["runs", "--format", "yaml"], 2, "argument --format", id="runs-bad-format"),
    pytest.param(
        ["snapshot", "--archive", "{archive}", "--as-of", "2024-02-30", "--out", "{tmp}/s.csv"],
        2,
        "--as-of: bad date '2024-02-30'",
        id="snapshot-bad-date",
    ),
    pytest.param(
        ["snapshot", "--archive", "{archive}", "--as-of", "20990101T0000Z-x", "--out", "{tmp}/s"],
        2,
        "--as-of: '20990101T0000Z-x' is neither a date",
        id="snapshot-unknown-run",
    ),
    pytest.param(
        ["snapshot", "--archive", "{archive}", "--as-of", "yesterday", "--out", "{tmp}/s"],
        2,
        "--as-of: 'yesterday' is neither a date",
        id="snapshot-as-of-word",
    ),
    pytest.param(
        ["snapshot", "--archive", "{archive}", "--out", "{archive}/topics/s.csv"],
        2,
        "--out: ",
        id="snapshot-into-the-archive",
    ),
    pytest.param(
        ["snapshot", "--archive", "{archive}", "--out", "{archive}"],
        2,
        "--out: ",
        id="snapshot-onto-the-archive",
    ),
    pytest.param(
        ["snapshot", "--archive", "{archive}", "--out", "{tmp}/missing/s.csv"],
        2,
        "--out: no such directory",
        id="snapshot-out-in-missing-directory",
    ),
    pytest.param(
        ["snapshot", "--archive", "{archive}", "--out", "{foreign}"],
        2,
        "--out: ",
        id="snapshot-over-a-non-empty-directory",
    ),
    pytest.param(
        ["snapshot", "--archive", "{archive}", "--format", "csv", "--out", "{tmp}"],
        2,
        "--out: ",
        id="snapshot-csv-onto-a-directory",
    ),
    pytest.param(
        ["snapshot", "--archive", "{archive}", "--format", "xml", "--out", "{tmp}/s"],
        2,
        "argument --format",
        id="snapshot-bad-format",
    ),
    pytest.param(["snapshot", "--archive", "{archive}"], 2, "the following", id="snapshot-no-out"),
    pytest.param(
        ["snapshot", "--archive", "{tmp}/missing", "--out", "{tmp}/s"],
        2,
        "no archive at",
        id="snapshot-missing-archive",
    ),
    pytest.param(
        ["history", "nosuchtopic", "--archive", "{archive}"],
        2,
        "no stored version of topic en/nosuchtopic",
        id="history-unknown-topic",
    ),
    pytest.param(
        ["history", "burns", "--language", "es", "--archive", "{archive}"],
        2,
        "no stored version of topic es/burns",
        id="history-other-language-only",
    ),
    pytest.param(
        ["history", "asthma", "--language", "fr", "--archive", "{archive}"],
        2,
        "argument --language",
        id="history-bad-language",
    ),
    pytest.param(["history", "--archive", "{archive}"], 2, "the following", id="history-no-slug"),
    pytest.param(["verify", "--archive", "{tmp}/missing"], 2, "no archive at", id="verify-missing"),
    pytest.param(
        ["verify", "--archive", "{file}"], 3, "{file} is a file, not a folder", id="verify-a-file"
    ),
    pytest.param(["verify", "--archive", "{foreign}"], 2, "no archive at", id="verify-not-archive"),
    pytest.param(["nosuchcommand"], 2, "argument COMMAND", id="unknown-command"),
]


@pytest.mark.parametrize(("arguments", "code", "message"), BAD_INPUT)
def test_bad_input_is_one_error_line_and_exit_2(
    crawled: Crawled,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    code: int,
    message: str,
) -> None:
    places = {
        "{archive}": str(crawled.path),
        "{tmp}": str(tmp_path),
        "{file}": str(_a_file(tmp_path)),
        "{foreign}": str(_not_an_archive(tmp_path)),
    }
    for placeholder, value in places.items():
        arguments = [argument.replace(placeholder, value) for argument in arguments]
        message = message.replace(placeholder, value)
    before = fingerprint(tmp_path)
    result = cli(capsys, *arguments)
    assert result.code == code
    assert result.out == ""
    (line,) = result.err.splitlines()
    assert line.startswith(f"error: {message}"), line
    assert fingerprint(tmp_path) == before  # nothing written, not even a temporary file


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["runs"], id="runs"),
        pytest.param(["snapshot", "--out", "{tmp}/s"], id="snapshot"),
        pytest.param(["history", "asthma"], id="history"),
        pytest.param(["verify"], id="verify"),
    ],
)
def test_an_archive_of_a_newer_schema_exits_3(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    archive = copy_archive(crawled, tmp_path / "archive")
    (archive / "_archive.json").write_text(json.dumps(NEWER_MARKER), encoding="utf-8")
    before = fingerprint(archive)
    arguments = [argument.replace("{tmp}", str(tmp_path)) for argument in command]
    result = cli(capsys, *arguments, "--archive", archive)
    assert result.code == 3
    (line,) = result.err.splitlines()
    assert line.startswith("error: ")
    assert "newer than this medlineplus-archive reads" in line
    assert fingerprint(archive) == before
    assert not (tmp_path / "s").exists()


def test_a_damaged_manifest_exits_3_and_verify_reports_it(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = copy_archive(crawled, tmp_path / "archive")
    manifest = archive / "_runs" / f"{crawled.run_ids[1]}.json"
    manifest.write_text("{not json", encoding="utf-8")
    runs = cli(capsys, "runs", "--archive", archive)
    assert runs.code == 3
    (line,) = runs.err.splitlines()
    assert line.startswith(f"error: cannot read manifest {manifest}")
    verify = cli(capsys, "verify", "--archive", archive)
    assert verify.code == 1
    assert verify.out.startswith(f"_runs/{crawled.run_ids[1]}.json: cannot read manifest")


def test_readers_work_while_a_crawl_holds_the_lock(
    crawled: Crawled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = copy_archive(crawled, tmp_path / "archive")
    with ArchiveStore.open(archive):  # what a running crawl holds
        assert cli(capsys, "runs", "--archive", archive).code == 0
        assert cli(capsys, "verify", "--archive", archive).code == 0
        assert cli(capsys, "history", "asthma", "--archive", archive).code == 0


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        pytest.param(["runs", "--archive", "{tmp}/missing"], 2, id="missing-archive"),
        pytest.param(
            ["snapshot", "--as-of", "2024-99-99", "--archive", "{archive}", "--out", "{tmp}/s"],
            2,
            id="bad-date",
        ),
        pytest.param(["verify", "--archive", "{newer}"], 3, id="newer-schema"),
    ],
)
def test_the_real_command_line_gives_one_line_and_no_traceback(
    crawled: Crawled, tmp_path: Path, arguments: list[str], code: int
) -> None:
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "_archive.json").write_text(json.dumps(NEWER_MARKER), encoding="utf-8")
    places = {"{archive}": str(crawled.path), "{tmp}": str(tmp_path), "{newer}": str(newer)}
    for placeholder, value in places.items():
        arguments = [argument.replace(placeholder, value) for argument in arguments]
    result = run_cli(*arguments, timeout=60)
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")


@pytest.mark.parametrize("command", ["runs", "snapshot", "history", "verify"])
def test_every_command_has_help_naming_the_archive_option(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli(capsys, command, "--help")
    assert result.code == 0
    assert "--archive PATH" in result.out


# --- history: reverts and gone topics (hand-made runs, no crawl) -----------------------


def test_history_marks_a_reverted_version_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original, edited = make_page(), make_page(text="Edited on the same date.")
    first = commit_run(tmp_path, at(date(2024, 1, 10)), [original])
    edit = commit_run(tmp_path, at(date(2024, 3, 5)), [edited])
    revert = commit_run(tmp_path, at(date(2024, 5, 20)), [original])
    result = cli(capsys, "history", "asthma", "--archive", tmp_path, "--format", "json")
    rows = json.loads(result.out)
    assert [row["content_hash"] for row in rows] == [original.content_hash, edited.content_hash]
    assert [row["outcome"] for row in rows] == ["new", "same_date_edit"]
    assert [(row["first_seen_run"], row["last_seen_run"]) for row in rows] == [
        (first, revert),
        (edit, edit),
    ]
    assert [row["current"] for row in rows] == [True, False]


def test_history_of_a_gone_topic_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_run(tmp_path, at(date(2024, 1, 10)), [make_page("copd")])
    gone = commit_run(tmp_path, at(date(2024, 5, 20)), gone=[("en", "copd")])
    result = cli(capsys, "history", "copd", "--archive", tmp_path)
    assert result.code == 0, result.err
    *table, blank, note = result.out.splitlines()
    assert len(table) == 3
    assert "yes" not in table[2].split()
    assert (blank, note) == ("", f"no current version: run {gone} found the topic gone: 404")


# --- exit codes of archive errors -----------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        pytest.param(ArchiveNotFoundError("no archive", path="x"), 2, id="not-found"),
        pytest.param(UnknownRunError("r1", Path("x")), 2, id="unknown-run"),
        pytest.param(ArchiveSchemaError("a directory of notes"), 2, id="not-an-archive"),
        pytest.param(ArchiveSchemaError("newer", newer_version=9), 3, id="newer-schema"),
        pytest.param(ArchiveLockedError(Path("x"), 123), 3, id="locked"),
        pytest.param(ArchiveCorruptError("cannot read manifest"), 3, id="damaged"),
        pytest.param(ArchiveNotAFolderError("x is a file"), 3, id="not-a-folder"),
        pytest.param(
            ArchiveUnwritableError(Path("x"), OSError(errno.EROFS, "Read-only file system")),
            3,
            id="read-only",
        ),
    ],
)
def test_archive_errors_map_to_usage_or_archive_exit_codes(error: ArchiveError, code: int) -> None:
    assert archive_exit_code(error) == code


def test_crawl_into_a_directory_that_is_no_archive_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = _not_an_archive(tmp_path)
    before = fingerprint(tmp_path)
    result = cli(capsys, "crawl", "--archive", foreign, "--base-url", "http://127.0.0.1:9")
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith(f"error: {foreign} is not empty and is not a medlineplus archive")
    assert fingerprint(tmp_path) == before


def test_crawl_into_a_locked_archive_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ArchiveStore.open(tmp_path / "archive"):
        result = cli(
            capsys, "crawl", "--archive", tmp_path / "archive", "--base-url", "http://127.0.0.1:9"
        )
    assert result.code == 3
    (line,) = result.err.splitlines()
    assert line.startswith(f"error: another crawl is writing {tmp_path / 'archive'}")
