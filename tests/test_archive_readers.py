"""`open_archive(path, backend=...)`: pandas, Arrow and Polars give the same rows with the
same Arrow types, and `Archive.duckdb()` answers the as-of questions like the loaders."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from pipelines.core.store import ArchiveStore
from pipelines.notebook import open_archive
from tests.test_archive_compaction import DAY, TWO, build


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Twelve runs with reverts, same-date edits, gone and back, compacted on three levels."""
    root = tmp_path_factory.mktemp("readers") / "archive"
    return root, build(root, TWO)


def questions(run_ids: list[str]) -> dict[str, Callable[[Any], Any]]:
    """Every table method, with the arguments that select differently."""
    middle = DAY + timedelta(days=5)
    return {
        "runs": lambda a: a.runs(),
        "observations": lambda a: a.observations(),
        "observations of a run": lambda a: a.observations(run_ids[2]),
        "observations of a topic": lambda a: a.observations(slug="asthma", language="en"),
        "topics": lambda a: a.topics(),
        "topics as of a run": lambda a: a.topics(as_of=run_ids[3]),
        "topics as of a date": lambda a: a.topics(as_of=middle),
        "history": lambda a: a.history("asthma"),
        "links": lambda a: a.links(),
        "links as of a date": lambda a: a.links(as_of=middle),
        "clinical_trials": lambda a: a.clinical_trials(),
        "journal_articles": lambda a: a.journal_articles(),
        "journal_articles as of a run": lambda a: a.journal_articles(as_of=run_ids[1]),
        "changes": lambda a: a.changes(run_ids[0], run_ids[-1]),
    }


def polars_type(arrow: pa.DataType) -> Any:
    """The Polars type an Arrow type is read as (what the Polars backend must give)."""
    if pa.types.is_date32(arrow):
        return pl.Date
    if pa.types.is_timestamp(arrow):
        return pl.Datetime(arrow.unit, arrow.tz)
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return pl.String
    if pa.types.is_boolean(arrow):
        return pl.Boolean
    if pa.types.is_integer(arrow):
        return {8: pl.Int8, 16: pl.Int16, 32: pl.Int32, 64: pl.Int64}[arrow.bit_width]
    if pa.types.is_list(arrow):
        return pl.List(polars_type(arrow.value_type))
    if pa.types.is_struct(arrow):
        return pl.Struct({field.name: polars_type(field.type) for field in arrow})
    raise AssertionError(f"no Polars type expected for {arrow}")


def test_every_backend_gives_the_same_rows_with_the_same_types(
    history: tuple[Path, list[str]],
) -> None:
    root, run_ids = history
    by_backend = {backend: open_archive(root, backend=backend) for backend in ("arrow", "polars")}
    pandas_archive = open_archive(root)
    for name, ask in questions(run_ids).items():
        frame: pd.DataFrame = ask(pandas_archive)
        table: pa.Table = ask(by_backend["arrow"])
        polars_frame: pl.DataFrame = ask(by_backend["polars"])
        assert isinstance(frame, pd.DataFrame), name
        assert isinstance(table, pa.Table), name
        assert isinstance(polars_frame, pl.DataFrame), name
        assert len(frame) == table.num_rows == polars_frame.height, name
        assert table.num_rows > 0 or name == "changes", name
        # pandas: every column an ArrowDtype of the Arrow backend's type (no object columns).
        assert list(frame.columns) == table.column_names == polars_frame.columns, name
        for field in table.schema:
            dtype = frame.dtypes[field.name]
            assert isinstance(dtype, pd.ArrowDtype), (name, field.name, dtype)
            assert dtype.pyarrow_dtype == field.type, (name, field.name)
            assert polars_frame.schema[field.name] == polars_type(field.type), (name, field.name)
        # ... and the same values, in the same order.
        as_arrow = pa.Table.from_pandas(frame, preserve_index=False)
        assert as_arrow.cast(table.schema).equals(table), name
        assert polars_frame.to_dicts() == table.to_pylist(), name


def test_dates_are_dates_in_every_backend(history: tuple[Path, list[str]]) -> None:
    root, _ = history
    topics = open_archive(root).topics(as_of=date(2024, 1, 6))
    assert topics["last_updated"].dtype == pd.ArrowDtype(pa.date32())
    assert topics["observed_at"].dtype == pd.ArrowDtype(pa.timestamp("us", tz="UTC"))
    assert isinstance(topics["last_updated"].iloc[0], date)
    assert open_archive(root, backend="polars").topics()["last_updated"].dtype == pl.Date


def test_the_default_backend_is_pandas_as_before(history: tuple[Path, list[str]]) -> None:
    root, run_ids = history
    archive = open_archive(root)
    assert archive.backend == "pandas"
    runs = archive.runs()
    assert runs["run_id"].iloc[0] == run_ids[0]
    assert isinstance(runs["run_id"].iloc[0], str)


def test_a_bad_backend_or_a_missing_extra_is_a_clear_error(
    history: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = history
    with pytest.raises(ValueError, match="backend must be one of pandas, arrow, polars, not 'x'"):
        open_archive(root, backend="x")  # type: ignore[call-overload]
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ImportError, match=r"pip install 'medlineplus-archive\[polars\]'"):
        open_archive(root, backend="polars")
    monkeypatch.setitem(sys.modules, "duckdb", None)
    with pytest.raises(ImportError, match=r"pip install 'medlineplus-archive\[duckdb\]'"):
        open_archive(root).duckdb()


# --- DuckDB -----------------------------------------------------------------------------


def _sorted_rows(table: pa.Table) -> list[str]:
    return sorted(repr(row) for row in table.to_pylist())


def test_duckdb_answers_every_as_of_question_like_the_loaders(
    history: tuple[Path, list[str]],
) -> None:
    duckdb = pytest.importorskip("duckdb")
    root, run_ids = history
    archive = open_archive(root, backend="arrow")
    connection = duckdb.connect()
    assert archive.duckdb(connection) is connection
    order = "ORDER BY language, slug"
    cuts: list[Any] = [*run_ids, *(DAY + timedelta(days=offset) for offset in range(-1, 14))]
    for cut in cuts:
        macro = "topics_as_of_run" if isinstance(cut, str) else "topics_as_of"
        expected = archive.topics(as_of=cut)
        got = pa.table(connection.sql(f"SELECT * FROM {macro}($cut) {order}", params={"cut": cut}))
        assert got.cast(expected.schema).equals(expected), cut
    latest = pa.table(connection.sql(f"SELECT * FROM topics {order}"))
    assert latest.cast(archive.topics().schema).equals(archive.topics())
    for view, rows in (
        ("links", archive.links()),
        ("clinical_trials", archive.clinical_trials()),
        ("runs", archive.runs()),
        ("observations", archive.observations()),
        ("journal_articles", archive.journal_articles()),
        ("topic_versions", archive.store.read_table("topics")),
    ):
        got = pa.table(connection.sql(f"SELECT * FROM {view}")).cast(rows.schema)
        assert _sorted_rows(got) == _sorted_rows(rows), view


def test_duckdb_as_of_links_by_joining_the_versions(history: tuple[Path, list[str]]) -> None:
    """The README's join: the links of the versions as of a date."""
    pytest.importorskip("duckdb")
    root, _ = history
    archive = open_archive(root, backend="arrow")
    day = DAY + timedelta(days=2)
    query = """
        SELECT link.* FROM link_versions AS link
        SEMI JOIN topics_as_of($day) USING (language, slug, last_updated, content_hash)
    """
    got = pa.table(archive.duckdb().sql(query, params={"day": day}))
    expected = archive.links(as_of=day)
    assert expected.num_rows > 0
    assert _sorted_rows(got.cast(expected.schema)) == _sorted_rows(expected)


def test_duckdb_on_an_archive_without_runs(tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    ArchiveStore.open(tmp_path).close()
    connection = open_archive(tmp_path).duckdb()
    for view in ("runs", "observations", "topics", "links", "topic_versions"):
        assert connection.sql(f"SELECT count(*) FROM {view}").fetchall() == [(0,)], view
    assert connection.sql("SELECT * FROM topics_as_of(DATE '2024-01-01')").fetchall() == []
