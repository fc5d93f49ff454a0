"""A run's rows go on to its staging files as it goes: the archive is the same either way."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipelines.core import store as store_module
from pipelines.core.verify import verify_archive
from pipelines.notebook import open_archive
from tests.archive_factory import at, commit_run, make_page

PAGES = [make_page(f"topic{n:03d}", text=f"Topic {n} is about something.") for n in range(60)]


def _build(root: Path) -> None:
    commit_run(root, at(date(2024, 1, 10)), PAGES)
    commit_run(root, at(date(2024, 1, 11)), [*PAGES[:30], make_page("topic000", text="New.")])


def test_spilled_and_buffered_runs_store_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _build(tmp_path / "buffered")
    monkeypatch.setattr(store_module, "SPILL_ROWS", dict.fromkeys(store_module.SPILL_ROWS, 7))
    _build(tmp_path / "spilled")
    assert verify_archive(tmp_path / "spilled") == []
    for table in ("topics", "links", "clinical_trials", "observations", "journal_articles"):
        run_columns = ["run_id", "first_seen_run"]  # run ids differ between the two archives
        buffered = pd.read_parquet(tmp_path / "buffered" / table)
        spilled = pd.read_parquet(tmp_path / "spilled" / table)
        buffered = buffered.drop(columns=[c for c in run_columns if c in buffered])
        spilled = spilled.drop(columns=[c for c in run_columns if c in spilled])
        pd.testing.assert_frame_equal(
            buffered.sort_values(list(buffered.columns[:4])).reset_index(drop=True),
            spilled.sort_values(list(spilled.columns[:4])).reset_index(drop=True),
            check_dtype=False,
        )
    latest = open_archive(tmp_path / "spilled").topics()
    assert len(latest) == 60
    assert latest.set_index("slug").loc["topic000", "summary_text"].startswith("New.")
