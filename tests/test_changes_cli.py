"""`medlineplus-archive changes`: defaults, formats, one-line errors with exit 2, --out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.commands.cli import main
from pipelines.changes.detection import compare
from pipelines.changes.reports import render
from pipelines.changes.reports.html import render_html
from pipelines.core.store import ArchiveStore
from pipelines.notebook import open_archive
from tests import changes_scenario
from tests.archive_factory import at, commit_run
from tests.changes_scenario import AFTER_RUN, BEFORE_RUN, page


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    changes_scenario.build(root)
    return root


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["changes", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_defaults_compare_the_previous_run_with_the_latest(
    scenario: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run(capsys, "--archive", str(scenario))
    assert (status, err) == (0, "")
    expected = render(compare(open_archive(scenario), BEFORE_RUN, AFTER_RUN), "md")
    assert out == expected


def test_the_archive_comes_from_the_environment(
    scenario: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDLINEPLUS_ARCHIVE", str(scenario))
    status, out, _ = _run(capsys, "--format", "json")
    assert status == 0
    assert json.loads(out)["to"]["run_id"] == AFTER_RUN


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(["--from", BEFORE_RUN, "--to", AFTER_RUN], (BEFORE_RUN, AFTER_RUN), id="runs"),
        pytest.param(["--to", AFTER_RUN], (BEFORE_RUN, AFTER_RUN), id="to-only"),
        pytest.param(["--from", BEFORE_RUN], (BEFORE_RUN, AFTER_RUN), id="from-only"),
        pytest.param(
            ["--from", "2024-01-01", "--to", "2024-02-29"], ("2024-01-01", "2024-02-29"), id="dates"
        ),
        pytest.param(["--from", "2024-01-01"], ("2024-01-01", AFTER_RUN), id="date-to-latest-run"),
    ],
)
def test_points(
    scenario: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: tuple[str, str]
) -> None:
    status, out, _ = _run(capsys, "--archive", str(scenario), "--format", "json", *argv)
    assert status == 0
    report = json.loads(out)
    points = tuple(report[side]["run_id"] or report[side]["date"] for side in ("from", "to"))
    assert points == expected


def test_language_and_formats(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(
        capsys, "--archive", str(scenario), "--language", "es", "--format", "json"
    )
    assert status == 0
    assert [c["slug"] for c in json.loads(out)["changes"]] == ["diabetes"]
    status, out, _ = _run(capsys, "--archive", str(scenario), "--format", "html")
    assert status == 0
    assert out.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--from", "nope"], "--from: no committed run 'nope'", id="unknown-from"),
        pytest.param(["--to", "20990101T000000Z-0000"], "--to: no committed run", id="unknown-to"),
        pytest.param(["--from", "2024-02-30"], "--from: bad date '2024-02-30'", id="bad-date"),
        pytest.param(["--to", "2024-03-01"], "--from is needed when --to is a date", id="to-date"),
        pytest.param(["--to", BEFORE_RUN], "is the first committed run", id="to-first-run"),
        pytest.param(["--out", "/nonexistent/dir/report.md"], "no such directory", id="out-dir"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    scenario: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = _run(capsys, "--archive", str(scenario), *argv)
    assert (status, out) == (2, "")
    assert err.startswith("error: ")
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--language", "fr"], id="bad-language"),
        pytest.param(["--format", "pdf"], id="bad-format"),
    ],
)
def test_bad_choices_exit_2(
    scenario: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["changes", "--archive", str(scenario), *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"invalid choice: '{argv[1]}'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("runs", [pytest.param(0, id="no-run"), pytest.param(1, id="one-run")])
def test_fewer_than_two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str], runs: int) -> None:
    with ArchiveStore.open(tmp_path):
        pass
    if runs:
        commit_run(tmp_path, at(changes_scenario.BEFORE_DAY), [page("asthma")])
    status, out, err = _run(capsys, "--archive", str(tmp_path))
    assert (status, out) == (2, "")
    assert err == (
        f"error: {tmp_path} has {runs} committed run{'' if runs == 1 else 's'}; comparing needs "
        "two (crawl again, or pass --from and --to dates)\n"
    )


def test_a_missing_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, "--archive", str(tmp_path / "absent"))
    assert status == 2
    assert err.startswith("error: no archive at")
    assert len(err.strip().splitlines()) == 1


def test_out_writes_the_report_atomically(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "report.html"
    target.write_text("old report", encoding="utf-8")
    status, out, _ = _run(
        capsys, "--archive", str(scenario), "--format", "html", "--out", str(target)
    )
    assert (status, out) == (0, "")
    # The scenario keeps no raw pages: no archived copy is written, each is "not kept".
    expected = render_html(compare(open_archive(scenario), BEFORE_RUN, AFTER_RUN), {})
    assert target.read_text(encoding="utf-8") == expected
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.html"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    scenario: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "report.md"
    target.write_text("old report", encoding="utf-8")

    def refuse(self: Path, other: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", refuse)
    status, _, err = _run(capsys, "--archive", str(scenario), "--out", str(target))
    assert status == 3  # the environment failed: a full disk, not bad usage
    assert err == f"error: --out: cannot write {target}: No space left on device\n"
    assert target.read_text(encoding="utf-8") == "old report"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.md"]


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["changes", "--help"])
    assert exit_.value.code == 0
    assert "--from RUN_ID|DATE" in capsys.readouterr().out
