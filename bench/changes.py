"""Benchmark: change detection between two snapshots of 2,000 topics with 5% changed.

Builds a temporary archive with two runs: 2,000 topics (English and Spanish), then a run
in which 5% of them changed (updated, same-date edits, date-only changes, added and
removed topics, with summary, link, trial and title edits). Times, in this process,
median of several rounds, each on a freshly opened archive (nothing cached):

* changes_s: `compare(archive, run_a, run_b)`, reading included (the target: under 1 s);
* baseline_load_s: loading what the comparison reads, the two snapshots: `topics`,
  `links` and `clinical_trials` as of each run (pandas, as `open_archive` gives them);
* render_ms: rendering the change set as md, html and json.

Prints JSON. Usage: python bench/changes.py [--topics N] [--changed FRACTION] [--rounds N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from crawler.parsing.content_hash import content_hash
from crawler.parsing.items import ClinicalTrial, HealthTopicPage, Institute, RelatedTopic, TopicLink
from pipelines.archive.recorder import RunRecorder
from pipelines.changes.detection import compare
from pipelines.changes.reports import REPORT_FORMATS, render
from pipelines.core.records import Observation, Outcome, RunRecord
from pipelines.core.store import ArchiveStore
from pipelines.notebook import open_archive

ORIGIN = "https://medlineplus.gov"
SECTIONS = ("Start Here", "Diagnosis and Tests", "Treatments and Therapies", "Related Issues")
WORDS = ("disease", "symptoms", "treatment", "doctor", "blood", "heart", "lungs", "pain")
WORDS += ("medicine", "test", "risk", "children", "adults", "care", "therapy", "chronic")


def make_page(rng: random.Random, language: str, slug: str, day: date) -> HealthTopicPage:
    prefix = "/spanish" if language == "es" else ""
    links = [
        TopicLink(
            section=section,
            section_id=None,
            position=position,
            title=f"{slug} resource {index}",
            url=f"https://example.org/{slug}/{index}",
            organizations=rng.sample(["NIH", "CDC", "Mayo Clinic", "NLM", "AHA"], 2),
            badges=["easy-to-read"] if index % 3 == 0 else [],
        )
        for index, (section, position) in enumerate(
            (section, position) for section in SECTIONS for position in range(3)
        )
    ]
    text = "\n".join(" ".join(rng.choices(WORDS, k=40)) for _ in range(3))
    page = HealthTopicPage(
        url=f"{ORIGIN}{prefix}/{slug}.html",
        language=language,  # type: ignore[arg-type]
        slug=slug,
        title=slug.capitalize(),
        also_called=[f"{slug} disorder", f"{slug} syndrome"],
        meta_description=f"Learn about {slug}.",
        summary_html="".join(f"<p>{line}</p>" for line in text.split("\n")),
        summary_text=text,
        summary_attribution="NIH: National Library of Medicine",
        primary_institute=Institute(name="National Library of Medicine", url="https://nlm.nih.gov"),
        mesh_headings=["D000001"],
        groups=["Disorders"],
        related_topics=[
            RelatedTopic(title=f"Topic {n}", url=f"{ORIGIN}{prefix}/topic{n}.html")
            for n in rng.sample(range(500), 3)
        ],
        links=links,
        clinical_trials=[
            ClinicalTrial(
                position=0,
                title=f"ClinicalTrials.gov: {slug}",
                url=f"https://clinicaltrials.gov/search?cond={slug}",
                organizations=["National Institutes of Health"],
                nih=True,
            )
        ],
        last_updated=day,
        source_url=f"{ORIGIN}{prefix}/{slug}.html",
        fetched_at=datetime.combine(day, datetime.min.time(), UTC),
        http_status=200,
    )
    return dataclasses.replace(page, content_hash=content_hash(page))


def edited(rng: random.Random, page: HealthTopicPage, day: date) -> HealthTopicPage:
    """`page` with a few editorial changes, dated `day`."""
    words = page.summary_text.split(" ")
    for _ in range(5):
        words[rng.randrange(len(words))] = rng.choice(WORDS)
    text = " ".join(words)
    links = list(page.links)
    links.pop(rng.randrange(len(links)))
    links.insert(0, dataclasses.replace(links[-1], title="New resource", url=f"{page.url}#new"))
    links[0], links[1] = links[1], links[0]
    changed = dataclasses.replace(
        page,
        title=page.title + " (revised)" if rng.random() < 0.3 else page.title,
        summary_text=text,
        summary_html="".join(f"<p>{line}</p>" for line in text.split("\n")),
        links=links,
        clinical_trials=[] if rng.random() < 0.3 else page.clinical_trials,
        last_updated=day,
    )
    return dataclasses.replace(changed, content_hash=content_hash(changed))


def commit(
    store: ArchiveStore,
    run_id: str,
    when: datetime,
    pages: Iterable[tuple[HealthTopicPage, Outcome]],
    gone: Iterable[HealthTopicPage] = (),
) -> None:
    writer = RunRecorder.begin(store, run_id, when)
    counts: dict[str, int] = {}
    for page, outcome in pages:
        writer.add_observation(
            Observation(
                run_id=run_id,
                observed_at=when,
                url=page.url,
                source_url=page.url,
                language=page.language,
                slug=page.slug,
                outcome=outcome,
                http_status=200,
                last_updated=page.last_updated,
                content_hash=page.content_hash,
            )
        )
        if outcome != "unchanged":
            writer.add_version(page, run_id, when)
        counts[outcome] = counts.get(outcome, 0) + 1
    for page in gone:
        writer.add_observation(
            Observation(
                run_id=run_id,
                observed_at=when,
                url=page.url,
                source_url=page.url,
                language=page.language,
                slug=page.slug,
                outcome="gone",
                http_status=404,
            )
        )
        counts["gone"] = counts.get("gone", 0) + 1
    writer.commit(
        RunRecord(
            run_id=run_id,
            started_at=when,
            finished_at=when + timedelta(hours=1),
            status="success",
            pages_fetched=sum(counts.values()),
            pages_new=counts.get("new", 0),
            pages_unchanged=counts.get("unchanged", 0),
            pages_same_date_edit=counts.get("same_date_edit", 0),
            pages_gone=counts.get("gone", 0),
            settings_digest="bench",
            base_url=ORIGIN,
            languages=["en", "es"],
            discovery="bench",
        )
    )


def build(root: Path, topics: int, fraction: float, seed: int = 7) -> tuple[str, str, int]:
    """Two runs in a new archive at `root`; returns their ids and the number of changes."""
    rng = random.Random(seed)
    day, later = date(2024, 1, 10), date(2024, 3, 1)
    pages = [
        make_page(rng, "es" if n % 5 == 4 else "en", f"topic{n:05d}", day) for n in range(topics)
    ]
    changed = round(topics * fraction)
    # Of the changed topics: 40% updated, 20% same-date edits, 20% date only, 10% removed
    # and 10% added (new slugs).
    shares = {"updated": 0.4, "same_date_edit": 0.2, "date_only": 0.2, "removed": 0.1}
    kinds = [kind for kind, share in shares.items() for _ in range(round(changed * share))]
    added = changed - len(kinds)
    plan = dict(zip(rng.sample(range(topics), len(kinds)), kinds, strict=True))
    removed = [pages[i] for i, kind in plan.items() if kind == "removed"]
    after: list[tuple[HealthTopicPage, Outcome]] = []
    for index, page in enumerate(pages):
        kind = plan.get(index)
        if kind is None:
            after.append((page, "unchanged"))
        elif kind == "updated":
            after.append((edited(rng, page, later), "new"))
        elif kind == "same_date_edit":
            after.append((edited(rng, page, day), "same_date_edit"))
        elif kind == "date_only":
            after.append((dataclasses.replace(page, last_updated=later), "new"))
    for n in range(added):
        after.append((make_page(rng, "en", f"added{n:04d}", later), "new"))
    run_a, run_b = "20240110T000000Z-bench", "20240301T000000Z-bench"
    with ArchiveStore.open(root) as store:
        commit(store, run_a, datetime(2024, 1, 10, tzinfo=UTC), ((p, "new") for p in pages))
        commit(store, run_b, datetime(2024, 3, 1, tzinfo=UTC), after, gone=removed)
    return run_a, run_b, changed


def median_seconds(function: Callable[[], Any], rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--topics", type=int, default=2000)
    parser.add_argument("--changed", type=float, default=0.05, help="fraction changed")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-changes-") as directory:
        root = Path(directory)
        start = time.perf_counter()
        run_a, run_b, changed = build(root, args.topics, args.changed)
        build_s = time.perf_counter() - start

        def load_snapshots() -> None:
            archive = open_archive(root)
            for point in (run_a, run_b):
                archive.topics(as_of=point)
                archive.links(as_of=point)
                archive.clinical_trials(as_of=point)

        def changes() -> Any:
            return compare(open_archive(root), run_a, run_b)

        changes()  # warm-up: imports, first reads
        load_snapshots()
        change_set = changes()
        changes_s = median_seconds(changes, args.rounds)
        load_s = median_seconds(load_snapshots, args.rounds)
        render_ms = {
            report_format: round(
                median_seconds(lambda f=report_format: render(change_set, f), args.rounds) * 1000,
                1,
            )
            for report_format in REPORT_FORMATS
        }
    print(
        json.dumps(
            {
                "benchmark": "changes",
                "topics": args.topics,
                "changed_topics": changed,
                "counts": change_set.counts(),
                "rounds": args.rounds,
                "changes_s": round(changes_s, 3),
                "baseline_load_s": round(load_s, 3),
                "changes_over_load": round(changes_s / load_s, 2),
                "target_s": 1.0,
                "target_met": changes_s < 1.0,
                "render_ms": render_ms,
                "build_archive_s": round(build_s, 2),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
