"""Golden tests: each hand-written page in fixtures/pages against the JSON beside it.

A valid page's `<name>.expected.json` is the whole item as `to_jsonable` renders it; a
broken page's holds `{"error": {"field": ..., "reason_contains": ...}}`. A mismatch is
reported field by field (only the differing ones), so one wrong value reads as one line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from crawler.parsing import parse_health_topic
from crawler.parsing.errors import ExtractionError
from crawler.parsing.items import to_jsonable

PAGES = Path(__file__).parent / "fixtures" / "pages"
_CANONICAL = re.compile(r"""<link\s+rel=["']canonical["']\s+href=["']([^"']+)["']""", re.I)


def _fixture_params() -> list[Any]:
    return [pytest.param(path, id=path.stem) for path in sorted(PAGES.glob("*.html"))]


FIXTURES = _fixture_params()


def _expected(page: Path) -> dict[str, Any]:
    expected: dict[str, Any] = json.loads(
        page.with_name(f"{page.stem}.expected.json").read_text(encoding="utf-8")
    )
    return expected


def _page_url(page: Path) -> str:
    """The page's canonical URL, read with a plain regex (not the parser's code)."""
    match = _CANONICAL.search(page.read_text(encoding="utf-8"))
    return match[1] if match else f"https://medlineplus.gov/{page.stem}.html"


def field_diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    """One line per differing leaf: `links[2].url: expected '...', got '...'`."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines = []
        for key in [*expected, *(k for k in actual if k not in expected)]:
            where = f"{path}.{key}" if path else key
            if key not in actual:
                lines.append(f"{where}: missing (expected {expected[key]!r})")
            elif key not in expected:
                lines.append(f"{where}: unexpected (got {actual[key]!r})")
            else:
                lines += field_diff(expected[key], actual[key], where)
        return lines
    if (
        isinstance(expected, list)
        and isinstance(actual, list)
        and len(expected) == len(actual)
        and any(isinstance(part, dict | list) for part in expected)
    ):
        return [
            line
            for i, (want, got) in enumerate(zip(expected, actual, strict=True))
            for line in field_diff(want, got, f"{path}[{i}]")
        ]
    if expected != actual:
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return []


def test_fixtures_are_paired() -> None:
    pages = {path.stem for path in PAGES.glob("*.html")}
    expectations = {path.name.removesuffix(".expected.json") for path in PAGES.glob("*.json")}
    assert pages == expectations
    assert len(pages) >= 8


@pytest.mark.parametrize("page", FIXTURES)
def test_page_matches_expected_json(page: Path) -> None:
    expected = _expected(page)
    url = _page_url(page)
    if "error" in expected:
        with pytest.raises(ExtractionError) as raised:
            parse_health_topic(page.read_bytes(), url)
        error = raised.value
        assert error.field == expected["error"]["field"]
        assert expected["error"]["reason_contains"] in error.reason
        assert error.url == url
        assert url in str(error)
        return
    actual = to_jsonable(parse_health_topic(page.read_bytes(), url))
    differences = field_diff(expected, actual)
    if differences:
        pytest.fail(f"{page.name} differs from its expected JSON:\n" + "\n".join(differences))


@pytest.mark.parametrize("page", FIXTURES)
def test_text_input_parses_like_bytes(page: Path) -> None:
    """A page handed over already decoded gives the same item (or the same error)."""
    url = _page_url(page)
    results = []
    for body in (page.read_bytes(), page.read_text(encoding="utf-8")):
        try:
            results.append(to_jsonable(parse_health_topic(body, url)))
        except ExtractionError as error:
            results.append((error.field, error.reason))
    assert results[0] == results[1]


def test_field_diff_names_only_the_differing_fields() -> None:
    expected = {"title": "A", "links": [{"url": "u1", "badges": []}], "slug": "a"}
    actual = {"title": "B", "links": [{"url": "u2", "badges": []}], "slug": "a"}
    assert field_diff(expected, actual) == [
        "title: expected 'A', got 'B'",
        "links[0].url: expected 'u1', got 'u2'",
    ]
