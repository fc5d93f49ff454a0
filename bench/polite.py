"""Benchmark: what a daily `crawl --plan incremental` costs and how late it notices changes,
against a full conditional crawl, over a simulated history.

What it exercises: the production planner (`pipelines.archive.incremental.plan_incremental`) and
the rule that decides which XML records a run stores
(`pipelines.archive.xml_records.records_to_store`), fed each day with a simulated XML dump
(`crawler.parsing.xml_dump.DumpTopic` records with real fingerprints) and the archive state those
functions left the day before (stored fingerprints, live topics, last index read). The
site is simulated: a fetch sees the page's current version; a removed page answers 404.
Scrapy and the archive's files are not run (90 crawls of 2,000 pages would take hours at
one request a second, which is the point); tests/test_incremental_crawl.py runs the
same plan end to end on the local fixture site.

Assumptions (no two real consecutive dumps were at hand), per simulated day, seeded:

* a mirror of `--topics` topics, half English and half Spanish, mixed;
* 1% of live topics edited; 70% of those edits change the topic's XML record, 30% touch
  only what the dump does not show (clinical trials, journal articles, the date, a
  silent edit);
* 0.1% of topics change membership: half of those are new topics (in the dump and
  served), half removed (out of the dump, 404);
* 0.05% of topics left out of one day's dump while still served (a glitch): they must
  not be marked gone;
* a full conditional crawl sends one request per live topic page, per index page (28 a
  language: the index and its letter pages) and robots.txt; an incremental run sends
  robots.txt, xml.html and the dump (the "XML part" with its new, changed and missing
  topics), its revalidation slice (conditional requests), and the index pages when due.

Detection: a change is detected on the first day a run fetches the page after it
happened (the archive then stores the version); `max_detection_delay_days` is the
largest number of days that took. `missed_at_end` counts changes still undetected at
the end and older than the revalidation window (those younger are `pending_at_end`,
within their window). `false_gone` counts topics marked gone while still served.

Prints JSON. Usage: python bench/polite.py [--days 90] [--topics 2000]
[--revalidate-days 7] [--seed 17] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from crawler.parsing.xml_dump import Dump, DumpTopic, fingerprint
from pipelines.archive.incremental import REVALIDATE_DAYS, TopicId, plan_incremental, topic_url
from pipelines.archive.xml_records import records_to_store

START = date(2025, 1, 1)
INDEX_PAGES = 2 * 28
"""A-Z index pages of both languages: healthtopics.html and its letter pages."""
XML_FETCHES = 2
"""xml.html (for --from-xml latest) and the dump itself."""
EDIT_RATE = 0.01
XML_VISIBLE_SHARE = 0.70
MEMBERSHIP_RATE = 0.001
XML_GLITCH_RATE = 0.0005


@dataclass
class Topic:
    """A simulated topic on the site."""

    record: DumpTopic
    served: bool = True


@dataclass
class Change:
    topic: TopicId
    day: int
    kind: str
    """edit_xml (visible in the dump), edit_hidden, added or removed."""
    detected: int | None = None


def _record(language: str, slug: str, edits: int) -> DumpTopic:
    topic = DumpTopic(
        url=topic_url(language, slug),
        language=language,  # type: ignore[arg-type]
        slug=slug,
        title=f"{slug} (record edit {edits})",
        summary=f"<p>Summary of {slug}, edit {edits}.</p>",
    )
    return replace(topic, fingerprint=fingerprint(topic))


def simulate(days: int, topics: int, revalidate_days: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    site: dict[TopicId, Topic] = {}
    record_edits: dict[TopicId, int] = {}
    next_id = 0

    def add_topic() -> TopicId:
        nonlocal next_id
        language = "en" if next_id % 2 == 0 else "es"
        topic = (language, f"topic{next_id:05d}")
        next_id += 1
        record_edits[topic] = 0
        site[topic] = Topic(_record(*topic, 0))
        return topic

    for _ in range(topics):
        add_topic()
    # Day 0: a full crawl with --from-xml made the baseline.
    stored: dict[TopicId, str] = {topic: t.record.fingerprint for topic, t in site.items()}
    live: set[TopicId] = set(site)
    last_index_read: date | None = START
    changes: list[Change] = []
    pending: dict[TopicId, list[Change]] = {}
    full_requests: list[int] = []
    incremental_requests: list[int] = []
    xml_part: list[int] = []
    false_gone = 0

    for day_number in range(1, days + 1):
        today = START + timedelta(days=day_number)
        served = [topic for topic, t in site.items() if t.served]
        for topic in served:
            if rng.random() < EDIT_RATE:
                visible = rng.random() < XML_VISIBLE_SHARE
                if visible:
                    record_edits[topic] += 1
                    site[topic].record = _record(*topic, record_edits[topic])
                change = Change(topic, day_number, "edit_xml" if visible else "edit_hidden")
                changes.append(change)
                pending.setdefault(topic, []).append(change)
        for _ in range(_count(rng, topics * MEMBERSHIP_RATE / 2)):
            topic = add_topic()
            change = Change(topic, day_number, "added")
            changes.append(change)
            pending.setdefault(topic, []).append(change)
        for _ in range(_count(rng, topics * MEMBERSHIP_RATE / 2)):
            topic = rng.choice([topic for topic, t in site.items() if t.served])
            site[topic].served = False
            change = Change(topic, day_number, "removed")
            changes.append(change)
            pending.setdefault(topic, []).append(change)
        glitched = {
            topic for topic, t in site.items() if t.served and rng.random() < XML_GLITCH_RATE
        }
        dump = Dump(
            dump_date=today,
            topics=[t.record for topic, t in site.items() if t.served and topic not in glitched],
        )

        plan = plan_incremental(
            dump,
            stored,
            live,
            languages=("en", "es"),
            revalidate_days=revalidate_days,
            last_index_read=last_index_read,
        )
        full_requests.append(1 + INDEX_PAGES + sum(1 for t in site.values() if t.served))
        xml_guided = plan.count("new") + plan.count("changed") + plan.count("missing")
        xml_part.append(1 + XML_FETCHES + xml_guided)
        incremental_requests.append(
            1 + XML_FETCHES + len(plan.fetch) + (INDEX_PAGES if plan.read_index else 0)
        )
        if plan.read_index:
            last_index_read = today

        fetched_served: set[TopicId] = set()
        for url in plan.fetch:
            topic = _topic_of(url)
            page = site.get(topic)
            if page is None or not page.served:  # 404: gone, on evidence
                if topic in live:
                    live.discard(topic)
                    if page is not None and page.served:
                        false_gone += 1
                _detect(pending, topic, day_number)
                continue
            fetched_served.add(topic)
            live.add(topic)
            _detect(pending, topic, day_number)
        for row in records_to_store(dump.topics, stored, fetched_served, "run", today):
            stored[(row.record.language, row.record.slug)] = row.record.fingerprint

    detected = [change for change in changes if change.detected is not None]
    delays = [change.detected - change.day for change in detected]  # type: ignore[operator]
    undetected = [change for change in changes if change.detected is None]
    overdue = [change for change in undetected if days - change.day >= revalidate_days]
    visible_kinds = {"edit_xml", "added", "removed"}
    full_mean = statistics.fmean(full_requests)
    incremental_mean = statistics.fmean(incremental_requests)
    xml_mean = statistics.fmean(xml_part)
    hidden_delays = [
        change.detected - change.day  # type: ignore[operator]
        for change in detected
        if change.kind == "edit_hidden"
    ]
    visible_late = [
        change
        for change in changes
        if change.kind in visible_kinds and change.detected != change.day
    ]
    return {
        "days": days,
        "topics": topics,
        "revalidate_days": revalidate_days,
        "full_requests_per_day": round(full_mean, 1),
        "incremental_requests_per_day": round(incremental_mean, 1),
        "incremental_requests_max": max(incremental_requests),
        "requests_share": round(incremental_mean / full_mean, 4),
        "xml_part_requests_share": round(xml_mean / full_mean, 4),
        "changes": len(changes),
        "changes_by_kind": _by_kind(changes),
        "detected_same_day": sum(1 for delay in delays if delay == 0),
        "detected_later": sum(1 for delay in delays if delay > 0),
        "max_detection_delay_days": max(delays, default=0),
        "hidden_detection_delay_days_mean": round(statistics.fmean(hidden_delays), 2)
        if hidden_delays
        else 0,
        "xml_visible_changes_late": len(visible_late),
        "missed_at_end": len(overdue),
        "pending_at_end": len(undetected) - len(overdue),
        "false_gone": false_gone,
        "xml_glitch_days": round(days * topics * XML_GLITCH_RATE),
        "targets": {
            "requests_share_at_most_0.20": incremental_mean / full_mean <= 0.20,
            "xml_part_share_at_most_0.05": xml_mean / full_mean <= 0.05,
            "xml_visible_changes_same_day": not visible_late,
            "other_changes_within_n_days": max(hidden_delays, default=0) < revalidate_days,
            "none_missed_at_end": not overdue,
            "no_false_gone": false_gone == 0,
        },
    }


def _count(rng: random.Random, expected: float) -> int:
    """A binomial-ish draw with mean `expected` (whole part, then the fraction by chance)."""
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


def _topic_of(url: str) -> TopicId:
    path = url.removeprefix("https://medlineplus.gov/").removesuffix(".html")
    if path.startswith("spanish/"):
        return ("es", path.removeprefix("spanish/"))
    return ("en", path)


def _detect(pending: dict[TopicId, list[Change]], topic: TopicId, day: int) -> None:
    """The run of `day` fetched the topic: every change it had is in the archive (a 404
    as its gone observation)."""
    for change in pending.pop(topic, []):
        change.detected = day


def _by_kind(changes: list[Change]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.kind] = counts.get(change.kind, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--topics", type=int, default=2000)
    parser.add_argument("--revalidate-days", type=int, default=REVALIDATE_DAYS)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--quick", action="store_true", help="a smaller history: 30 days of 500 topics"
    )
    args = parser.parse_args(argv)
    days, topics = (30, 500) if args.quick else (args.days, args.topics)
    started = time.perf_counter()
    report = simulate(days, topics, args.revalidate_days, args.seed)
    report["seconds"] = round(time.perf_counter() - started, 2)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
