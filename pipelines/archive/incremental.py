"""The incremental crawl plan (`crawl --plan incremental`): which pages a daily run
fetches, given today's XML dump and what the archive holds. Pure functions.

NLM's daily XML dump holds most of what a topic page shows. A run compares each
record's fingerprint with the one last stored in the archive (the xml_records table) and
fetches only:

* `new`: topics of the dump the archive does not hold live (first seen, or back);
* `changed`: topics whose record changed (or has no stored record yet: the first
  incremental run after a crawl made without the dump fetches every topic once);
* `missing`: live topics the dump no longer lists, to confirm with their own URL: a
  topic is marked gone only when it answers 404/410, never from the dump alone;
* `revalidate`: the day's slice of every other live topic, as conditional requests
  (a 304 costs no download). Topic (language, slug) is in slice
  sha256("<language>/<slug>") mod N, and day D (the dump's date, or today's when the
  dump has none) revalidates slice D.toordinal() mod N: a job run every day revalidates
  every page at least once in N days, which covers the sections the dump lacks (the
  "last updated" date, clinical trials, journal articles) and edits it did not show.
  A day without a run leaves its slice to the same day of the next cycle.

and the A-Z index pages when no run has read them for INDEX_EVERY_DAYS days, to
cross-check the dump's topic list (`cross_check`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from crawler.parsing.items import Language
from crawler.parsing.urls import MEDLINEPLUS_ORIGIN
from crawler.parsing.xml_dump import Dump

PLANS = ("full", "incremental")
"""`crawl --plan`: every listed page (the default), or what the dump says changed."""
REVALIDATE_DAYS = 7
"""Default N of `--revalidate-days`: every page revalidated at least once in N daily runs."""
INDEX_EVERY_DAYS = 7
"""An incremental run reads the A-Z index when no run has for this many days."""
LISTED_AT_MOST = 20
"""Topics named in one cross-check note; the rest are counted."""

Reason = Literal["new", "changed", "missing", "revalidate"]
REASONS: tuple[Reason, ...] = ("new", "changed", "missing", "revalidate")

TopicId = tuple[str, str]
"""(language, slug)."""


def topic_url(language: str, slug: str) -> str:
    """The canonical URL of a topic page."""
    prefix = "/spanish" if language == "es" else ""
    return f"{MEDLINEPLUS_ORIGIN}{prefix}/{slug}.html"


def revalidation_slice(language: str, slug: str, days: int) -> int:
    """Which of the `days` slices the topic belongs to (stable across runs and machines)."""
    digest = hashlib.sha256(f"{language}/{slug}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % days


def revalidated_on(day: date, language: str, slug: str, days: int) -> bool:
    """True when the run of `day` revalidates the topic."""
    return revalidation_slice(language, slug, days) == day.toordinal() % days


def index_due(day: date, last_index_read: date | None) -> bool:
    """True when the run of `day` reads the A-Z index: no run read it in the last
    INDEX_EVERY_DAYS days."""
    return last_index_read is None or (day - last_index_read).days >= INDEX_EVERY_DAYS


@dataclass(frozen=True, slots=True)
class Plan:
    """What an incremental run fetches, and why."""

    day: date
    """The day the plan is for (the revalidation slice)."""
    fetch: dict[str, Reason]
    """Canonical URL -> why it is fetched, in fetch order (new, changed, missing, revalidate)."""
    read_index: bool
    """Whether the A-Z index pages are read too."""
    listed: frozenset[TopicId] = field(default_factory=frozenset)
    """The topics the dump lists (in the crawled languages)."""
    live: frozenset[TopicId] = field(default_factory=frozenset)
    """The topics the archive held live when the run began (in the crawled languages)."""

    def count(self, reason: Reason) -> int:
        return sum(1 for why in self.fetch.values() if why == reason)

    def urls(self, reason: Reason) -> list[str]:
        return [url for url, why in self.fetch.items() if why == reason]


def plan_incremental(
    dump: Dump,
    stored: Mapping[TopicId, str],
    live: Collection[TopicId],
    *,
    languages: Iterable[Language],
    revalidate_days: int = REVALIDATE_DAYS,
    last_index_read: date | None = None,
    today: date | None = None,
) -> Plan:
    """The plan for `dump` against an archive whose last stored record fingerprints are
    `stored` and whose live topics are `live`. The day is the dump's, else `today`."""
    day = dump.dump_date or today
    if day is None:
        raise ValueError("the dump has no date-generated day and no day was given")
    chosen = set(languages)
    live_topics = frozenset(topic for topic in live if topic[0] in chosen)
    listed: dict[TopicId, str] = {}
    by_reason: dict[Reason, list[str]] = {reason: [] for reason in REASONS}
    for record in dump.topics:
        topic = (record.language, record.slug)
        if record.language not in chosen or topic in listed:
            continue
        listed[topic] = record.url
        if topic not in live_topics:
            by_reason["new"].append(record.url)
        elif stored.get(topic) != record.fingerprint:
            by_reason["changed"].append(record.url)
        elif revalidated_on(day, *topic, revalidate_days):
            by_reason["revalidate"].append(record.url)
    by_reason["missing"] = [
        topic_url(*topic) for topic in sorted(live_topics) if topic not in listed
    ]
    fetch = {url: reason for reason in REASONS for url in by_reason[reason]}
    return Plan(
        day=day,
        fetch=fetch,
        read_index=index_due(day, last_index_read),
        listed=frozenset(listed),
        live=live_topics,
    )


def cross_check(
    plan: Plan,
    *,
    confirmed_gone: Collection[TopicId],
    served: Collection[TopicId],
    indexed: Collection[TopicId] | None,
    index_languages: Collection[str] = (),
) -> list[str]:
    """The run's notes: topics in one list and not the other, between the dump and the
        archive's live topics (with what fetching the missing ones found: still `served`,
        `confirmed_gone` by 404/410, or neither), and between the dump and the topics the
        index listed (`indexed`, in `index_languages`: those whose index pages all answered;
    None when the index was not read)."""
    notes = []
    added = sorted(plan.listed - plan.live)
    if added:
        notes.append(f"{_named(added)} in the XML dump, not live in the archive: fetched as new")
    missing = sorted(plan.live - plan.listed)
    if missing:
        still = [topic for topic in missing if topic in served]
        gone = [topic for topic in missing if topic in confirmed_gone]
        unknown = [topic for topic in missing if topic not in served and topic not in gone]
        parts = [
            f"{len(still)} still served (not marked gone){_names(still)}",
            f"{len(gone)} answered 404/410 (marked gone){_names(gone)}",
        ]
        if unknown:
            parts.append(f"{len(unknown)} not confirmed either way{_names(unknown)}")
        notes.append(
            f"{_named(missing)} live in the archive, missing from the XML dump: " + "; ".join(parts)
        )
    if indexed is not None:
        in_index = {topic for topic in indexed if topic[0] in index_languages}
        in_dump = {topic for topic in plan.listed if topic[0] in index_languages}
        only_index = sorted(in_index - in_dump)
        if only_index:
            notes.append(f"{_named(only_index)} listed by the A-Z index, missing from the XML dump")
        only_dump = sorted(in_dump - in_index)
        if only_dump:
            notes.append(f"{_named(only_dump)} in the XML dump, not listed by the A-Z index")
    return notes


def _named(topics: list[TopicId]) -> str:
    """ "3 topics (en/acne, en/asthma, es/acne)"."""
    noun = "topic" if len(topics) == 1 else "topics"
    return f"{len(topics)} {noun}{_names(topics, parenthesis=True)}"


def _names(topics: list[TopicId], *, parenthesis: bool = False) -> str:
    if not topics:
        return ""
    names = ", ".join(f"{language}/{slug}" for language, slug in topics[:LISTED_AT_MOST])
    if len(topics) > LISTED_AT_MOST:
        names += f" and {len(topics) - LISTED_AT_MOST} more"
    return f" ({names})" if parenthesis else f": {names}"
