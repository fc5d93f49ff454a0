"""Run ids sort in commit order, even for runs started in the same second."""

from __future__ import annotations

from datetime import UTC, datetime

from pipelines.core.store import new_run_id

NOW = datetime(2026, 11, 24, 0, 24, 0, 500000, tzinfo=UTC)


def test_a_run_id_names_its_start_second() -> None:
    assert new_run_id(NOW).startswith("20261124T002400Z-")


def test_a_run_started_in_the_same_second_sorts_after_the_last_one() -> None:
    last = new_run_id(NOW)
    for _ in range(50):
        following = new_run_id(NOW, after=last)
        assert following > last
        last = following


def test_a_clock_that_went_back_still_gives_a_later_id() -> None:
    last = "20261124T010000Z-ffff"
    assert new_run_id(NOW, after=last) > last
