"""Load the archive into pandas: `open_archive(path).topics(as_of=...)` and friends.

Only committed runs are read (the files their manifests list), as of opening; nothing
takes the lock, so loading works while a crawl is writing.

Every column comes back as a `pandas.ArrowDtype` (the types_mapper of
`pyarrow.Table.to_pandas`): dates stay dates (`date32[day][pyarrow]`), timestamps are
`timestamp[us, tz=UTC][pyarrow]`, an int column with gaps stays int, lists stay lists.
`pandas.read_parquet("<archive>/topics", dtype_backend="pyarrow")` gives the same dtypes.

The two clocks (DESIGN.md section 3):

* `as_of=None`: the current version of every topic that is live now;
* `as_of=datetime.date(...)` (valid time): for each topic its newest version with
  `last_updated <= D`, leaving out topics observed gone on or before D (UTC);
* `as_of="<run_id>"` (transaction time): what the archive held right after that run.

The current version of a topic is the one it showed most recently (a page reverted to
an older text makes that version current again); "live" means its latest sighting
(stored version or observation other than error) is not `gone`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from crawler.items import LANGUAGES
from pipelines.errors import UnknownRunError
from pipelines.schema import TOPIC_KEY, VERSION_KEY, TableName
from pipelines.store import ArchiveStore, current_version_keys, gone_topic_keys

AsOf = date | str | None
"""None (now), a date (valid time) or a committed run id (transaction time)."""

_ORDER = ["run_id", "observed_at"]


@dataclass(frozen=True, slots=True)
class _RunCut:
    """Transaction time: the runs up to and including one run."""

    run_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _DateCut:
    """Valid time: versions dated on or before `day`; gone-ness observed before `until`."""

    day: date
    until: pd.Timestamp


def open_archive(path: Path | str) -> Archive:
    """Open the archive at `path` for reading (no lock; works during a crawl)."""
    return Archive(ArchiveStore.open(path, read_only=True))


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas(types_mapper=pd.ArrowDtype)
    return frame


class Archive:
    """A read-only view of an archive's committed runs, as they were when it was opened."""

    def __init__(self, store: ArchiveStore) -> None:
        self.store = store
        """The underlying store (opened read-only by `open_archive`)."""
        self._tables: dict[TableName, pa.Table] = {}

    @property
    def path(self) -> Path:
        """The archive directory."""
        return self.store.path

    @property
    def run_ids(self) -> tuple[str, ...]:
        """Committed run ids, oldest first."""
        return self.store.run_ids

    def __repr__(self) -> str:
        return f"<Archive {self.path} runs={len(self.run_ids)}>"

    # plain tables

    def runs(self) -> pd.DataFrame:
        """One row per committed run, oldest first."""
        return self._sorted(_to_pandas(self._table("runs")), ["run_id"])

    def observations(self, run_id: str | None = None) -> pd.DataFrame:
        """Every fetch of every committed run (of `run_id` only, when given), in order."""
        frame = _to_pandas(self._table("observations"))
        if run_id is not None:
            self._check_run(run_id)
            frame = frame[frame["run_id"] == run_id]
        return self._sorted(frame, _ORDER)

    # versions

    def topics(self, as_of: AsOf = None) -> pd.DataFrame:
        """One row per topic: its version as of `as_of` (see the module docstring)."""
        selected = self._selected_versions(as_of)
        frame = _to_pandas(self._table("topics")).merge(selected, on=list(VERSION_KEY))
        return self._sorted(frame, list(TOPIC_KEY))

    def history(self, slug: str, language: str = "en") -> pd.DataFrame:
        """Every stored version of one topic, oldest first (empty when unknown)."""
        _check_language(language)
        table = self._table("topics").filter(
            (ds.field("slug") == slug) & (ds.field("language") == language)
        )
        return self._sorted(_to_pandas(table), ["last_updated", *_ORDER])

    def links(
        self, slug: str | None = None, language: str | None = None, as_of: AsOf = None
    ) -> pd.DataFrame:
        """Links of the topics' versions as of `as_of`, in page order per topic."""
        return self._entries("links", slug, language, as_of)

    def clinical_trials(
        self, slug: str | None = None, language: str | None = None, as_of: AsOf = None
    ) -> pd.DataFrame:
        """Clinical-trial entries of the topics' versions as of `as_of`, in page order."""
        return self._entries("clinical_trials", slug, language, as_of)

    def journal_articles(
        self, slug: str | None = None, language: str | None = None, as_of: AsOf = None
    ) -> pd.DataFrame:
        """Journal articles by first sighting: all of them (None), those first seen in runs
        up to a run id, or first seen on or before a date (UTC)."""
        table = _filter_topic(self._table("journal_articles"), slug, language)
        cut = self._cut(as_of)
        if isinstance(cut, _RunCut):
            table = table.filter(ds.field("first_seen_run").isin(list(cut.run_ids)))
        elif isinstance(cut, _DateCut):
            table = table.filter(ds.field("first_seen_at") < cut.until.to_pydatetime())
        return self._sorted(_to_pandas(table), [*TOPIC_KEY, "first_seen_run", "position"])

    # internals

    def _table(self, table: TableName) -> pa.Table:
        # Committed files never change, so a table read once is good for the Archive's life.
        if table not in self._tables:
            self._tables[table] = self.store.read_table(table)
        return self._tables[table]

    @functools.cached_property
    def _version_keys(self) -> pd.DataFrame:
        """One row per stored version: VERSION_KEY, run_id, observed_at."""
        return _to_pandas(self._table("topics").select([*VERSION_KEY, *_ORDER]))

    @functools.cached_property
    def _sightings(self) -> pd.DataFrame:
        """Observations reduced to what version selection needs."""
        return _to_pandas(self._table("observations").select([*VERSION_KEY, *_ORDER, "outcome"]))

    def _check_run(self, run_id: str) -> int:
        try:
            return self.run_ids.index(run_id)
        except ValueError:
            raise UnknownRunError(run_id, self.path) from None

    def _cut(self, as_of: AsOf) -> _RunCut | _DateCut | None:
        if as_of is None:
            return None
        if isinstance(as_of, datetime):
            raise TypeError("as_of: pass a datetime.date (valid time) or a run id, not a datetime")
        if isinstance(as_of, str):
            if as_of in self.run_ids:
                return _RunCut(self.run_ids[: self._check_run(as_of) + 1])
            text = as_of
            try:
                # The command line passes dates as text; run ids never parse as dates.
                as_of = date.fromisoformat(text)
            except ValueError:
                raise UnknownRunError(text, self.path) from None
        if isinstance(as_of, date):
            until = datetime.combine(as_of + timedelta(days=1), time(), UTC)
            return _DateCut(as_of, pd.Timestamp(until))
        raise TypeError(f"as_of: expected None, a date or a run id, got {type(as_of).__name__}")

    def _selected_versions(self, as_of: AsOf) -> pd.DataFrame:
        """VERSION_KEY of the version of each topic as of `as_of`, live topics only."""
        cut = self._cut(as_of)
        versions, observations = self._version_keys, self._sightings
        if isinstance(cut, _RunCut):
            versions = versions[versions["run_id"].isin(cut.run_ids)]
            observations = observations[observations["run_id"].isin(cut.run_ids)]
        if isinstance(cut, _DateCut):
            dated = versions[versions["last_updated"] <= cut.day]
            selected = current_version_keys(dated, observations, by_date=True)
            versions = versions[versions["observed_at"] < cut.until]
            observations = observations[observations["observed_at"] < cut.until]
        else:
            selected = current_version_keys(versions, observations)
        gone = gone_topic_keys(versions, observations)
        marked = selected.merge(gone, on=list(TOPIC_KEY), how="left", indicator=True)
        return marked.loc[marked["_merge"] == "left_only", list(VERSION_KEY)]

    def _entries(
        self, table: TableName, slug: str | None, language: str | None, as_of: AsOf
    ) -> pd.DataFrame:
        selected = self._selected_versions(as_of)
        entries = _to_pandas(_filter_topic(self._table(table), slug, language))
        # An inner merge keeps the left order: entries stay in page order.
        frame = entries.merge(selected, on=list(VERSION_KEY))
        return self._sorted(frame, list(TOPIC_KEY))

    @staticmethod
    def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
        return frame.sort_values(by, kind="stable").reset_index(drop=True)


def _filter_topic(table: pa.Table, slug: str | None, language: str | None) -> pa.Table:
    if language is not None:
        _check_language(language)
        table = table.filter(ds.field("language") == language)
    if slug is not None:
        table = table.filter(ds.field("slug") == slug)
    return table


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
