"""Which version of each topic the archive shows, at any time: the sightings log.

A *sighting* of a topic is a stored version (at the time its run fetched it) or an
observation other than "error" (a failed fetch says nothing about the page): "gone", or
a success naming the version it showed (a 304 names the version it confirmed). The
DESIGN.md section 3 questions are all answered by the sightings of each topic, in
transaction order (run, then fetch time, stored versions before observations, then as
added):

* the current version (`current_version_keys`): the version of the latest sighting that
  names a stored version (a page reverted to an older text makes it current again);
* gone (`gone_topic_keys`): the latest sighting is "gone";
* as of a date (valid time): the newest `last_updated` on or before the date, ties going
  to the version shown most recently.

Ten years of daily crawls observe every topic every day, but a topic's sightings change
only when the page does: a sighting repeating the one before it (same topic, same
version, same gone-ness) answers every question the same way, so the *events* log keeps
only the first of each repeat. That is about one event per version instead of one per
observation, and a run in which nothing changed adds none. (Gone-ness as of a date
looks at the events fetched before it; that equals the definition as long as a topic's
fetch times do not go backwards from one run to the next, as run ids start with the
run's start time.) The validators of
conditional requests are folded the same way, one row per URL (`fold_validators`).

The pandas functions (`current_version_keys`, `gone_topic_keys`, `latest_validators`)
are the definitions, over raw rows. From the events log, `Selector` answers the
snapshot questions as integer arrays (what the loaders use), and `current_versions`,
`gone_topics` and `validators_map` what the crawler's index needs. Building the log
decides order and repeats on integer codes, so ten years of observations (millions of
rows) rebuild it in seconds when no checkpoint has it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core.records import SUCCESS_OUTCOMES
from pipelines.core.schema import TOPIC_KEY, UTC_TIMESTAMP, VERSION_KEY


class Validators(NamedTuple):
    """What to send on the next conditional request for a URL."""

    etag: str | None
    """For If-None-Match."""
    last_modified: str | None
    """For If-Modified-Since (the Last-Modified header as received)."""


EVENTS_SCHEMA = pa.schema(
    [
        pa.field("language", pa.string(), nullable=False),
        pa.field("slug", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("observed_at", UTC_TIMESTAMP, nullable=False),
        pa.field("gone", pa.bool_(), nullable=False),
        pa.field("last_updated", pa.date32()),
        pa.field("content_hash", pa.string()),
    ]
)
"""The events log: sightings that differ from the topic's previous one, in order.
`last_updated`/`content_hash` name the version shown (None for gone, or a success that
named none)."""

VALIDATORS_SCHEMA = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),
        pa.field("live", pa.bool_(), nullable=False),
        pa.field("evidence", pa.bool_(), nullable=False),
        pa.field("etag", pa.string()),
        pa.field("last_modified", pa.string()),
    ]
)
"""Per URL: whether its latest observation was a success, and the validators of the
latest successful fetch that carried some or was a full fetch (`evidence`)."""

VERSION_COLUMNS: tuple[str, ...] = (*VERSION_KEY, "run_id", "observed_at")
"""Columns of the topics table that sightings need."""
OBSERVATION_COLUMNS: tuple[str, ...] = (
    *VERSION_KEY,
    "run_id",
    "observed_at",
    "outcome",
    "url",
    "revalidated",
    "etag",
    "last_modified",
)
"""Columns of the observations table that sightings and validators need."""

MICROSECONDS_PER_DAY = 86_400_000_000


def day_end(day: date) -> int:
    """The first microsecond after `day` (UTC), counted from the Unix epoch as the archive
    stores timestamps: defined for every date, 9999-12-31 included."""
    return ((day - date(1970, 1, 1)).days + 1) * MICROSECONDS_PER_DAY


_POS = "__pos"
_TOPIC = list(TOPIC_KEY)
_KEY = list(VERSION_KEY)


# --- building the log -----------------------------------------------------------------


class _Rows(NamedTuple):
    """Sighting candidates of several sources as one zero-copy table plus integer arrays
    deciding order and identity (big string columns are never sorted or copied whole)."""

    table: pa.Table
    """language, slug, run_id, observed_at, last_updated, content_hash (unmasked)."""
    seen: np.ndarray
    """A sighting at all (not an error observation)."""
    gone: np.ndarray
    names: np.ndarray
    """The row names a version (stored, or a success with a full key)."""
    first: int
    """Rows before this index are the previous events (not part of the result)."""


_RAW_COLUMNS = ("language", "slug", "run_id", "observed_at", "last_updated", "content_hash")
_RAW_SCHEMA = pa.schema([EVENTS_SCHEMA.field(name) for name in _RAW_COLUMNS])


def _raw(table: pa.Table) -> pa.Table:
    return table.select(list(_RAW_COLUMNS)).cast(_RAW_SCHEMA)


def _bools(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _rows(previous: pa.Table | None, versions: pa.Table, observations: pa.Table) -> _Rows:
    before = previous if previous is not None else EVENTS_SCHEMA.empty_table()
    outcome = observations["outcome"]
    success = _bools(pc.is_in(outcome, value_set=pa.array(SUCCESS_OUTCOMES)))
    full_key = _bools(
        pc.and_(
            pc.is_valid(observations["last_updated"]), pc.is_valid(observations["content_hash"])
        )
    )
    table = pa.concat_tables([_raw(before), _raw(versions), _raw(observations)])
    return _Rows(
        table=table,
        seen=np.concatenate(
            [
                np.ones(before.num_rows + versions.num_rows, dtype=bool),
                ~_bools(pc.equal(outcome, "error")),
            ]
        ),
        gone=np.concatenate(
            [
                _bools(before["gone"]),
                np.zeros(versions.num_rows, dtype=bool),
                _bools(pc.equal(outcome, "gone")),
            ]
        ),
        names=np.concatenate(
            [
                _bools(pc.is_valid(before["content_hash"])),
                np.ones(versions.num_rows, dtype=bool),
                success & full_key,
            ]
        ),
        first=before.num_rows,
    )


def _run_ranks(column: pa.ChunkedArray) -> np.ndarray:
    """Per row, the rank of its run id among the run ids present (run ids sort in order)."""
    (codes,), runs = _codes(column)
    rank = np.empty(len(runs), dtype=np.int64)
    rank[np.argsort(np.array(runs, dtype=object))] = np.arange(len(runs))
    result: np.ndarray = rank[codes]
    return result


def _in_order(table: pa.Table, rows: np.ndarray, first: int = 0) -> np.ndarray:
    """`rows` of `table` sorted by run, fetch time, then position; rows before `first`
    (previous events) go first."""
    run = _run_ranks(table["run_id"])
    run[:first] = -1
    time = _micros(table["observed_at"])
    order: np.ndarray = rows[np.lexsort((rows, time[rows], run[rows]))]
    return order


def _log_events(previous: pa.Table | None, versions: pa.Table, observations: pa.Table) -> pa.Table:
    """The events (`EVENTS_SCHEMA`) of whole runs' rows, in order, without the sightings
    repeating the one before them of the same topic (`previous`: the last event of each
    topic logged so far)."""
    rows = _rows(previous, versions, observations)
    table = rows.table
    order = _in_order(table, np.flatnonzero(rows.seen), rows.first)
    (language, slug), languages = _codes(table["language"], table["slug"])
    topic = slug * max(len(languages), 1) + language
    (digest,), _ = _codes(table["content_hash"])
    digest = np.where(rows.names & pc.is_valid(table["content_hash"]).to_numpy(), digest, -1)
    day = np.where(
        rows.names,
        pc.fill_null(table["last_updated"].cast(pa.int32()), -(2**31)).to_numpy(
            zero_copy_only=False
        ),
        -(2**31),
    )
    # Each topic's sightings in order; a sighting equal to the one before it is a repeat.
    grouped = order[np.argsort(topic[order], kind="stable")]
    same = (
        (topic[grouped][1:] == topic[grouped][:-1])
        & (rows.gone[grouped][1:] == rows.gone[grouped][:-1])
        & (day[grouped][1:] == day[grouped][:-1])
        & (digest[grouped][1:] == digest[grouped][:-1])
    )
    repeat = np.zeros(table.num_rows, dtype=bool)
    repeat[grouped[1:]] = same
    kept = order[~repeat[order] & (order >= rows.first)]
    events = table.take(pa.array(kept))
    names = pa.array(rows.names[kept])
    return pa.table(
        {
            "language": events["language"],
            "slug": events["slug"],
            "run_id": events["run_id"],
            "observed_at": events["observed_at"],
            "gone": pa.array(rows.gone[kept]),
            "last_updated": pc.if_else(names, events["last_updated"], pa.scalar(None, pa.date32())),
            "content_hash": pc.if_else(names, events["content_hash"], pa.scalar(None, pa.string())),
        }
    ).cast(EVENTS_SCHEMA)


def last_events(events: pa.Table) -> pa.Table:
    """The last event of each topic in `events` (rows in order)."""
    return _last_per(events, _TOPIC)


def _last_per(table: pa.Table, keys: list[str]) -> pa.Table:
    """The last row of each group of `keys` in `table`, groups in no particular order."""
    if table.num_rows == 0:
        return table
    numbered = table.append_column(_POS, pa.array(np.arange(table.num_rows)))
    last = numbered.group_by(keys, use_threads=False).aggregate([(_POS, "max")])
    positions = pc.sort_indices(last[f"{_POS}_max"])
    return table.take(pc.take(last[f"{_POS}_max"], positions))


def fold_validators(state: pa.Table, observations: pa.Table) -> pa.Table:
    """The validators state (`VALIDATORS_SCHEMA`) after `observations` (rows of whole
    runs, in file order)."""
    if observations.num_rows == 0:
        return state
    order = _in_order(observations, np.arange(observations.num_rows))
    (state_url, url), urls = _codes(state["url"], observations["url"])
    success = _bools(pc.is_in(observations["outcome"], value_set=pa.array(SUCCESS_OUTCOMES)))
    has_validators = _bools(
        pc.or_(pc.is_valid(observations["etag"]), pc.is_valid(observations["last_modified"]))
    )
    full_fetch = ~_bools(observations["revalidated"])
    evidence = success & (has_validators | full_fetch)
    # One sequence per question: the state's rows first (as of before), then in order.
    count = state.num_rows
    state_evidence = _bools(state["evidence"])
    latest = _last_per_group(
        np.concatenate([np.arange(count), count + order]),
        np.concatenate([state_url, url]),
    )
    proven = _last_per_group(
        np.concatenate([np.flatnonzero(state_evidence), count + order[evidence[order]]]),
        np.concatenate([state_url, url]),
    )
    live = np.concatenate([_bools(state["live"]), success])
    found = np.full(len(urls), -1, dtype=np.int64)
    codes = np.concatenate([state_url, url])
    found[codes[proven]] = proven
    chosen = codes[latest]
    source = found[chosen]
    etag = pa.chunked_array([*_chunks(state["etag"]), *_chunks(observations["etag"])], pa.string())
    modified = pa.chunked_array(
        [*_chunks(state["last_modified"]), *_chunks(observations["last_modified"])], pa.string()
    )
    picked = pa.array(np.where(source >= 0, source, 0))
    has = pa.array(source >= 0)
    null = pa.scalar(None, pa.string())
    result = pa.table(
        {
            "url": pa.array([urls[code] for code in chosen], pa.string()),
            "live": pa.array(live[latest]),
            "evidence": has,
            "etag": pc.if_else(has, pc.take(etag, picked), null),
            "last_modified": pc.if_else(has, pc.take(modified, picked), null),
        }
    )
    return result.cast(VALIDATORS_SCHEMA).sort_by("url")


def validators_map(state: pa.Table) -> dict[str, Validators]:
    """Validators per URL whose latest observation was a success and that has some."""
    usable = state.filter(
        pc.and_(
            pc.and_(state["live"], state["evidence"]),
            pc.or_(pc.is_valid(state["etag"]), pc.is_valid(state["last_modified"])),
        )
    )
    return {
        url: Validators(etag, last_modified)
        for url, etag, last_modified in zip(
            usable["url"].to_pylist(),
            usable["etag"].to_pylist(),
            usable["last_modified"].to_pylist(),
            strict=True,
        )
    }


@dataclass(frozen=True, slots=True)
class VersionLog:
    """The events log and the validators state after some committed runs."""

    events: pa.Table
    """`EVENTS_SCHEMA`, in transaction order, repeats dropped."""
    validators: pa.Table
    """`VALIDATORS_SCHEMA`, one row per URL."""

    @classmethod
    def empty(cls) -> VersionLog:
        """The log of an archive without runs."""
        return cls(EVENTS_SCHEMA.empty_table(), VALIDATORS_SCHEMA.empty_table())

    @classmethod
    def build(cls, versions: pa.Table, observations: pa.Table) -> VersionLog:
        """The log of whole runs' rows (`VERSION_COLUMNS`, `OBSERVATION_COLUMNS`)."""
        return cls.empty().extended(versions, observations)

    def extended(self, versions: pa.Table, observations: pa.Table) -> VersionLog:
        """The log after the rows of later runs."""
        if versions.num_rows == 0 and observations.num_rows == 0:
            return self
        new = _log_events(last_events(self.events), versions, observations)
        events = pa.concat_tables([self.events, new]) if new.num_rows else self.events
        validators = fold_validators(self.validators, observations)
        return VersionLog(events.combine_chunks(), validators)


# --- answering questions from the log -------------------------------------------------


def matching_rows(table: pa.Table, keys: pa.Table, on: list[str]) -> pa.Array:
    """Positions of the rows of `table` whose `on` columns match a row of `keys`, ascending.

    Only the `on` columns take part in the join, so `table` may hold columns (lists,
    structs) that Arrow's joins do not carry.
    """
    if table.num_rows == 0 or keys.num_rows == 0:
        return pa.array([], pa.int64())
    numbered = table.select(on).append_column(_POS, pa.array(np.arange(table.num_rows)))
    matched = numbered.join(keys.select(on), keys=on, join_type="left semi", use_threads=False)
    return pc.take(matched[_POS], pc.sort_indices(matched[_POS]))


def _semi_join(table: pa.Table, keys: pa.Table, on: list[str]) -> pa.Table:
    """Rows of `table` whose `on` columns match a row of `keys`, in `table`'s order."""
    return table.take(matching_rows(table, keys, on))


def current_versions(events: pa.Table, stored: pa.Table) -> pa.Table:
    """VERSION_KEY of each topic's latest sighting that names a version in `stored`."""
    shown = _semi_join(events.filter(pc.invert(events["gone"])), stored, _KEY)
    return _last_per(shown, _TOPIC).select(_KEY)


def gone_topics(events: pa.Table) -> pa.Table:
    """TOPIC_KEY of the topics whose latest sighting in `events` is "gone"."""
    last = _last_per(events, _TOPIC)
    return last.filter(last["gone"]).select(_TOPIC)


def live_topic_keys(events: pa.Table, stored: pa.Table) -> set[tuple[str, str]]:
    """Topics with a stored version whose latest sighting is not "gone"."""
    gone = set(_pairs(gone_topics(events), _TOPIC))
    return {topic for topic in _pairs(stored, _TOPIC) if topic not in gone}


def _pairs(table: pa.Table, columns: Iterable[str]) -> Iterable[tuple[Any, ...]]:
    return zip(*(table[name].to_pylist() for name in columns), strict=True)


def key_tuples(table: pa.Table, columns: Iterable[str]) -> list[tuple[Any, ...]]:
    """The rows of `columns` of `table` as tuples."""
    return list(_pairs(table, columns))


# --- the definitions, over raw rows (pandas) ------------------------------------------

_ORDER = ["run_id", "observed_at"]
"""Transaction order: by run, then by fetch time within the run."""


def current_version_keys(
    versions: pd.DataFrame, observations: pd.DataFrame, *, by_date: bool = False
) -> pd.DataFrame:
    """For each topic, the key of the version it showed most recently.

    `versions` holds one row per stored version to choose from (VERSION_KEY, run_id,
    observed_at); `observations` the observations to consider (the same columns plus
    outcome). A successful observation showing an older stored version (a revert) makes
    that version current again; observations naming no version in `versions` are
    ignored, so without any the most recently stored version wins. With `by_date`, the
    newest `last_updated` wins instead, the most recently shown among versions of the
    same date. Returns VERSION_KEY columns, one row per topic.
    """
    key = list(VERSION_KEY)
    shown = observations.loc[
        observations["outcome"].isin(SUCCESS_OUTCOMES).fillna(False), [*key, *_ORDER]
    ].dropna(subset=key)
    shown = shown.merge(versions[key].drop_duplicates(), on=key, how="inner")
    sightings = pd.concat([versions[[*key, *_ORDER]], shown], ignore_index=True)
    order = ["last_updated", *_ORDER] if by_date else _ORDER
    latest = sightings.sort_values(order, kind="stable").drop_duplicates(
        list(TOPIC_KEY), keep="last"
    )
    return latest[key].reset_index(drop=True)


def gone_topic_keys(versions: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    """Topics whose latest sighting says they are gone: TOPIC_KEY columns.

    A sighting is a stored version or an observation other than "error" (a failed fetch
    says nothing about the page). A topic seen again after it was gone is live again; a
    topic a run did not reach keeps its state.
    """
    topic = list(TOPIC_KEY)
    seen = observations.loc[
        observations["outcome"].ne("error").fillna(True), [*topic, *_ORDER, "outcome"]
    ]
    stored = versions[[*topic, *_ORDER]].assign(
        outcome=pd.Series("new", index=versions.index, dtype=seen["outcome"].dtype)
    )
    sightings = pd.concat([stored, seen], ignore_index=True)
    latest = sightings.sort_values(_ORDER, kind="stable").drop_duplicates(topic, keep="last")
    return latest.loc[latest["outcome"].eq("gone").fillna(False), topic].reset_index(drop=True)


def latest_validators(observations: pd.DataFrame) -> dict[str, Validators]:
    """Validators per canonical URL, for URLs whose latest observation was a success.

    They come from the latest successful fetch that either carried validators or was a
    full (200) fetch: a 304 without headers keeps the earlier ones, a full fetch without
    any drops them (they may belong to older content).
    """
    ordered = observations.sort_values(_ORDER, kind="stable")
    success = ordered["outcome"].isin(SUCCESS_OUTCOMES).fillna(False)
    latest = ordered.drop_duplicates("url", keep="last")
    live_urls = latest.loc[latest["outcome"].isin(SUCCESS_OUTCOMES).fillna(False), "url"]
    has_validators = ordered["etag"].notna() | ordered["last_modified"].notna()
    full_fetch = ~ordered["revalidated"].fillna(False).astype(bool)
    evidence = ordered[success & (has_validators | full_fetch)].drop_duplicates("url", keep="last")
    evidence = evidence[evidence["url"].isin(live_urls)]
    evidence = evidence[evidence["etag"].notna() | evidence["last_modified"].notna()]
    return {
        url: Validators(_none_if_na(etag), _none_if_na(last_modified))
        for url, etag, last_modified in zip(
            evidence["url"], evidence["etag"], evidence["last_modified"], strict=True
        )
    }


def _none_if_na(value: Any) -> str | None:
    return None if pd.isna(value) else str(value)


# --- snapshots as integer arrays ------------------------------------------------------


def _codes(*columns: pa.ChunkedArray | pa.Array) -> tuple[list[np.ndarray], list[Any]]:
    """Integer codes of the values of `columns` (one code space; None gets a code too),
    and the values by code."""
    chunks = [chunk.cast(pa.string()) for column in columns for chunk in _chunks(column)]
    if not chunks:
        return [np.zeros(0, dtype=np.int64) for _ in columns], []
    encoded = pc.dictionary_encode(pa.chunked_array(chunks, pa.string()), null_encoding="encode")
    dictionary = encoded.chunks[0].dictionary if encoded.num_chunks else pa.array([], pa.string())
    indices = np.concatenate(
        [chunk.indices.to_numpy(zero_copy_only=False) for chunk in encoded.chunks]
        or [np.zeros(0, dtype=np.int64)]
    ).astype(np.int64)
    result, start = [], 0
    for column in columns:
        result.append(indices[start : start + len(column)])
        start += len(column)
    return result, dictionary.to_pylist()


def _chunks(column: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return list(column.chunks) if isinstance(column, pa.ChunkedArray) else [column]


def _topic_key(table: pa.Table) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(table["language"], table["slug"], "\x00")


def _last_per_group(indices: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Of `indices` (ascending priority), the last of each group (`groups[indices]`)."""
    if len(indices) == 0:
        return indices
    reversed_groups = groups[indices][::-1]
    _, first = np.unique(reversed_groups, return_index=True)
    return indices[::-1][first]


class Selector:
    """The events log and the stored versions as integer arrays: every snapshot question
    (`current`, `by_date`) in a few vectorised passes, answered as rows of `stored`.

    Built once per archive opened: one join names, for each event, the row of `stored`
    holding the version it shows.
    """

    def __init__(self, events: pa.Table, stored: pa.Table) -> None:
        (event_topic, stored_topic), _ = _codes(_topic_key(events), _topic_key(stored))
        (event_run, stored_run), runs = _codes(events["run_id"], stored["run_id"])
        rank = np.empty(len(runs), dtype=np.int64)
        rank[np.argsort(np.array(runs, dtype=object))] = np.arange(len(runs))
        self._sorted_runs = sorted(runs)
        self.event_topic, self.stored_topic = event_topic, stored_topic
        self.event_run, self.stored_run = rank[event_run], rank[stored_run]
        self.event_time = _micros(events["observed_at"])
        self.event_gone = events["gone"].to_numpy(zero_copy_only=False).astype(bool)
        self.stored_day = pc.fill_null(stored["last_updated"].cast(pa.int32()), 0).to_numpy(
            zero_copy_only=False
        )
        self.event_version = self._versions_of(events, stored)
        shown = np.flatnonzero(self.event_version >= 0)
        self.last_seen = np.full(stored.num_rows, -1, dtype=np.int64)
        np.maximum.at(self.last_seen, self.event_version[shown], shown)

    @staticmethod
    def _versions_of(events: pa.Table, stored: pa.Table) -> np.ndarray:
        """Per event, the first row of `stored` with the version it names, else -1."""
        found = np.full(events.num_rows, -1, dtype=np.int64)
        if events.num_rows == 0 or stored.num_rows == 0:
            return found
        keys = stored.select(_KEY).append_column(_POS, pa.array(np.arange(stored.num_rows)))
        keys = keys.group_by(_KEY, use_threads=False).aggregate([(_POS, "min")])
        named = events.select(_KEY).append_column("__event", pa.array(np.arange(events.num_rows)))
        matched = named.join(keys, keys=_KEY, join_type="inner", use_threads=False)
        found[matched["__event"].to_numpy()] = matched[f"{_POS}_min"].to_numpy()
        return found

    def _run_limit(self, run_id: str | None) -> int:
        if run_id is None:
            return len(self._sorted_runs)
        return bisect.bisect_right(self._sorted_runs, run_id) - 1

    def _gone_topics(self, events: np.ndarray) -> np.ndarray:
        """Topic codes whose last event among `events` (ascending) is gone."""
        last = _last_per_group(events, self.event_topic)
        gone: np.ndarray = self.event_topic[last[self.event_gone[last]]]
        return gone

    def current(self, through_run: str | None = None) -> np.ndarray:
        """Rows of `stored` of each live topic's current version (after `through_run`)."""
        limit = self._run_limit(through_run)
        in_cut = np.flatnonzero(self.event_run <= limit)
        version = self.event_version[in_cut]
        named = version >= 0
        shows = in_cut[named & ~self.event_gone[in_cut]]
        shows = shows[self.stored_run[self.event_version[shows]] <= limit]
        chosen = self.event_version[_last_per_group(shows, self.event_topic)]
        return self._without_gone(chosen, self._gone_topics(in_cut))

    def by_date(self, day: date) -> np.ndarray:
        """Rows of `stored` of each live topic's newest version dated on or before `day`
        (ties to the version shown most recently), gone-ness as fetched by the end of
        `day` (UTC)."""
        limit = (day - date(1970, 1, 1)).days
        dated = np.flatnonzero(self.stored_day <= limit)
        order = np.lexsort(
            (dated, self.last_seen[dated], self.stored_day[dated], self.stored_topic[dated])
        )
        ranked = dated[order]
        chosen = _last_per_group(np.arange(len(ranked)), self.stored_topic[ranked])
        chosen = ranked[chosen]
        before = np.flatnonzero(self.event_time < day_end(day))
        return self._without_gone(chosen, self._gone_topics(before))

    def _without_gone(self, rows: np.ndarray, gone_topics: np.ndarray) -> np.ndarray:
        """`rows` of `stored` whose topic is not gone, ascending."""
        if len(gone_topics):
            rows = rows[~np.isin(self.stored_topic[rows], gone_topics)]
        return np.sort(rows)


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.cast(pa.int64()).to_numpy(), dtype=np.int64)
