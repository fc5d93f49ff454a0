"""The version/dedupe index: what a crawl needs to know about the committed runs.

Built from the sightings log and the stored versions (`build_index`), and advanced run by
run from each commit's rows (`advance_index`) so a crawl of many runs never rebuilds it.
`classify` says what a fetched page is relative to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from crawler.parsing.items import HealthTopicPage
from crawler.parsing.urls import topic_path
from pipelines.archive.keys import LatestVersion, TopicKey, VersionKey, version_key
from pipelines.archive.versions import (
    Validators,
    VersionLog,
    current_versions,
    key_tuples,
    last_events,
    live_topic_keys,
    validators_map,
)
from pipelines.core.records import Outcome
from pipelines.core.schema import VERSION_KEY


@dataclass(frozen=True, kw_only=True, slots=True)
class ArchiveIndex:
    """What the crawler needs to know about the committed runs (uncommitted ones never count).

    Tuples compare equal to the NamedTuple keys, so plain tuples work for lookups.
    """

    run_ids: tuple[str, ...]
    """Committed runs, oldest first."""
    versions: frozenset[VersionKey]
    """Every stored version."""
    latest: Mapping[TopicKey, LatestVersion]
    """Per topic, the version it showed most recently (see `current_version_keys`)."""
    validators: Mapping[str, Validators]
    """Per canonical URL, what to revalidate with (see `latest_validators`), for the
    topics whose latest sighting names a stored version (the others are fetched in full)."""
    journal_articles: frozenset[tuple[str, str, str]]
    """(language, slug, pmid) of every journal article stored."""
    live_topics: frozenset[TopicKey]
    """Topics with a stored version whose latest sighting is not "gone" (see
    `gone_topic_keys`): what a full crawl expects to find again."""

    @classmethod
    def empty(cls) -> ArchiveIndex:
        """The index of an archive without runs."""
        return cls(
            run_ids=(),
            versions=frozenset(),
            latest={},
            validators={},
            journal_articles=frozenset(),
            live_topics=frozenset(),
        )


def classify(page: HealthTopicPage, index: ArchiveIndex) -> Outcome:
    """What `page` is relative to the archive described by `index`: "unchanged" (its
    version is stored), "same_date_edit" (new content, the latest version's date) or "new"."""
    if version_key(page) in index.versions:
        return "unchanged"
    latest = index.latest.get(TopicKey(page.language, page.slug))
    if latest is not None and latest.last_updated == page.last_updated:
        return "same_date_edit"
    return "new"


def build_index(
    run_ids: tuple[str, ...], log: VersionLog, stored: pa.Table, articles: pa.Table
) -> ArchiveIndex:
    """The index of the committed runs `run_ids`: their sightings `log`, their stored
    versions (`stored`: VERSION_KEY columns) and journal articles (language, slug, pmid)."""
    current = current_versions(log.events, stored)
    stored_keys = frozenset(VersionKey(*row) for row in key_tuples(stored, VERSION_KEY))
    return ArchiveIndex(
        run_ids=run_ids,
        versions=stored_keys,
        latest={
            TopicKey(language, slug): LatestVersion(last_updated, content_hash)
            for language, slug, last_updated, content_hash in key_tuples(current, VERSION_KEY)
        },
        validators=_revalidatable(validators_map(log.validators), log.events, stored_keys),
        journal_articles=frozenset(key_tuples(articles, ("language", "slug", "pmid"))),
        live_topics=frozenset(TopicKey(*topic) for topic in live_topic_keys(log.events, stored)),
    )


def advance_index(
    index: ArchiveIndex,
    *,
    run_ids: tuple[str, ...],
    versions: pa.Table,
    articles: pa.Table,
    events: pa.Table,
    new_events: pa.Table,
    validators: pa.Table,
    observations: pa.Table,
) -> ArchiveIndex:
    """The index after one more run, from the run's rows, the events log (`events`)
    and the events the run added (`new_events`)."""
    stored = index.versions | {VersionKey(*row) for row in key_tuples(versions, VERSION_KEY)}
    latest = dict(index.latest)
    shown = new_events.filter(pc.is_valid(new_events["content_hash"]))
    for language, slug, last_updated, content_hash in key_tuples(shown, VERSION_KEY):
        if (language, slug, last_updated, content_hash) in stored:
            latest[TopicKey(language, slug)] = LatestVersion(last_updated, content_hash)
    live = set(index.live_topics)
    for language, slug, gone in key_tuples(last_events(new_events), ("language", "slug", "gone")):
        topic = TopicKey(language, slug)
        if gone:
            live.discard(topic)
        elif topic in latest:
            live.add(topic)
    fetched = set(observations["url"].to_pylist())
    advanced = dict(index.validators)
    for url in fetched:
        advanced.pop(url, None)
    touched = validators.filter(
        pc.is_in(validators["url"], value_set=pa.array(sorted(fetched), pa.string()))
    )
    advanced.update(validators_map(touched))
    return ArchiveIndex(
        run_ids=run_ids,
        versions=frozenset(stored),
        latest=latest,
        validators=_revalidatable(advanced, events, frozenset(stored)),
        journal_articles=index.journal_articles
        | frozenset(key_tuples(articles, ("language", "slug", "pmid"))),
        live_topics=frozenset(live),
    )


def _revalidatable(
    validators: Mapping[str, Validators], events: pa.Table, stored: frozenset[VersionKey]
) -> dict[str, Validators]:
    """The `validators` of the topic pages whose latest sighting in `events` names a
    stored version. A page whose version is missing (never stored, or lost) is fetched
    in full: a 304 would confirm a version the archive does not hold."""
    shown = key_tuples(last_events(events), (*VERSION_KEY, "gone"))
    current = {
        TopicKey(language, slug)
        for language, slug, last_updated, content_hash, gone in shown
        if not gone and VersionKey(language, slug, last_updated, content_hash) in stored
    }
    kept = {}
    for url, known in validators.items():
        path = topic_path(url)
        if path is not None and TopicKey(path[1], path[0]) in current:
            kept[url] = known
    return kept
