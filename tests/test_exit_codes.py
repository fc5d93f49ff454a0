"""One exit-code rule for every command: the README's table, checked against the CLI.

Each case names the words of the README's exit-code table that document it
(`documented`), and `test_the_readme_table_documents_every_case` checks they are in the
row of the case's exit code. Crawls run as a real subprocess (bounded to 10 s: a crawl
that does not stop on a bad option would hang); the other commands run in-process
through `crawler.commands.cli.main` (the same code, without a Python start-up per case) and a
few as subprocesses too. Every failure must be exactly one `error:` line on stderr,
with no traceback, no request to the site and no run committed.

Read-only and full disks are tmpfs mounts (tests run as root, where file modes do not
stop writes); the tests that need them are skipped where mounting is not permitted.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from _pytest.mark import ParameterSet

from crawler.commands.cli import main
from pipelines.changes.reports.json_report import report_schema
from pipelines.core.store import ArchiveStore
from tests.archive_factory import at, commit_run, make_page
from tests.crawl_runner import QUICK, CrawlResult, run_cli
from tests.site_server import SiteServer
from tests.tmpfs import TMPFS_BYTES, Mount, mounted_tmpfs

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TIMEOUT = 10
"""Seconds a command may take to refuse bad input or a failed environment."""

ARCHIVE, SITE, FILE, EMPTY, OUT = "{archive}", "{site}", "{file}", "{empty}", "{out}"
"""Placeholders in a case's arguments, filled in per test."""


def readme_exit_codes() -> dict[int, str]:
    """The README's exit-code table: code -> its row (meaning and cases)."""
    section = README.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.MULTILINE)
    return {int(code): " ".join(text.split()) for code, text in rows}


@dataclass(frozen=True)
class Case:
    arguments: tuple[str, ...]
    code: int
    documented: str
    """Words of the README's row for `code` that describe this case."""
    names: str
    """What the error line must name: the option, value or path at fault."""


def case(code: int, documented: str, names: str, *arguments: str, id: str) -> ParameterSet:
    return pytest.param(Case(arguments, code, documented, names), id=id)


CRAWL = ("crawl", "--archive", ARCHIVE, "--base-url", SITE)
NUMBERS = "a number out of range"
DELAY = "`--delay` (finite, 0 to 3600)"
CONCURRENCY = "`--concurrency` (1 to 64)"
LIMIT = "`--limit` (1 or more)"
DAYS = "`feed --days` (1 to 36500)"
SETTING = "a numeric `-s` setting (finite"
WHOLE = "not a whole number for a whole-number `-s` setting (`CONCURRENT_REQUESTS_PER_DOMAIN=1.5`)"
XML_BYTES = "`MEDLINEPLUS_XML_MAX_BYTES` 1 or more"
UNREADABLE = "an input file that cannot be read (`--urls`, `--from-xml`, a `--from-warc` that is no WARC file)"  # noqa: E501
COMPACT_EVERY = "`-s ARCHIVE_COMPACT_EVERY` (0, or 2 or more)"
RETAIN_DAYS = "`vacuum --retain-days` (0 or more)"
EVERY = "`compact --every` (2 or more)"
WRONG_KIND = "a value of the wrong kind"
BAD_DATE = "a date that is not a real `YYYY-MM-DD` date"
UNKNOWN = "a run id or topic the archive does not have"
NO_ARCHIVE = "an `--archive` folder that holds something other than an archive, or (for a command that reads it) no archive at all"  # noqa: E501
NOT_A_FOLDER = "the archive path is not a folder (a regular file, or a path through one)"
LOCKED = "the archive is locked by another crawl"
DISK = "the archive is on a read-only or full disk"
DAMAGED = "the archive is damaged"
NEWER = "was written by a newer version"

CRAWL_USAGE = [
    case(2, DELAY, "--delay", *CRAWL, "--delay", "1e308", id="delay-huge"),
    case(2, DELAY, "--delay", *CRAWL, "--delay", "nan", id="delay-nan"),
    case(2, DELAY, "--delay", *CRAWL, "--delay", "3600.5", id="delay-over-an-hour"),
    case(2, CONCURRENCY, "--concurrency", *CRAWL, "--concurrency", "65", id="concurrency-65"),
    case(2, LIMIT, "--limit", *CRAWL, "--limit", "-3", id="limit-negative"),
    case(2, WRONG_KIND, "--limit", *CRAWL, "--limit", "ten", id="limit-not-a-number"),
    case(2, SETTING, "DOWNLOAD_DELAY", *CRAWL, "-s", "DOWNLOAD_DELAY=nan", id="setting-nan"),
    case(2, SETTING, "DOWNLOAD_DELAY", *CRAWL, "-s", "DOWNLOAD_DELAY=1e308", id="setting-huge"),
    case(
        2,
        SETTING,
        "CONCURRENT_REQUESTS_PER_DOMAIN",
        *CRAWL,
        "-s",
        "CONCURRENT_REQUESTS_PER_DOMAIN=1000",
        id="setting-concurrency",
    ),
    case(2, SETTING, "RETRY_BACKOFF_MAX", *CRAWL, "-s", "RETRY_BACKOFF_MAX=inf", id="setting-inf"),
    case(
        2,
        WHOLE,
        "CONCURRENT_REQUESTS_PER_DOMAIN",
        *CRAWL,
        "-s",
        "CONCURRENT_REQUESTS_PER_DOMAIN=1.5",
        id="setting-not-whole",
    ),
    *(
        case(2, XML_BYTES, "MEDLINEPLUS_XML_MAX_BYTES", *CRAWL, "-s", setting, id=setting)
        for setting in ("MEDLINEPLUS_XML_MAX_BYTES=0", "MEDLINEPLUS_XML_MAX_BYTES=-1")
    ),
    case(2, UNREADABLE, "/proc/self/mem", *CRAWL, "--urls", "/proc/self/mem", id="urls-unreadable"),
    case(2, UNREADABLE, FILE, *CRAWL, "--from-warc", FILE, id="warc-not-a-warc"),
    case(2, UNREADABLE, EMPTY, *CRAWL, "--from-warc", EMPTY, id="warc-empty"),
    case(
        2,
        COMPACT_EVERY,
        "-s ARCHIVE_COMPACT_EVERY",
        *CRAWL,
        "-s",
        "ARCHIVE_COMPACT_EVERY=1",
        id="setting-compact-every",
    ),
]

READ_USAGE = [
    case(2, BAD_DATE, "0000-01-01", "snapshot", "--as-of", "0000-01-01", "--out", OUT, id="year-0"),
    case(2, BAD_DATE, "2024-02-30", "snapshot", "--as-of", "2024-02-30", "--out", OUT, id="feb-30"),
    case(2, BAD_DATE, "2024-13-01", "changes", "--from", "2024-13-01", id="changes-month-13"),
    case(2, UNKNOWN, "20990101T000000Z-0000", "changes", "--to", "20990101T000000Z-0000", id="to"),
    case(2, UNKNOWN, "no-such-run", "reextract", "--run", "no-such-run", id="reextract-run"),
    case(2, UNKNOWN, "no-such-run", "snapshot", "--as-of", "no-such-run", "--out", OUT, id="as-of"),
    case(2, UNKNOWN, "en/no-such-topic", "history", "no-such-topic", id="history-topic"),
    case(2, UNKNOWN, "en/no-such-topic", "page", "no-such-topic", "--out", OUT, id="page-topic"),
    case(
        2,
        UNKNOWN,
        "no raw page was kept for en/asthma",
        "page",
        "asthma",
        "--out",
        OUT,
        id="page-raw",
    ),
    case(
        2,
        BAD_DATE,
        "2024-02-30",
        "page",
        "asthma",
        "--as-of",
        "2024-02-30",
        "--out",
        OUT,
        id="page-feb-30",
    ),
    case(2, WRONG_KIND, "--format", "runs", "--format", "xml", id="runs-format"),
    case(2, DAYS, "--days", "feed", "--days", "0", id="feed-days"),
    case(2, RETAIN_DAYS, "--retain-days", "vacuum", "--retain-days", "-1", id="vacuum-retain"),
    case(2, EVERY, "--every", "compact", "--every", "1", id="compact-every"),
]

NO_ARCHIVE_CASES = [
    case(2, NO_ARCHIVE, "no archive at", "runs", "--archive", EMPTY, id="runs"),
    case(2, NO_ARCHIVE, "no archive at", "changes", "--archive", EMPTY, id="changes"),
    case(2, NO_ARCHIVE, "no archive at", "feed", "--archive", EMPTY, id="feed"),
    case(
        2,
        NO_ARCHIVE,
        "no archive at",
        "page",
        "asthma",
        "--out",
        "-",
        "--archive",
        EMPTY,
        id="page",
    ),
    case(2, NO_ARCHIVE, "no archive at", "compact", "--archive", EMPTY, id="compact"),
    case(2, NO_ARCHIVE, "no archive at", "vacuum", "--archive", EMPTY, id="vacuum"),
]

NOT_A_FOLDER_CASES = [
    case(3, NOT_A_FOLDER, FILE, *command, "--archive", archive, id=f"{name}-{where}")
    for name, command in (
        ("crawl", ("crawl", "--base-url", SITE)),
        ("runs", ("runs",)),
        ("history", ("history", "asthma")),
        ("page", ("page", "asthma", "--out", OUT)),
        ("snapshot", ("snapshot", "--out", OUT)),
        ("changes", ("changes",)),
        ("feed", ("feed",)),
        ("verify", ("verify",)),
        ("reextract", ("reextract",)),
        ("reextract-commit", ("reextract", "--commit")),
        ("compact", ("compact",)),
        ("vacuum", ("vacuum",)),
    )
    for where, archive in (("file", FILE), ("under-file", f"{FILE}/archive"))
]


WRITERS = [
    ("crawl", ("crawl", "--base-url", SITE)),
    ("reextract-commit", ("reextract", "--commit")),
    ("compact", ("compact",)),
    ("vacuum", ("vacuum",)),
]
LOCKED_CASES = [
    case(3, LOCKED, "another crawl is writing", *command, "--archive", ARCHIVE, id=name)
    for name, command in WRITERS
]
DISK_CASES = [
    case(3, DISK, "cannot write to the archive", *command, "--archive", ARCHIVE, id=name)
    for name, command in WRITERS
]
DAMAGED_MARKER = "{not json"
NEWER_MARKER = json.dumps({"format": "medlineplus-archive", "schema_version": 99})
DAMAGED_CASES = [
    case(3, DAMAGED, "cannot read", *command, "--archive", ARCHIVE, id=f"damaged-{command[0]}")
    for command in (("crawl", "--base-url", SITE), ("changes",))
] + [
    case(3, NEWER, "newer", *command, "--archive", ARCHIVE, id=f"newer-{command[0]}")
    for command in (("crawl", "--base-url", SITE), ("changes",))
]
EMPTY_REPORT = "an empty change report (`No changes between A and B`)"
EMPTY_REPORT_CASES = [
    case(
        0, EMPTY_REPORT, "", "changes", "--format", report_format, *out, id=f"{report_format}-{to}"
    )
    for report_format in ("md", "html", "json")
    for to, out in (("stdout", ()), ("out", ("--out", OUT)))
]

# --- fixtures and helpers -------------------------------------------------------------


@pytest.fixture(scope="module")
def site() -> Iterator[SiteServer]:
    """The fixture site: a command refused before any fetch never asks it anything."""
    with SiteServer() as server:
        yield server


@pytest.fixture(scope="module")
def unchanged_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """An archive of two runs that saw the same two topics: nothing changed between them."""
    root = tmp_path_factory.mktemp("unchanged") / "archive"
    pages = [make_page("asthma"), make_page("copd")]
    first = commit_run(root, at(date(2024, 3, 1)), pages)
    second = commit_run(root, at(date(2024, 3, 2)), pages)
    return root, first, second


def committed_runs(archive: Path) -> list[str]:
    return sorted(path.name for path in (archive / "_runs").glob("*.json"))


def fill(arguments: tuple[str, ...], **values: str | Path) -> list[str]:
    """`arguments` with their placeholders ({archive}, {site}...) replaced."""
    return [
        argument.format(**{name: str(value) for name, value in values.items()})
        for argument in arguments
    ]


def invoke(capsys: pytest.CaptureFixture[str], arguments: list[str]) -> CrawlResult:
    """`medlineplus-archive ARGUMENTS...`: a crawl as a subprocess given TIMEOUT seconds,
    another command in this process (the same code, without a Python start-up)."""
    if arguments[0] == "crawl":
        return run_cli(*arguments, timeout=TIMEOUT)
    try:
        code = main(arguments)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return CrawlResult(code, out, err)


def assert_one_error_line(result: CrawlResult, code: int, names: str) -> str:
    """The one `error:` line of a refused command, checked: exit code, no traceback."""
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result
    assert names in errors[0], result
    return errors[0]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    """A small tmpfs at tmp_path/disk; skips the test where mounting is not permitted."""
    with mounted_tmpfs(tmp_path / "disk") as mount:
        yield mount


def make_read_only(mount: Mount) -> None:
    mount.run("-o", "remount,ro", str(mount.path))
    with pytest.raises(OSError, match="Read-only file system"):
        (mount.path / "probe").write_text("x")


def make_full(mount: Mount) -> None:
    too_much = b"\0" * 2 * TMPFS_BYTES  # written in full up to the last byte that fits
    with pytest.raises(OSError, match="No space left on device"):
        (mount.path / "filler").write_bytes(too_much)


# --- exit 2: bad usage, checked before anything is fetched or written -----------------


@pytest.mark.parametrize("bad", CRAWL_USAGE)
def test_a_crawl_with_a_bad_number_or_input_exits_2_at_once(
    bad: Case,
    unchanged_archive: tuple[Path, str, str],
    site: SiteServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = unchanged_archive[0]
    before = committed_runs(archive)
    not_a_warc, empty = tmp_path / "not-a-warc.warc.gz", tmp_path / "empty.warc"
    not_a_warc.write_bytes(b"<html>not a WARC file</html>\n")
    empty.write_bytes(b"")
    site.clear_log()
    values = {"archive": archive, "site": site.base_url, "file": not_a_warc, "empty": empty}
    result = invoke(capsys, fill(bad.arguments, **values))
    assert_one_error_line(result, 2, bad.names.format(**values))
    assert site.requests == []
    assert committed_runs(archive) == before


@pytest.mark.parametrize("bad", READ_USAGE)
def test_a_bad_date_run_or_choice_exits_2(
    bad: Case,
    unchanged_archive: tuple[Path, str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = unchanged_archive[0]
    before = committed_runs(archive)
    arguments = [*fill(bad.arguments, out=tmp_path / "out.csv"), "--archive", str(archive)]
    assert_one_error_line(invoke(capsys, arguments), 2, bad.names)
    assert committed_runs(archive) == before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", NO_ARCHIVE_CASES)
def test_a_folder_without_an_archive_exits_2(
    bad: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_one_error_line(invoke(capsys, fill(bad.arguments, empty=tmp_path)), 2, str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_date_the_archive_can_answer_for_is_no_error(
    unchanged_archive: tuple[Path, str, str], tmp_path: Path
) -> None:
    """The last date there is (9999-12-31) once ended in OverflowError; a real process."""
    archive = unchanged_archive[0]
    out = tmp_path / "far.csv"
    result = run_cli(
        "snapshot", "--archive", archive, "--as-of", "9999-12-31", "--out", out, timeout=TIMEOUT
    )
    assert (result.returncode, result.stderr) == (0, ""), result
    with out.open(encoding="utf-8", newline="") as stream:
        assert sorted(row["slug"] for row in csv.DictReader(stream)) == ["asthma", "copd"]


# --- exit 3: the environment failed ---------------------------------------------------


@pytest.mark.parametrize("bad", NOT_A_FOLDER_CASES)
def test_an_archive_path_that_is_no_folder_exits_3(
    bad: Case, tmp_path: Path, site: SiteServer, capsys: pytest.CaptureFixture[str]
) -> None:
    regular = tmp_path / "notes.txt"
    regular.write_text("not an archive\n", encoding="utf-8")
    site.clear_log()
    arguments = fill(bad.arguments, file=regular, site=site.base_url, out=tmp_path / "s.csv")
    line = assert_one_error_line(invoke(capsys, arguments), 3, str(regular))
    assert line.endswith("pass a folder as --archive")
    assert regular.read_text(encoding="utf-8") == "not an archive\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    assert site.requests == []


def small_archive(root: Path, runs: int = 1) -> list[str]:
    """An archive of `runs` runs at `root`; its committed run files."""
    for day in range(1, runs + 1):
        commit_run(root, at(date(2024, 3, day)), [make_page("asthma")])
    return committed_runs(root)


@pytest.mark.parametrize("bad", LOCKED_CASES)
def test_a_locked_archive_exits_3_for_every_writer(
    bad: Case, tmp_path: Path, site: SiteServer, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "archive"
    before = small_archive(archive)
    site.clear_log()
    with ArchiveStore.open(archive):
        result = invoke(capsys, fill(bad.arguments, archive=archive, site=site.base_url))
    assert_one_error_line(result, 3, f"{bad.names} {archive}")
    assert committed_runs(archive) == before
    assert site.requests == []


@pytest.mark.parametrize(
    "disk", [pytest.param(make_read_only, id="read-only"), pytest.param(make_full, id="full")]
)
@pytest.mark.parametrize("bad", DISK_CASES)
def test_an_archive_on_a_read_only_or_full_disk_exits_3_before_any_fetch(
    bad: Case,
    disk: Callable[[Mount], None],
    tmpfs: Mount,
    site: SiteServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = tmpfs.path / "archive"
    before = small_archive(archive)
    disk(tmpfs)
    site.clear_log()
    result = invoke(capsys, fill(bad.arguments, archive=archive, site=site.base_url))
    line = assert_one_error_line(result, 3, f"{bad.names} {archive}")
    assert line.split(": ")[2].startswith(("Read-only file system", "No space left on device"))
    assert committed_runs(archive) == before
    assert site.requests == []


def test_a_disk_that_fills_up_during_a_crawl_exits_3_and_commits_nothing(
    tmpfs: Mount, quick_site: SiteServer
) -> None:
    """The archive could be opened, then its disk fills while pages are written (an
    outside fault: the space left is less than the crawl's pages take)."""
    archive = tmpfs.path / "archive"
    before = small_archive(archive)
    space = os.statvfs(tmpfs.path)
    left = 64 * 1024
    (tmpfs.path / "filler").write_bytes(b"\0" * (space.f_bavail * space.f_frsize - left))
    result = run_cli(
        "crawl", "--base-url", quick_site.base_url, "--archive", archive,
        *QUICK, "--languages", "en", timeout=120,
    )  # fmt: skip
    line = assert_one_error_line(result, 3, f"cannot write to the archive {archive}")
    assert "No space left on device" in line
    assert "archive unusable" in result.stderr  # failed while pages were written
    assert committed_runs(archive) == before
    assert list((archive / "_staging").iterdir()) == []


def test_stats_that_cannot_be_written_keep_the_runs_own_error_line(
    tmpfs: Mount, quick_site: SiteServer, tmp_path: Path
) -> None:
    """--stats-json on a disk that is full when the crawl ends: the run's own error line
    first, then the stats' one; the exit code is the worse of the two (3)."""
    make_full(tmpfs)
    stats, archive = tmpfs.path / "stats.json", tmp_path / "archive"
    result = run_cli(
        "crawl", "--base-url", quick_site.base_url, "--archive", archive,
        *QUICK, "-s", "CLOSESPIDER_PAGECOUNT=1", "--stats-json", stats,
        "--url", "https://medlineplus.gov/asthma.html",
        "--url", "https://medlineplus.gov/acne.html",
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 3, result
    assert "Traceback" not in result.stderr, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    (run_id,) = committed_runs(archive)
    assert len(errors) == 2, result
    assert errors[0].startswith(f"error: run {run_id.removesuffix('.json')} committed as failed")
    assert str(stats) in errors[1], result
    assert "No space left on device" in errors[1], result


def test_commands_that_read_work_on_a_read_only_disk(
    tmpfs: Mount, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmpfs.path / "archive"
    small_archive(archive)
    make_read_only(tmpfs)
    for arguments in (
        ["runs"],
        ["history", "asthma"],
        ["snapshot", "--out", str(tmp_path / "latest.csv")],
        ["changes", "--from", "2024-01-01"],
        ["feed", "--days", "36500"],
        ["verify"],
        ["reextract"],
    ):
        result = invoke(capsys, [*arguments, "--archive", str(archive)])
        assert (result.returncode, result.stderr) == (0, ""), (arguments, result)


@pytest.mark.parametrize("bad", DAMAGED_CASES)
def test_a_damaged_or_newer_archive_exits_3(
    bad: Case, tmp_path: Path, site: SiteServer, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "archive"
    before = small_archive(archive, runs=2)
    marker = NEWER_MARKER if bad.documented == NEWER else DAMAGED_MARKER
    (archive / "_archive.json").write_text(marker, encoding="utf-8")
    site.clear_log()
    result = invoke(capsys, fill(bad.arguments, archive=archive, site=site.base_url))
    assert_one_error_line(result, 3, bad.names)
    assert committed_runs(archive) == before
    assert site.requests == []


# --- exit 0: an empty change report is still an answer --------------------------------


@pytest.mark.parametrize("empty", EMPTY_REPORT_CASES)
def test_no_change_is_a_valid_empty_report_and_exit_0(
    empty: Case,
    unchanged_archive: tuple[Path, str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive, first, second = unchanged_archive
    said = f"No changes between {first} and {second}"
    out = tmp_path / "report"
    arguments = [*fill(empty.arguments, out=out), "--archive", str(archive)]
    result = invoke(capsys, arguments)
    assert result.returncode == 0, result
    to_file = "--out" in arguments
    if to_file:
        assert result.stdout == ""
    report = out.read_text(encoding="utf-8") if to_file else result.stdout
    if "md" in arguments and not to_file:
        assert result.stderr == ""  # the report on stdout says it
    else:
        assert result.stderr == f"{said}\n"
    if "json" in arguments:
        document = json.loads(report)
        jsonschema.Draft202012Validator(report_schema()).validate(document)
        assert (document["counts"]["total"], document["changes"]) == (0, [])
        assert (document["from"]["run_id"], document["to"]["run_id"]) == (first, second)
        assert document["topics"] == {"before": 2, "after": 2}
    else:
        assert f"{said}." in report


def test_no_change_as_a_real_process(unchanged_archive: tuple[Path, str, str]) -> None:
    archive, first, second = unchanged_archive
    result = run_cli("changes", "--archive", archive, "--format", "json", timeout=TIMEOUT)
    assert result.returncode == 0, result
    assert json.loads(result.stdout)["counts"]["total"] == 0
    assert result.stderr == f"No changes between {first} and {second}\n"


# --- the README -----------------------------------------------------------------------


ALL_CASES = [
    *CRAWL_USAGE,
    *READ_USAGE,
    *NO_ARCHIVE_CASES,
    *NOT_A_FOLDER_CASES,
    *LOCKED_CASES,
    *DISK_CASES,
    *DAMAGED_CASES,
    *EMPTY_REPORT_CASES,
]


def test_the_readme_table_documents_every_case() -> None:
    rows = readme_exit_codes()
    assert sorted(rows) == [0, 1, 2, 3]
    assert rows[0].startswith("success |")
    assert rows[1].startswith("the work ran but is incomplete or failed |")
    assert rows[2].startswith("bad usage or unreadable input, checked before anything is fetched")
    assert rows[3].startswith("the environment failed |")
    for param in ALL_CASES:
        (checked,) = param.values
        assert isinstance(checked, Case)
        assert checked.documented in rows[checked.code], (param.id, checked.code)
