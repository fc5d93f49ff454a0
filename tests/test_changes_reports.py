"""Change reports: golden Markdown and JSON, the JSON schema, escaping, self-containment.

The golden files in tests/fixtures/reports/ are the reports of tests/changes_scenario.py.
After an intended change of the reports, rewrite them with
`UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_changes_reports.py` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import lxml.html
import pandas as pd
import pytest

from crawler.commands import changes as changes_command
from pipelines.changes.detection import CHANGED_FIELDS, ChangeSet, compare
from pipelines.changes.reports import REPORT_FORMATS, render
from pipelines.changes.reports.json_report import report_json, report_schema
from pipelines.notebook import open_archive
from tests import changes_scenario
from tests.archive_factory import at, commit_run
from tests.changes_scenario import AFTER_RUN, BEFORE_RUN, page

GOLDEN = Path(__file__).parent / "fixtures" / "reports"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reports")
    changes_scenario.build(root)
    return root


@pytest.fixture(scope="module")
def forward(scenario: Path) -> ChangeSet:
    return compare(open_archive(scenario), BEFORE_RUN, AFTER_RUN)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> ChangeSet:
    """A topic whose page text tries to inject markup and scripts."""
    root = tmp_path_factory.mktemp("hostile")
    first = page("evil", title="<script>alert(1)</script> & *bold*", text="Plain text.")
    second = page(
        "evil",
        title="<script>alert(1)</script> & *bold*",
        last_updated=date(2024, 2, 1),
        text='Now <img src="https://tracker.example/x.png" onerror="alert(2)"> [x](javascript:y)',
        also_called=['"><style>body{display:none}</style>'],
        links=[
            *first.links,
            changes_scenario._link(
                "Start Here", 3, "<b>Click</b>", "javascript:alert(3)", "<i>Org</i>"
            ),
        ],
    )
    a = commit_run(root, at(date(2024, 1, 10)), [first])
    b = commit_run(root, at(date(2024, 2, 10)), [second])
    return compare(open_archive(root), a, b)


def _check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path} differs; if intended, rerun with UPDATE_GOLDEN=1"


# --- golden files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "report_format", [pytest.param("md", id="md"), pytest.param("json", id="json")]
)
def test_golden_report(forward: ChangeSet, report_format: Any) -> None:
    _check_golden(f"changes.{report_format}", render(forward, report_format))


def test_golden_reports_cover_every_kind_and_field_family() -> None:
    report = json.loads((GOLDEN / "changes.json").read_text(encoding="utf-8"))
    assert {change["kind"] for change in report["changes"]} == {
        "added",
        "removed",
        "updated",
        "same_date_edit",
        "date_only",
    }
    link_changes = {
        entry["change"]
        for change in report["changes"]
        for entry in change["fields"].get("links", [])
    }
    assert link_changes == {"added", "removed", "moved", "edited"}
    fields = {name for change in report["changes"] for name in change["changed_fields"]}
    assert {
        "title",
        "summary",
        "also_called",
        "institute",
        "related_topics",
        "clinical_trials",
    } <= fields


@pytest.mark.parametrize("report_format", [pytest.param(f, id=f) for f in REPORT_FORMATS])
def test_reports_are_deterministic(scenario: Path, report_format: Any) -> None:
    first = render(compare(open_archive(scenario), BEFORE_RUN, AFTER_RUN), report_format)
    second = render(compare(open_archive(scenario), BEFORE_RUN, AFTER_RUN), report_format)
    assert first == second


# --- JSON -----------------------------------------------------------------------------


def _validate(report: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(report_schema()).validate(report)


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(report_schema())


def test_json_reports_validate_against_the_schema(
    scenario: Path, forward: ChangeSet, hostile: ChangeSet
) -> None:
    archive = open_archive(scenario)
    _validate(json.loads(render(forward, "json")))
    _validate(report_json(compare(archive, AFTER_RUN, BEFORE_RUN)))
    _validate(report_json(compare(archive, AFTER_RUN, AFTER_RUN)))
    _validate(report_json(compare(archive, date(2024, 1, 1), None, language="es")))
    _validate(report_json(hostile))


def test_the_schema_rejects_what_the_docs_forbid(forward: ChangeSet) -> None:
    report = report_json(forward)
    report["changes"][0]["kind"] = "renamed"
    with pytest.raises(jsonschema.ValidationError):
        _validate(report)
    report = report_json(forward)
    report["changes"][0]["fields"]["surprise"] = {}
    with pytest.raises(jsonschema.ValidationError):
        _validate(report)


def test_the_schema_names_every_field() -> None:
    schema = report_schema()
    assert list(schema["$defs"]["fields"]["properties"]) == list(CHANGED_FIELDS)
    changed_fields = schema["$defs"]["topic_change"]["properties"]["changed_fields"]
    assert changed_fields["items"]["enum"] == list(CHANGED_FIELDS)


def _jsonish(value: Any) -> Any:
    """A frame cell as the JSON report writes it."""
    if isinstance(value, dict):
        return {key: _jsonish(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonish(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    if value is None or (not isinstance(value, str | int) and pd.isna(value)):
        return None
    return value


def test_the_frame_holds_the_same_data_as_the_json(scenario: Path, forward: ChangeSet) -> None:
    frame = open_archive(scenario).changes(BEFORE_RUN, AFTER_RUN)
    report = report_json(forward)
    assert len(frame) == len(report["changes"])
    for row, change in zip(frame.to_dict("records"), report["changes"], strict=True):
        for column in ("language", "slug", "kind", "title", "url", "changed_fields"):
            assert _jsonish(row[column]) == change[column]
        for side in ("before", "after"):
            version = {
                name: _jsonish(row[f"{side}_{name}"])
                for name in ("last_updated", "content_hash", "run_id")
            }
            expected = change[side] or dict.fromkeys(version)
            assert version == expected
        for name in CHANGED_FIELDS:
            cell = _jsonish(row[f"diff_{name}"])
            assert cell == change["fields"].get(name), name


# --- escaping and self-containment ----------------------------------------------------


def test_html_escapes_page_text(hostile: ChangeSet) -> None:
    page_html = render(hostile, "html")
    assert "<script" not in page_html
    assert "<img" not in page_html
    assert "<style>body" not in page_html
    assert "<b>Click" not in page_html
    assert 'href="javascript:' not in page_html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; *bold*" in page_html
    assert "&lt;img src=&quot;https://tracker.example/x.png&quot;" in page_html
    assert "&lt;b&gt;Click&lt;/b&gt;" in page_html


def test_markdown_escapes_page_text(hostile: ChangeSet) -> None:
    text = render(hostile, "md")
    assert "### \\<script\\>alert(1)\\</script\\> & \\*bold\\*" in text
    assert not re.search(r"(?<!\\)<(img|style|b|i)\b", text)  # every "<" of page text escaped
    assert "\\<img src=" in text
    assert "\\[x\\](javascript:y)" in text
    assert "<javascript:alert(3)>" not in text  # only http(s) URLs become autolinks


_LOADING_ELEMENTS = ("script", "link", "img", "iframe", "object", "embed", "video", "audio")


def assert_self_contained(page_html: str) -> None:
    """No element, attribute or style that would fetch anything, and no script."""
    document = lxml.html.document_fromstring(page_html)
    for name in _LOADING_ELEMENTS:
        assert not document.xpath(f"//{name}"), name
    assert not document.xpath("//@src | //@srcset | //@background | //@poster")
    assert not document.xpath("//@*[starts-with(name(), 'on')]")
    styles = " ".join(document.xpath("//style/text() | //@style"))
    assert "url(" not in styles
    assert "@import" not in styles
    for href in document.xpath("//a/@href"):
        assert href.startswith(("https://", "http://", "#")), href


def test_html_is_self_contained(forward: ChangeSet, hostile: ChangeSet) -> None:
    for change_set in (forward, hostile):
        page_html = render(change_set, "html")
        assert_self_contained(page_html)
        assert "Content-Security-Policy" in page_html
        assert "<svg" in page_html


def test_an_empty_report(scenario: Path) -> None:
    empty = compare(open_archive(scenario), AFTER_RUN, AFTER_RUN)
    said = f"No changes between {AFTER_RUN} and {AFTER_RUN}."
    assert said in render(empty, "md")
    assert said in render(empty, "html")
    assert json.loads(render(empty, "json"))["counts"]["total"] == 0


def test_markdown_shortens_long_unchanged_text(tmp_path: Path) -> None:
    words = " ".join(f"w{n}" for n in range(60))
    a = commit_run(tmp_path, at(date(2024, 1, 10)), [page("long", text=f"{words} old end")])
    b = commit_run(
        tmp_path,
        at(date(2024, 2, 10)),
        [page("long", last_updated=date(2024, 2, 1), text=f"{words} new end")],
    )
    text = render(compare(open_archive(tmp_path), a, b), "md")
    assert "> … w52 w53 w54 w55 w56 w57 w58 w59 [-old-] {+new+} end" in text
    assert "w10" not in text


def test_the_command_offers_every_report_format() -> None:
    assert (*REPORT_FORMATS, "atom") == changes_command.FORMATS
