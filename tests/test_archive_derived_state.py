"""The core store's hooks for the layers above (`DerivedState`), with a toy state that
knows nothing of the archive domain: what a commit hands it, what a compaction tells it,
and its tables saved in a checkpoint; and the core run writer adding rows all or nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.core.compaction import policy_every
from pipelines.core.errors import InvalidRecordError
from pipelines.core.records import RunManifest
from pipelines.core.schema import TableName
from pipelines.core.store import ArchiveStore, new_run_id
from tests.archive_factory import at, commit_run, make_page, observe, run_record

DAY = date(2024, 3, 1)
COUNTS_SCHEMA = pa.schema([pa.field("run_id", pa.string()), pa.field("rows", pa.int64())])


class RowCounts:
    """Observations per committed run, from the run ids the store hands over."""

    kept_columns: Mapping[TableName, Sequence[str]] = {"observations": ("run_id",)}

    def __init__(self, store: ArchiveStore) -> None:
        self.store = store
        self.counts: dict[str, int] = {}
        self.events: list[str] = []

    def committed(self, manifest: RunManifest, rows: Mapping[TableName, pa.Table]) -> None:
        assert manifest.run_id in self.store.run_ids  # the store took the run in first
        assert rows["observations"].column_names == ["run_id"]
        self.counts[manifest.run_id] = rows["observations"].num_rows
        self.events.append(f"committed {manifest.run_id}")

    def files_changed(self) -> None:
        self.events.append("files_changed")

    def reset(self) -> None:
        self.events.append("reset")

    def checkpoint_tables(self) -> Mapping[str, pa.Table]:
        rows = {"run_id": list(self.counts), "rows": list(self.counts.values())}
        return {"row_counts": pa.table(rows, schema=COUNTS_SCHEMA)}


def test_an_attached_state_sees_each_commit_and_compaction_and_is_checkpointed(
    tmp_path: Path,
) -> None:
    pages = [make_page(slug) for slug in ("asthma", "acne", "flu")]
    commit_run(tmp_path, at(DAY), pages)
    with ArchiveStore.open(tmp_path, policy=policy_every(2)) as store:
        state = store.attachment(RowCounts)
        assert store.attachment(RowCounts) is state  # one per kind
        run_id = new_run_id(at(DAY, 2), after=store.run_ids[-1])
        with store.begin_run(run_id, at(DAY, 2)) as writer:
            for moment, page in enumerate(pages[:2]):
                observation = observe(page, run_id, at(DAY, 2, moment), "unchanged")
                writer.add_rows({"observations": [observation]}, url=page.url)
            writer.commit(run_record(run_id, at(DAY, 2)))
        assert state.counts == {run_id: 2}
        assert state.events == [f"committed {run_id}", "files_changed"]  # two runs merged
        checkpoint = store.checkpoint
        assert checkpoint is not None
        assert checkpoint.last_run == run_id
        assert checkpoint.derived_names == ("row_counts",)
    reader = ArchiveStore.open(tmp_path, read_only=True)
    assert reader.checkpoint is not None
    saved = reader.checkpoint.read_derived("row_counts", COUNTS_SCHEMA)
    assert saved.to_pylist() == [{"run_id": run_id, "rows": 2}]


def test_the_run_writer_adds_rows_of_several_tables_all_or_nothing(tmp_path: Path) -> None:
    page = make_page("asthma")
    with ArchiveStore.open(tmp_path) as store:
        run_id = new_run_id(at(DAY))
        writer = store.begin_run(run_id, at(DAY))
        observation = observe(page, run_id, at(DAY), "new")
        with pytest.raises(InvalidRecordError, match=page.url):  # not a runs row
            writer.add_rows({"observations": [observation], "runs": [observation]}, url=page.url)
        writer.commit(run_record(run_id, at(DAY)))
    reader = ArchiveStore.open(tmp_path, read_only=True)
    assert reader.read_table("observations").num_rows == 0
    assert reader.read_table("runs").num_rows == 1
