"""The archived page, through the command line: `page` writes a topic's raw page as the
site served it (its version as of a date or run), and the HTML change report links to
archived copies of the versions it compares, written beside it.

One archive for the module: the fixture site (a copy, over file://) crawled, then crawled
again after asthma's page got a new date and an edited sentence, so en/asthma has two
versions whose served bytes are known (the two files).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import lxml.html
import pytest

from crawler.commands.cli import main
from pipelines.notebook import open_archive
from tests.crawl_runner import crawl
from tests.page_edits import with_date, with_text
from tests.site_server import copy_site

FIRST_DAY = date(2024, 7, 19)
"""asthma.html's date in the fixture site."""
SECOND_DAY = date(2024, 9, 2)
"""Its date after the edit."""


@dataclass(frozen=True)
class TwoVersions:
    archive: Path
    first_run: str
    second_run: str
    first_page: bytes
    """en/asthma as served in the first run."""
    second_page: bytes
    """en/asthma as served in the second."""


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> TwoVersions:
    work = tmp_path_factory.mktemp("page")
    site = copy_site(work / "site")
    archive = work / "archive"
    asthma = site / "asthma.html"
    first_page = asthma.read_bytes()
    result = crawl(site.as_uri(), archive, "--delay", "0")
    assert result.returncode == 0, result
    edited = with_date(first_page.decode("utf-8"), SECOND_DAY)
    edited = with_text(edited, "Symptoms can range from mild", "Symptoms can range from very mild")
    asthma.write_bytes(edited.encode("utf-8"))
    result = crawl(site.as_uri(), archive, "--delay", "0")
    assert result.returncode == 0, result
    first_run, second_run = open_archive(archive).run_ids
    return TwoVersions(archive, first_run, second_run, first_page, asthma.read_bytes())


def cli(capsys: pytest.CaptureFixture[str], *arguments: str | Path) -> tuple[int, str, str]:
    status = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def title_of(page: bytes) -> str:
    title = lxml.html.document_fromstring(page).findtext(".//title")
    assert title is not None
    return title


def test_page_writes_the_current_version_as_served(
    two_versions: TwoVersions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "asthma.html"
    status, stdout, stderr = cli(
        capsys, "page", "asthma", "--archive", two_versions.archive, "--out", out
    )
    assert (status, stderr) == (0, "")
    assert out.read_bytes() == two_versions.second_page
    stored = open_archive(two_versions.archive).topic("asthma")
    (stored_title,) = stored["title"]
    assert stored_title == "Asthma"
    assert title_of(out.read_bytes()).startswith(stored_title)
    assert f"en/asthma {SECOND_DAY.isoformat()}" in stdout
    assert two_versions.second_run in stdout


def test_a_spanish_page_has_its_own_title(
    two_versions: TwoVersions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "asma.html"
    arguments = ("page", "asthma", "--language", "es", "--archive", two_versions.archive)
    status, _, stderr = cli(capsys, *arguments, "--out", out)
    assert (status, stderr) == (0, "")
    (stored_title,) = open_archive(two_versions.archive).topic("asthma", "es")["title"]
    assert stored_title == "Asma"
    assert title_of(out.read_bytes()).startswith(stored_title)
    assert out.read_bytes() != two_versions.first_page


@pytest.mark.parametrize(
    ("as_of", "version"),
    [
        pytest.param("first_run", "first_page", id="first-run"),
        pytest.param("second_run", "second_page", id="second-run"),
        pytest.param(FIRST_DAY.isoformat(), "first_page", id="first-day"),
        pytest.param("2024-09-01", "first_page", id="day-before-the-second"),
        pytest.param(SECOND_DAY.isoformat(), "second_page", id="second-day"),
        pytest.param("latest", "second_page", id="latest"),
    ],
)
def test_as_of_picks_the_version(
    two_versions: TwoVersions,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    as_of: str,
    version: str,
) -> None:
    point = getattr(two_versions, as_of, as_of)
    out = tmp_path / "asthma.html"
    arguments = ("page", "asthma", "--archive", two_versions.archive, "--as-of", point)
    status, _, stderr = cli(capsys, *arguments, "--out", out)
    assert (status, stderr) == (0, "")
    assert out.read_bytes() == getattr(two_versions, version)


def test_no_version_as_of_a_date_exits_2(
    two_versions: TwoVersions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "asthma.html"
    arguments = ("page", "asthma", "--archive", two_versions.archive, "--as-of", "2024-07-18")
    status, stdout, stderr = cli(capsys, *arguments, "--out", out)
    assert (status, stdout) == (2, "")
    assert stderr.startswith("error: topic en/asthma had no live version as of 2024-07-18")
    assert len(stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_out_dash_writes_the_bytes_to_stdout(
    two_versions: TwoVersions, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    arguments = ["page", "asthma", "--archive", str(two_versions.archive), "--out", "-"]
    assert main(arguments) == 0
    captured = capsysbinary.readouterr()
    assert captured.out == two_versions.second_page
    assert b"to standard output" in captured.err


# --- the HTML change report's archived copies ------------------------------------------


def test_the_report_links_the_archived_copies_written_beside_it(
    two_versions: TwoVersions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.html"
    arguments = ("changes", "--archive", two_versions.archive, "--format", "html")
    status, stdout, stderr = cli(capsys, *arguments, "--out", report)
    assert (status, stdout, stderr) == (0, "", "")
    dom = lxml.html.document_fromstring(report.read_bytes())
    (article,) = dom.xpath("//article[@class='topic']")
    assert article.get("id") == "topic-en-asthma"
    archived = {a.get("data-side"): a.get("href") for a in article.xpath(".//a[@class='archived']")}
    assert set(archived) == {"before", "after"}
    for side, page in (("before", two_versions.first_page), ("after", two_versions.second_page)):
        href = archived[side]
        assert not href.startswith(("/", "file:", "http")), href  # relative
        assert href.startswith("report_pages/en/asthma-"), href
        copy = tmp_path / unquote(href)
        assert copy.read_bytes() == page
    files = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*"))
    assert files == sorted(
        ["report.html", "report_pages", "report_pages/en", *(unquote(h) for h in archived.values())]
    )
    assert article.xpath(".//a[@class='live']/@href") == ["https://medlineplus.gov/asthma.html"]
    # Linked, never inlined: nothing of the archived pages is in the report.
    assert not dom.xpath("//iframe | //object | //embed | //script")
    assert b"Symptoms can range from very mild" not in report.read_bytes()


def test_the_report_shows_human_dates_beside_iso_ones(
    two_versions: TwoVersions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.html"
    arguments = ("changes", "--archive", two_versions.archive, "--format", "html")
    assert cli(capsys, *arguments, "--out", report)[0] == 0
    dom = lxml.html.document_fromstring(report.read_bytes())
    (meta,) = dom.xpath("//article[@id='topic-en-asthma']/p[@class='meta']")
    text = " ".join(meta.text_content().split())
    assert "2024-07-19 (19 July 2024)" in text
    assert "2024-09-02 (2 September 2024)" in text
    (dates,) = dom.xpath("//article[@id='topic-en-asthma']//dd[@class='field-last_updated']")
    assert " ".join(dates.text_content().split()) == (
        "2024-07-19 (19 July 2024) → 2024-09-02 (2 September 2024)"
    )


def test_a_report_on_stdout_has_no_archived_copies_and_says_so(
    two_versions: TwoVersions,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    arguments = ("changes", "--archive", two_versions.archive, "--format", "html")
    status, stdout, _ = cli(capsys, *arguments)
    assert status == 0
    dom = lxml.html.document_fromstring(stdout)
    assert not dom.xpath("//a[@class='archived']")
    (note,) = dom.xpath("//*[@id='no-archived-copies']")
    assert "without archived copies" in note.text_content()
    assert dom.xpath("//article[@id='topic-en-asthma']//a[@class='live']")
    assert list(tmp_path.iterdir()) == []


def test_a_second_report_replaces_its_copies(
    two_versions: TwoVersions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.html"
    arguments = ("changes", "--archive", two_versions.archive, "--format", "html", "--out", report)
    assert cli(capsys, *arguments)[0] == 0
    (copy,) = (tmp_path / "report_pages" / "en").glob(f"asthma-{SECOND_DAY.isoformat()}-*.html")
    copy.write_bytes(b"tampered")
    assert cli(capsys, *arguments)[0] == 0
    assert copy.read_bytes() == two_versions.second_page


def test_a_copies_path_that_is_no_directory_exits_2_before_writing(
    two_versions: TwoVersions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.html"
    (tmp_path / "report_pages").write_text("in the way\n", encoding="utf-8")
    arguments = ("changes", "--archive", two_versions.archive, "--format", "html", "--out", report)
    status, stdout, stderr = cli(capsys, *arguments)
    assert (status, stdout) == (2, "")
    assert stderr.startswith("error: --out: ")
    assert "report_pages" in stderr
    assert len(stderr.splitlines()) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report_pages"]


def test_copies_sit_beside_the_file_a_symlinked_report_points_to(
    two_versions: TwoVersions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "dated.html").write_text("old\n", encoding="utf-8")
    link = tmp_path / "latest.html"
    link.symlink_to(reports / "dated.html")
    arguments = ("changes", "--archive", two_versions.archive, "--format", "html", "--out", link)
    assert cli(capsys, *arguments)[0] == 0
    assert link.is_symlink()
    dom = lxml.html.document_fromstring((reports / "dated.html").read_bytes())
    for href in dom.xpath("//a[@class='archived']/@href"):
        assert (reports / unquote(href)).is_file(), href
    assert not (tmp_path / "latest_pages").exists()


def test_a_damaged_raw_page_exits_3_and_writes_no_report(
    two_versions: TwoVersions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "archive"
    shutil.copytree(two_versions.archive, archive)
    warc = archive / "warc" / f"{two_versions.first_run}.warc.gz"
    with warc.open("r+b") as stream:
        stream.truncate(1000)  # the first run's records, asthma's first version among them
    out = tmp_path / "out"
    out.mkdir()
    report = out / "report.html"
    status, stdout, stderr = cli(
        capsys, "changes", "--archive", archive, "--format", "html", "--out", report
    )
    assert (status, stdout) == (3, "")
    assert stderr.startswith(f"error: {warc}: ")
    assert len(stderr.splitlines()) == 1
    assert list(out.iterdir()) == []
    arguments = ("page", "asthma", "--archive", archive, "--as-of", two_versions.first_run)
    status, _, stderr = cli(capsys, *arguments, "--out", out / "asthma.html")
    assert status == 3
    assert len(stderr.splitlines()) == 1
    assert list(out.iterdir()) == []
