"""The sightings log answers exactly what the definitions over raw rows answer.

Random histories of a few topics (new versions, same-date edits, reverts, 304s with and
without validators, full fetches without validators, gone and back, errors, runs that
skip a topic, successes naming a version never stored) are built as raw Arrow rows;
every snapshot the loaders can ask for (now, as of each run, as of dates around each
change) is computed by the pandas definitions (`current_version_keys`,
`gone_topic_keys`, `latest_validators`, as the loader of one file per run computed them)
and from the events log (built at once and run by run) with the `Selector` the loaders
use; the index's answers (current versions, live topics) too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from pipelines.archive.versions import (
    EVENTS_SCHEMA,
    OBSERVATION_COLUMNS,
    VERSION_COLUMNS,
    Selector,
    VersionLog,
    current_version_keys,
    current_versions,
    gone_topic_keys,
    latest_validators,
    live_topic_keys,
    validators_map,
)
from pipelines.core.records import Observation, VersionRecord
from pipelines.core.schema import VERSION_KEY, observations_table, topics_table
from tests.archive_factory import make_page, topic_url

START = date(2024, 1, 1)
TOPICS = (("en", "asthma"), ("en", "copd"), ("es", "gripe"), ("en", "flu"))
TEXTS = ("Original text.", "Edited text.", "Rewritten text.")


@dataclass
class History:
    run_ids: list[str] = field(default_factory=list)
    versions: list[pa.Table] = field(default_factory=list)
    observations: list[pa.Table] = field(default_factory=list)
    dates: set[date] = field(default_factory=set)


def random_history(seed: int, runs: int = 14) -> History:
    """Raw rows of `runs` runs over TOPICS, chosen by `rng`."""
    rng = random.Random(seed)
    history = History()
    stored: dict[tuple[Any, ...], Any] = {}
    shown: dict[tuple[str, str], Any] = {}
    for index in range(runs):
        day = START + timedelta(days=3 * index)
        run_id = f"{day:%Y%m%d}T020000Z-{index:04d}"
        history.run_ids.append(run_id)
        moment = datetime.combine(day, time(2), UTC)
        version_rows: list[VersionRecord] = []
        observation_rows: list[Observation] = []
        for language, slug in rng.sample(TOPICS, k=len(TOPICS)):
            moment += timedelta(minutes=rng.choice((1, 1, 2)))
            action = rng.choice(
                ("skip", "new", "new", "same_date", "show", "304", "304", "gone", "error", "odd")
            )
            current = shown.get((language, slug))
            url = topic_url(slug, language)
            base: dict[str, Any] = {
                "run_id": run_id,
                "observed_at": moment,
                "url": url,
                "source_url": url,
                "language": language,
                "slug": slug,
            }
            etag = rng.choice((None, f'"{index}"', '"fixed"'))
            last_modified = rng.choice((None, "Mon, 01 Jan 2024 00:00:00 GMT"))
            if action == "skip":
                continue
            if action == "gone":
                observation_rows.append(
                    Observation(**base, outcome="gone", http_status=rng.choice((404, None)))
                )
                continue
            if action == "error":
                observation_rows.append(Observation(**base, outcome="error", http_status=503))
                continue
            if action == "odd" or (action in ("show", "304", "same_date") and current is None):
                # A success naming a version never stored (or nothing at all).
                observation_rows.append(
                    Observation(
                        **base,
                        outcome="unchanged",
                        http_status=200,
                        last_updated=rng.choice((None, day)),
                        content_hash=rng.choice((None, "f" * 64)),
                        etag=etag,
                        last_modified=last_modified,
                    )
                )
                continue
            if action in ("show", "304"):
                page = rng.choice([p for key, p in stored.items() if key[:2] == (language, slug)])
                revalidated = action == "304"
                shown[(language, slug)] = page
                observation_rows.append(
                    Observation(
                        **base,
                        outcome="unchanged",
                        http_status=304 if revalidated else 200,
                        revalidated=revalidated,
                        last_updated=page.last_updated,
                        content_hash=page.content_hash,
                        etag=etag,
                        last_modified=last_modified,
                    )
                )
                continue
            # A new page: a new date, or a same-date edit of the current one.
            last_updated = current.last_updated if action == "same_date" else day
            last_updated -= timedelta(days=rng.choice((0, 0, 1, 40)))
            page = make_page(
                slug,
                language=language,
                last_updated=last_updated,
                text=rng.choice(TEXTS) + str(rng.randrange(3)),
            )
            key = (language, slug, page.last_updated, page.content_hash)
            outcome = "unchanged" if key in stored else "new"
            if key not in stored:
                stored[key] = page
                version_rows.append(VersionRecord(page=page, run_id=run_id, observed_at=moment))
            history.dates.add(page.last_updated)
            shown[(language, slug)] = stored[key]
            observation_rows.append(
                Observation(
                    **base,
                    outcome=outcome,
                    http_status=200,
                    last_updated=page.last_updated,
                    content_hash=page.content_hash,
                    etag=etag,
                    last_modified=last_modified,
                )
            )
        history.versions.append(topics_table(version_rows).select(list(VERSION_COLUMNS)))
        history.observations.append(
            observations_table(observation_rows).select(list(OBSERVATION_COLUMNS))
        )
        history.dates.add(day)
    return history


# --- the definitions, as the loader of one file per run applied them ------------------


def _frame(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas(types_mapper=pd.ArrowDtype)
    return frame


def defined_selection(versions: pa.Table, observations: pa.Table, as_of: Any) -> set[tuple]:
    """What `Archive.topics(as_of)` selected before the sightings log existed."""
    v, o = _frame(versions), _frame(observations)
    if isinstance(as_of, str):
        v, o = v[v["run_id"] <= as_of], o[o["run_id"] <= as_of]
    if isinstance(as_of, date):
        until = pd.Timestamp(datetime.combine(as_of + timedelta(days=1), time(), UTC))
        selected = current_version_keys(v[v["last_updated"] <= as_of], o, by_date=True)
        v, o = v[v["observed_at"] < until], o[o["observed_at"] < until]
    else:
        selected = current_version_keys(v, o)
    gone = gone_topic_keys(v, o)
    marked = selected.merge(gone, on=["language", "slug"], how="left", indicator=True)
    live = marked.loc[marked["_merge"] == "left_only", list(VERSION_KEY)]
    return set(live.itertuples(index=False, name=None))


def indexed_answers(log: VersionLog, stored: pa.Table) -> tuple[set[tuple], set[tuple]]:
    """The index's current version of every topic (gone ones too) and its live topics."""
    current = current_versions(log.events, stored)
    latest = set(zip(*(current[name].to_pylist() for name in VERSION_KEY), strict=True))
    return latest, live_topic_keys(log.events, stored)


def defined_index(versions: pa.Table, observations: pa.Table) -> tuple[set[tuple], set[tuple]]:
    v, o = _frame(versions), _frame(observations)
    latest = set(current_version_keys(v, o).itertuples(index=False, name=None))
    gone = set(gone_topic_keys(v, o).itertuples(index=False, name=None))
    live = {(language, slug) for language, slug, *_ in latest} - gone
    return latest, live


def selected_rows(selector: Selector, stored: pa.Table, as_of: Any) -> set[tuple]:
    """The same, with the integer index the loaders use."""
    rows = selector.by_date(as_of) if isinstance(as_of, date) else selector.current(as_of)
    chosen = stored.take(pa.array(rows, pa.int64()))
    return set(zip(*(chosen[name].to_pylist() for name in VERSION_KEY), strict=True))


@pytest.mark.parametrize("seed", range(16))
def test_every_snapshot_from_the_log_matches_the_definitions(seed: int) -> None:
    history = random_history(seed)
    versions = pa.concat_tables(history.versions)
    observations = pa.concat_tables(history.observations)
    at_once = VersionLog.build(versions, observations)
    run_by_run = VersionLog.empty()
    for run_versions, run_observations in zip(history.versions, history.observations, strict=True):
        run_by_run = run_by_run.extended(run_versions, run_observations)
    assert run_by_run.events.equals(at_once.events)
    assert run_by_run.validators.equals(at_once.validators)

    cuts: list[Any] = [None, *history.run_ids]
    for day in sorted(history.dates):
        cuts += [day - timedelta(days=1), day]
    selector = Selector(at_once.events, versions)
    for as_of in cuts:
        expected = defined_selection(versions, observations, as_of)
        assert selected_rows(selector, versions, as_of) == expected, as_of
    assert indexed_answers(at_once, versions) == defined_index(versions, observations)
    assert validators_map(at_once.validators) == latest_validators(_frame(observations))


@pytest.mark.parametrize("seed", range(10))
def test_the_log_keeps_about_one_event_per_change(seed: int) -> None:
    history = random_history(seed, runs=30)
    versions = pa.concat_tables(history.versions)
    observations = pa.concat_tables(history.observations)
    log = VersionLog.build(versions, observations)
    sightings = (
        versions.num_rows
        + pa.compute.sum(pa.compute.not_equal(observations["outcome"], "error")).as_py()
    )
    assert log.events.num_rows < sightings
    # No event repeats the one before it for the same topic.
    previous: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in log.events.to_pylist():
        topic = (row["language"], row["slug"])
        identity = (row["gone"], row["last_updated"], row["content_hash"])
        assert previous.get(topic) != identity
        previous[topic] = identity


def test_a_run_in_which_nothing_changed_adds_no_event() -> None:
    page = make_page()
    stored = topics_table([VersionRecord(page=page, run_id="r1", observed_at=_at(1))])
    first = observations_table([_observation("r1", _at(1), page, "new")])
    log = VersionLog.build(
        stored.select(list(VERSION_COLUMNS)), first.select(list(OBSERVATION_COLUMNS))
    )
    unchanged = observations_table(
        [_observation("r2", _at(2), page, "unchanged", revalidated=True, etag=None)]
    )
    after = log.extended(
        stored.slice(0, 0).select(list(VERSION_COLUMNS)),
        unchanged.select(list(OBSERVATION_COLUMNS)),
    )
    assert after.events.num_rows == log.events.num_rows == 1
    assert validators_map(after.validators) == validators_map(log.validators)


def test_each_topic_is_compared_with_its_own_previous_event() -> None:
    asthma, copd = make_page(), make_page("copd")
    rows = observations_table(
        [
            _observation("r1", _at(1), asthma, "new"),
            _observation("r1", _at(2), copd, "new"),
            _observation("r2", _at(3), asthma, "unchanged"),
            _observation("r2", _at(4), copd, "gone", last_updated=None, content_hash=None),
        ]
    ).select(list(OBSERVATION_COLUMNS))
    empty = topics_table([]).select(list(VERSION_COLUMNS))
    log = VersionLog.build(empty, rows.slice(0, 2)).extended(empty, rows.slice(2))
    assert [(row["slug"], row["run_id"], row["gone"]) for row in log.events.to_pylist()] == [
        ("asthma", "r1", False),
        ("copd", "r1", False),
        ("copd", "r2", True),
    ]
    assert log.events.schema.equals(EVENTS_SCHEMA)


def _at(hour: int) -> datetime:
    return datetime(2024, 1, 1, hour, tzinfo=UTC)


def _observation(
    run_id: str, moment: datetime, page: Any, outcome: Any, **fields: Any
) -> Observation:
    values: dict[str, Any] = {
        "run_id": run_id,
        "observed_at": moment,
        "url": page.url,
        "source_url": page.url,
        "language": page.language,
        "slug": page.slug,
        "outcome": outcome,
        "http_status": 200,
        "last_updated": page.last_updated,
        "content_hash": page.content_hash,
        "etag": '"e"',
    }
    values.update(fields)
    return Observation(**values)
