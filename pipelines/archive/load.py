"""Read the archive: `ArchiveReader(store).topics(as_of=...)` and friends, what
`pipelines.notebook.open_archive(path)` returns (with change detection on top).

Only committed runs are read (the files their manifests list), as of opening; nothing
takes the lock, so loading works while a crawl is writing.

Every table method returns the backend chosen at opening, with the archive's Arrow types
in all three (`pipelines.core.schema.SCHEMAS`, never inferred):

* `backend="pandas"` (the default): a DataFrame whose every column is a
  `pandas.ArrowDtype` (the types_mapper of `pyarrow.Table.to_pandas`): dates stay dates
  (`date32[day][pyarrow]`), timestamps are `timestamp[us, tz=UTC][pyarrow]`, an int
  column with gaps stays int, lists stay lists; no object columns.
  `pandas.read_parquet("<archive>/topics", dtype_backend="pyarrow")` gives the same dtypes;
* `backend="arrow"`: a `pyarrow.Table` of those types;
* `backend="polars"`: a `polars.DataFrame` made from that table (`polars.from_arrow`:
  Date, Datetime("us", "UTC"), List...); needs `pip install 'medlineplus-archive[polars]'`.

`Archive.duckdb()` registers the same tables, and the as-of questions, as DuckDB views
and table macros (`pipelines.archive.sql`).

The two clocks (DESIGN.md section 3; `as_of` is resolved by `pipelines.archive.as_of`):

* `as_of=None`: the current version of every topic that is live now;
* `as_of=datetime.date(...)` (valid time): for each topic its newest version with
  `last_updated <= D`, leaving out topics observed gone on or before D (UTC);
* `as_of="<run_id>"` (transaction time): what the archive held right after that run.

The current version of a topic is the one it showed most recently (a page reverted to
an older text makes that version current again); "live" means its latest sighting
(stored version or observation other than error) is not `gone`.

Snapshots are computed from the sightings log (`pipelines.archive.versions`), which holds about
one row per version rather than one per observation, then only the row groups holding
the versions selected are read (`pipelines.archive.state.read_versions`): loading a snapshot of a
ten-year archive reads little more than the snapshot itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, get_args, overload

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from crawler.parsing.items import LANGUAGES
from pipelines.archive.as_of import AsOf, Cut, DateCut, RunCut, resolve_as_of
from pipelines.archive.state import ArchiveState, read_versions
from pipelines.core.errors import UnknownRunError
from pipelines.core.schema import TOPIC_KEY, VERSION_KEY, TableName
from pipelines.core.storage import ArchivePath
from pipelines.core.store import ArchiveStore

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    from typing_extensions import TypeVar
else:
    from typing_extensions import TypeVar

Backend = Literal["pandas", "arrow", "polars"]
"""What the table methods return: pandas DataFrames, Arrow tables or Polars DataFrames."""
BACKENDS: tuple[Backend, ...] = get_args(Backend)
Frame = TypeVar("Frame", default=pd.DataFrame)
"""The type of table an `Archive` returns (its backend's)."""

_ORDER = ["run_id", "observed_at"]


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas(types_mapper=pd.ArrowDtype)
    return frame


def _to_arrow(table: pa.Table) -> pa.Table:
    return table


def _converter(backend: Backend) -> Callable[[pa.Table], Any]:
    """The function turning the archive's Arrow tables into `backend`'s."""
    if backend == "pandas":
        return _to_pandas
    if backend == "arrow":
        return _to_arrow
    if backend == "polars":
        try:
            import polars
        except ImportError as error:
            raise ImportError(
                "open_archive(..., backend='polars') needs Polars: "
                "pip install 'medlineplus-archive[polars]'"
            ) from error
        return polars.from_arrow
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")


class ArchiveReader(Generic[Frame]):
    """A read-only view of an archive's committed runs, as they were when it was opened.

    Its table methods return `Frame`: the tables of the backend it was opened with.
    """

    @overload
    def __init__(
        self: ArchiveReader[pd.DataFrame],
        store: ArchiveStore,
        backend: Literal["pandas"] = "pandas",
    ) -> None: ...
    @overload
    def __init__(
        self: ArchiveReader[pa.Table], store: ArchiveStore, backend: Literal["arrow"]
    ) -> None: ...
    @overload
    def __init__(
        self: ArchiveReader[pl.DataFrame], store: ArchiveStore, backend: Literal["polars"]
    ) -> None: ...
    @overload
    def __init__(self: ArchiveReader[Any], store: ArchiveStore, backend: Backend) -> None: ...
    def __init__(self, store: ArchiveStore, backend: Backend = "pandas") -> None:
        self.store = store
        """The underlying store (opened read-only by `open_archive`)."""
        self.backend: Backend = backend
        """What the table methods return."""
        self._convert: Callable[[pa.Table], Frame] = _converter(backend)
        self._tables: dict[TableName, pa.Table] = {}

    @property
    def state(self) -> ArchiveState:
        """What the archive domain derives from the store's rows (the sightings log, the
        stored versions), built on first use."""
        return ArchiveState.of(self.store)

    @property
    def path(self) -> ArchivePath:
        """The archive directory, or the S3 prefix it was published to."""
        return self.store.root

    @property
    def run_ids(self) -> tuple[str, ...]:
        """Committed run ids, oldest first."""
        return self.store.run_ids

    def __repr__(self) -> str:
        return f"<Archive {self.path} runs={len(self.run_ids)} backend={self.backend}>"

    # plain tables

    def runs(self) -> Frame:
        """One row per committed run, oldest first."""
        return self._frame(self._table("runs"), ["run_id"])

    def observations(
        self, run_id: str | None = None, *, slug: str | None = None, language: str | None = None
    ) -> Frame:
        """Every fetch of every committed run, in order; of one run (`run_id`) and/or one
        topic (`slug`, `language`) only, when given: those read only what they need, where
        all of them is millions of rows in a long-kept archive."""
        where = None
        if language is not None:
            _check_language(language)
            where = ds.field("language") == language
        if slug is not None:
            where = (
                ds.field("slug") == slug if where is None else where & (ds.field("slug") == slug)
            )
        if run_id is None and where is None:
            return self._frame(self._table("observations"), _ORDER)
        if run_id is not None:
            self._check_run(run_id)
        runs = None if run_id is None else [run_id]
        table = self.store.read_table("observations", where=where, run_ids=runs)
        return self._frame(table, _ORDER)

    # versions

    def topics(self, as_of: AsOf = None) -> Frame:
        """One row per topic: its version as of `as_of` (see the module docstring)."""
        positions = self._selected_positions(as_of)
        return self._frame(self.store.read_positions("topics", positions), list(TOPIC_KEY))

    def topic(self, slug: str, language: str = "en", as_of: AsOf = None) -> Frame:
        """The version of one topic as of `as_of`, as `topics(as_of)` selects it: one row,
        or none when the topic had no live version then."""
        _check_language(language)
        positions = self._selected_positions(as_of)
        selected = self.state.stored_versions().take(positions)
        mask = pc.and_(pc.equal(selected["slug"], slug), pc.equal(selected["language"], language))
        return self._convert(self.store.read_positions("topics", pc.filter(positions, mask)))

    def history(self, slug: str, language: str = "en") -> Frame:
        """Every stored version of one topic, oldest first (empty when unknown)."""
        _check_language(language)
        stored = self.state.stored_versions()
        mask = pc.and_(pc.equal(stored["slug"], slug), pc.equal(stored["language"], language))
        positions = pc.indices_nonzero(mask)
        return self._frame(
            self.store.read_positions("topics", positions), ["last_updated", *_ORDER]
        )

    def links(
        self, slug: str | None = None, language: str | None = None, as_of: AsOf = None
    ) -> Frame:
        """Links of the topics' versions as of `as_of`, in page order per topic."""
        return self._entries("links", slug, language, as_of)

    def clinical_trials(
        self, slug: str | None = None, language: str | None = None, as_of: AsOf = None
    ) -> Frame:
        """Clinical-trial entries of the topics' versions as of `as_of`, in page order."""
        return self._entries("clinical_trials", slug, language, as_of)

    def journal_articles(
        self, slug: str | None = None, language: str | None = None, as_of: AsOf = None
    ) -> Frame:
        """Journal articles by first sighting: all of them (None), those first seen in runs
        up to a run id, or first seen on or before a date (UTC)."""
        table = _filter_topic(self._table("journal_articles"), slug, language)
        cut = self._cut(as_of)
        if isinstance(cut, RunCut):
            table = table.filter(pc.less_equal(table["first_seen_run"], cut.last_run))
        elif isinstance(cut, DateCut):
            table = table.filter(ds.field("first_seen_at") < cut.until)
        return self._frame(table, [*TOPIC_KEY, "first_seen_run", "position"])

    def duckdb(
        self, connection: duckdb.DuckDBPyConnection | None = None
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection (`connection`, else a new in-memory one) with this archive's
        tables and as-of questions registered as views and table macros (see
        `pipelines.archive.sql.register_archive`); needs
        `pip install 'medlineplus-archive[duckdb]'`."""
        from pipelines.archive.sql import register_archive

        return register_archive(self.store, connection)

    # internals

    def _frame(self, table: pa.Table, by: list[str]) -> Frame:
        """`table` sorted (stably) by `by`, as the backend's table."""
        return self._convert(table.sort_by([(name, "ascending") for name in by]))

    def _table(self, table: TableName) -> pa.Table:
        # Committed files never change, so a table read once is good for the Archive's life.
        if table not in self._tables:
            self._tables[table] = self.store.read_table(table)
        return self._tables[table]

    def _check_run(self, run_id: str) -> int:
        try:
            return self.run_ids.index(run_id)
        except ValueError:
            raise UnknownRunError(run_id, self.path) from None

    def _cut(self, as_of: AsOf) -> Cut:
        return resolve_as_of(as_of, self.run_ids, self.path)

    def _selected_versions(self, as_of: AsOf) -> pa.Table:
        """VERSION_KEY and run_id of the version of each topic as of `as_of`, live topics only."""
        stored = self.state.stored_versions()
        return stored.take(self._selected_positions(as_of)).select([*VERSION_KEY, "run_id"])

    def _selected_positions(self, as_of: AsOf) -> pa.Array:
        """Rows of `stored_versions()` of the version of each topic as of `as_of`, live only."""
        cut = self._cut(as_of)
        selector = self.state.selector()
        if isinstance(cut, RunCut):
            rows = selector.current(cut.last_run)
        elif isinstance(cut, DateCut):
            rows = selector.by_date(cut.day)
        else:
            rows = selector.current()
        return pa.array(rows, pa.int64())

    def _entries(
        self, table: TableName, slug: str | None, language: str | None, as_of: AsOf
    ) -> Frame:
        selected = _filter_topic(self._selected_versions(as_of), slug, language)
        # Rows come in run order, page order within a version; the sort is stable.
        return self._frame(read_versions(self.store, table, selected), list(TOPIC_KEY))


def _filter_topic(table: pa.Table, slug: str | None, language: str | None) -> pa.Table:
    if language is not None:
        _check_language(language)
        table = table.filter(pc.equal(table["language"], language))
    if slug is not None:
        table = table.filter(pc.equal(table["slug"], slug))
    return table


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
