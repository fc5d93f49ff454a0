"""The validate pipeline refuses, field by field, what the archive's tables would refuse:
it applies the schema's own checks (`pipelines.core.schema.value_checker`)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from crawler.parsing.items import Institute, PageFailed
from pipelines.core.records import VersionRecord
from pipelines.core.schema import topics_table
from pipelines.validate import ValidatePipeline, problems
from tests.archive_factory import make_page, make_sparse_page


@pytest.mark.parametrize(
    "page",
    [pytest.param(make_page(), id="full"), pytest.param(make_sparse_page(), id="sparse")],
)
def test_a_complete_page_has_no_problems(page: Any) -> None:
    assert problems(page) == []
    assert ValidatePipeline().process_item(page) is page


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        pytest.param("title", 5, "expected str, got int", id="not-a-string"),
        pytest.param("language", "fr", "'fr' is not one of", id="unknown-language"),
        pytest.param("also_called", "Asthma", "expected a list", id="not-a-list"),
        pytest.param("also_called", ["a", 3], "expected str, got int", id="bad-list-entry"),
        pytest.param("last_updated", datetime(2024, 1, 1), "expected a date", id="datetime"),
        pytest.param("primary_institute", "NIH", "has no attribute", id="part-not-a-part"),
        pytest.param(
            "primary_institute",
            Institute(name=None, url="https://nih.gov/"),
            "Institute.name is missing",
            id="part-missing-field",
        ),
        pytest.param("fetched_at", datetime(2024, 1, 1), "naive datetime", id="naive-datetime"),
        pytest.param("raw", "bytes", "got str", id="raw-not-a-response"),
    ],
)
def test_an_ill_typed_field_fails_the_page(field: str, value: Any, reason: str) -> None:
    page = dataclasses.replace(make_page(), **{field: value})
    found = problems(page)
    assert [name for name, _ in found][:1] == [field]
    assert reason in found[0][1]
    failed = ValidatePipeline().process_item(page)
    assert isinstance(failed, PageFailed)
    assert failed.field == field


def test_what_validation_passes_the_tables_store() -> None:
    """One set of checks: a page the pipeline passes builds its table rows."""
    page = make_page()
    assert problems(page) == []
    record = VersionRecord(page=page, run_id="run-1", observed_at=datetime.now(UTC))
    assert topics_table([record]).num_rows == 1
