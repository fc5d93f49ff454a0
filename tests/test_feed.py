"""Watching the archive from the command line: `--version`, `changes --exit-code`, and the
Atom feed (`changes --format atom`, `feed --days N`), read back with feedparser."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import feedparser
import lxml.etree
import pytest

from crawler.commands.cli import build_parser, main
from pipelines.changes.detection import compare
from pipelines.changes.reports.atom import ATOM_NAMESPACE
from pipelines.notebook import open_archive
from tests import changes_scenario
from tests.archive_factory import at, commit_run, make_page
from tests.changes_scenario import AFTER_RUN, BEFORE_RUN

ATOM = {"a": ATOM_NAMESPACE}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs, 2024-01-10 and 2024-03-05, with every kind of change."""
    root = tmp_path_factory.mktemp("scenario")
    changes_scenario.build(root)
    return root


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs that found the same pages."""
    root = tmp_path_factory.mktemp("unchanged")
    pages = [make_page("asthma"), make_page("copd")]
    commit_run(root, at(date(2024, 1, 10)), pages)
    commit_run(root, at(date(2024, 1, 11)), pages)
    return root


HOSTILE_TITLE = 'Flu <script>alert("x")</script> & co\x0b'


@pytest.fixture(scope="module")
def recent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three runs ending 40, 20 and 2 days ago (each ends an hour after it starts): the
    second updates asthma and removes copd, the third adds flu (a title full of markup
    and a control character XML cannot hold)."""
    root = tmp_path_factory.mktemp("recent")
    now = datetime.now(UTC).replace(microsecond=0)
    asthma = make_page("asthma")
    copd = make_page("copd")
    asthma_v2 = make_page("asthma", last_updated=date(2024, 2, 1), text="Asthma, revised.")
    flu = make_page("flu", title=HOSTILE_TITLE, text="Flu is contagious.")
    commit_run(root, now - timedelta(days=40), [asthma, copd])
    commit_run(root, now - timedelta(days=20), [asthma_v2], gone=[("en", "copd")])
    commit_run(root, now - timedelta(days=2), [asthma_v2, flu])
    return root


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _parsed(text: str) -> Any:
    """The feed read by feedparser, checked well-formed Atom 1.0 (bozo 0)."""
    parsed = feedparser.parse(text)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def _check_required_elements(text: str) -> None:
    """RFC 4287's required elements: feed id, title, updated, author; each entry's id,
    title, updated (exactly one each), and here a link to the page and a summary."""
    feed = lxml.etree.fromstring(text.encode())
    assert feed.tag == f"{{{ATOM_NAMESPACE}}}feed"
    for name in ("id", "title", "updated", "author/a:name"):
        assert len(feed.xpath(f"a:{name}", namespaces=ATOM)) == 1, name
    for entry in feed.xpath("a:entry", namespaces=ATOM):
        for name in ("id", "title", "updated", "summary", "link[@rel='alternate']"):
            assert len(entry.xpath(f"a:{name}", namespaces=ATOM)) == 1, name


def _entry(parsed: Any, url: str) -> Any:
    (entry,) = [entry for entry in parsed.entries if entry.link == url]
    return entry


# --- --version ------------------------------------------------------------------------


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    expected = metadata.version("medlineplus-archive")
    assert capsys.readouterr().out == f"medlineplus-archive {expected}\n"


# --- changes --exit-code --------------------------------------------------------------


def test_exit_code_is_1_when_something_changed(
    scenario: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _cli(capsys, "changes", "--archive", str(scenario), "--exit-code")
    assert (status, err) == (1, "")
    assert "## Updated (1)" in out  # the report is written as without the option
    status, _, _ = _cli(capsys, "changes", "--archive", str(scenario))
    assert status == 0


def test_exit_code_is_0_when_nothing_changed(
    unchanged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _cli(capsys, "changes", "--archive", str(unchanged), "--exit-code")
    assert status == 0
    assert "No changes between" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--from", "nope"], "no committed run 'nope'", id="unknown-run"),
        pytest.param(["--format", "pdf"], "invalid choice", id="bad-format"),
        pytest.param(["--archive", "/nonexistent/archive"], "no archive", id="no-archive"),
    ],
)
def test_exit_code_is_2_on_errors(
    scenario: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    try:
        status = main(["changes", "--archive", str(scenario), "--exit-code", *argv])
    except SystemExit as exit_:  # argparse's own errors
        status = int(str(exit_.code))
    captured = capsys.readouterr()
    assert (status, captured.out) == (2, "")
    assert captured.err.startswith("error: ")
    assert message in captured.err


def test_exit_code_keeps_3_for_a_failed_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_folder = tmp_path / "archive"
    not_a_folder.write_text("a file", encoding="utf-8")
    status, _, err = _cli(capsys, "changes", "--archive", str(not_a_folder), "--exit-code")
    assert status == 3
    assert err.startswith("error: ")


# --- changes --format atom -------------------------------------------------------------


def test_changes_as_atom_has_an_entry_per_changed_topic(
    scenario: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _cli(capsys, "changes", "--archive", str(scenario), "--format", "atom")
    assert status == 0
    _check_required_elements(out)
    parsed = _parsed(out)
    expected = compare(open_archive(scenario), BEFORE_RUN, AFTER_RUN)
    assert sorted((entry.link, entry.tags[0].term) for entry in parsed.entries) == sorted(
        (change.url, change.kind) for change in expected.changes
    )
    asthma_change = next(change for change in expected.changes if change.slug == "asthma")
    asthma = _entry(parsed, "https://medlineplus.gov/asthma.html")
    assert asthma.title == "Updated: Asthma (en)"
    # The after run started 2024-03-05 00:00 UTC and ended an hour later.
    assert asthma.updated == "2024-03-05T01:00:00Z"
    assert parsed.feed.updated == "2024-03-05T01:00:00Z"
    summary = asthma_change.fields.summary
    assert summary is not None
    assert f"Summary: {summary.words_added} words added, {summary.words_removed} removed" in (
        asthma.summary
    )
    assert "Last updated: 2024-01-10 → 2024-03-01" in asthma.summary
    assert 'Links: added "Asthma Action Plan <PDF>"' in asthma.summary
    copd = _entry(parsed, "https://medlineplus.gov/copd.html")
    assert 'Title: "COPD" → "COPD (Chronic Obstructive Pulmonary Disease)"' in copd.summary
    ids = [entry.id for entry in parsed.entries]
    assert len(set(ids)) == len(ids)
    assert all(entry_id.startswith("urn:uuid:") for entry_id in [*ids, parsed.feed.id])


def test_the_same_archive_gives_the_same_feed(
    scenario: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["changes", "--archive", str(scenario), "--format", "atom"]
    _, first, _ = _cli(capsys, *argv)
    _, second, _ = _cli(capsys, *argv)
    assert first == second
    spanish = _parsed(_cli(capsys, *argv, "--language", "es")[1])
    everything = _parsed(first)
    assert spanish.feed.id != everything.feed.id
    # The Spanish topic's change is the same change, with the same id, in both feeds.
    (es_entry,) = spanish.entries
    assert es_entry.id == _entry(everything, "https://medlineplus.gov/spanish/diabetes.html").id


# --- feed -----------------------------------------------------------------------------


def _feed(capsys: pytest.CaptureFixture[str], archive: Path, *argv: str) -> tuple[str, Any]:
    status, out, err = _cli(capsys, "feed", "--archive", str(archive), *argv)
    assert (status, err) == (0, "")
    _check_required_elements(out)
    return out, _parsed(out)


def test_feed_takes_the_runs_of_the_last_n_days(
    recent: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, last_5 = _feed(capsys, recent, "--days", "5")
    assert [(entry.link, entry.tags[0].term) for entry in last_5.entries] == [
        ("https://medlineplus.gov/flu.html", "added")
    ]
    _, last_30 = _feed(capsys, recent)  # the default: 30 days
    assert sorted((entry.link, entry.tags[0].term) for entry in last_30.entries) == [
        ("https://medlineplus.gov/asthma.html", "updated"),
        ("https://medlineplus.gov/copd.html", "removed"),
        ("https://medlineplus.gov/flu.html", "added"),
    ]
    newest = max(entry.updated for entry in last_30.entries)
    assert last_30.feed.updated == newest == last_5.entries[0].updated
    _, last_day = _feed(capsys, recent, "--days", "1")
    assert last_day.entries == []
    # The first run has nothing before it to compare with: no entry, however far back.
    _, everything = _feed(capsys, recent, "--days", "365")
    assert len(everything.entries) == len(last_30.entries)


def test_feed_ids_are_stable(recent: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = recent.parent / "feed.xml"
    status, out, err = _cli(capsys, "feed", "--archive", str(recent), "--out", str(path))
    assert (status, out, err) == (0, "", "")
    written = path.read_text(encoding="utf-8")
    again, last_30 = _feed(capsys, recent, "--out", "-")
    assert written == again
    assert [entry.id for entry in _parsed(written).entries] == [
        entry.id for entry in last_30.entries
    ]
    _, last_5 = _feed(capsys, recent, "--days", "5")
    flu = _entry(last_30, "https://medlineplus.gov/flu.html")
    assert last_5.entries[0].id == flu.id  # the window does not change an entry's id
    assert last_5.feed.id == last_30.feed.id
    # `changes --format atom` (the latest run against the one before) gives the same ids.
    _, report, _ = _cli(capsys, "changes", "--archive", str(recent), "--format", "atom")
    assert [entry.id for entry in _parsed(report).entries] == [flu.id]


def test_page_text_cannot_break_the_feed(recent: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, parsed = _feed(capsys, recent, "--days", "5")
    (flu,) = parsed.entries
    assert flu.title == f"Added: {HOSTILE_TITLE.replace(chr(11), '')} (en)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--days", "0"], "--days must be at least 1", id="zero-days"),
        pytest.param(["--days", "ten"], "invalid int value", id="not-a-number"),
        pytest.param(["--out", "/nonexistent/dir/feed.xml"], "no such directory", id="out-dir"),
        pytest.param(["--archive", "/nonexistent/archive"], "no archive", id="no-archive"),
    ],
)
def test_feed_bad_input_is_one_line_and_exit_2(
    recent: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    try:
        status = main(["feed", "--archive", str(recent), *argv])
    except SystemExit as exit_:  # argparse's own errors
        status = int(str(exit_.code))
    captured = capsys.readouterr()
    assert (status, captured.out) == (2, "")
    assert captured.err.startswith("error: ")
    assert message in captured.err
    assert captured.err.count("\n") == 1


# --- the README's schedule ------------------------------------------------------------

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_schedule_examples_are_valid_command_lines() -> None:
    """Every command of "Run it every day" (cron line, systemd units, the script) parses,
    and every crawl there notifies."""
    section = re.split(r"\n#{2,3} ", README.split("### Run it every day", 1)[1])[0]
    commands = re.findall(r"bin/medlineplus-archive ((?:crawl|feed|changes)\b[^;|>\n]*)", section)
    assert sorted({command.split()[0] for command in commands}) == ["changes", "crawl", "feed"]
    for command in commands:
        args = build_parser().parse_args(shlex.split(command))
        if args.command == "crawl":
            assert args.notify, command
