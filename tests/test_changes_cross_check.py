"""`changes` carries the cross-check findings (notes, hidden changes) of the runs in the
compared range: a section in Markdown and HTML when there are any, a list in JSON always."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import jsonschema
import pytest

from crawler.commands.cli import main
from pipelines.changes.reports.json_report import report_schema
from tests.archive_factory import at, commit_run
from tests.changes_scenario import page

NOTE = "en/asthma in the XML dump, not listed by the A-Z index"
HIDDEN = "en/asthma: Learn More"
OLD_ARCHIVE = Path(__file__).parent / "fixtures" / "archive_v1"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, str]:
    """Three runs of the same page: only the middle one recorded findings."""
    root = tmp_path_factory.mktemp("cross-check")
    pages = [page("asthma")]
    first = commit_run(root, at(date(2024, 1, 10)), pages)
    noted = commit_run(root, at(date(2024, 1, 11)), pages, notes=[NOTE], hidden_changes=[HIDDEN])
    last = commit_run(root, at(date(2024, 1, 12)), pages)
    return root, first, noted, last


def _changes(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str]:
    status = main(["changes", "--archive", str(root), *argv])
    captured = capsys.readouterr()
    assert "error" not in captured.err  # an empty report says "No changes..." there
    return status, captured.out


def test_a_run_with_findings_shows_them_in_every_format(
    runs: tuple[Path, str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, first, noted, _ = runs
    points = ("--from", first, "--to", noted)
    status, markdown = _changes(capsys, root, *points)
    assert status == 0
    section = markdown.split("## Cross-check", 1)[1]
    assert f"run {noted}: {NOTE}" in section
    assert f"run {noted}: page change not in the XML dump: {HIDDEN}" in section
    assert "No changes between" in markdown  # no topic changed, yet the findings show

    _, html = _changes(capsys, root, *points, "--format", "html")
    assert '<section id="cross-check">' in html
    assert f"<code>{noted}</code>: {NOTE}" in html

    _, text = _changes(capsys, root, *points, "--format", "json")
    report = json.loads(text)
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    assert report["changes"] == []
    assert report["cross_check"] == [
        {"run_id": noted, "kind": "note", "text": NOTE},
        {"run_id": noted, "kind": "hidden_change", "text": HIDDEN},
    ]


def test_findings_do_not_change_the_exit_code(
    runs: tuple[Path, str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, first, noted, _ = runs
    status, markdown = _changes(capsys, root, "--from", first, "--to", noted, "--exit-code")
    assert status == 0
    assert "## Cross-check" in markdown


@pytest.mark.parametrize(
    ("points", "shown"),
    [
        pytest.param(("--from", "2024-01-10", "--to", "2024-01-11"), True, id="dates-around"),
        pytest.param(("--from", "2024-01-11", "--to", "2024-01-12"), False, id="dates-after"),
        pytest.param(("--from", "2024-01-09", "--to", "2024-01-10"), False, id="dates-before"),
    ],
)
def test_date_points_take_the_runs_started_in_between(
    runs: tuple[Path, str, str, str],
    capsys: pytest.CaptureFixture[str],
    points: tuple[str, ...],
    shown: bool,
) -> None:
    root, _, noted, _ = runs
    _, text = _changes(capsys, root, *points, "--format", "json")
    run_ids = {finding["run_id"] for finding in json.loads(text)["cross_check"]}
    assert run_ids == ({noted} if shown else set())


def test_runs_without_findings_give_no_section(
    runs: tuple[Path, str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, noted, last = runs
    points = ("--from", noted, "--to", last)  # the noted run is point A: not in range
    _, markdown = _changes(capsys, root, *points)
    assert "Cross-check" not in markdown
    _, html = _changes(capsys, root, *points, "--format", "html")
    assert "cross-check" not in html
    _, text = _changes(capsys, root, *points, "--format", "json")
    report = json.loads(text)
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    assert report["cross_check"] == []


def test_runs_of_an_old_archive_have_no_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """tests/fixtures/archive_v1: runs written before notes and hidden_changes existed."""
    root = tmp_path / "archive"
    shutil.copytree(OLD_ARCHIVE, root)
    status, markdown = _changes(capsys, root)
    assert status == 0
    assert "Cross-check" not in markdown
    _, text = _changes(capsys, root, "--format", "json")
    assert json.loads(text)["cross_check"] == []
