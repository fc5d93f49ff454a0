"""Benchmark: a ten-year archive of daily runs, built through the real writer, then loaded.

Builds, with `ArchiveStore` / `RunRecorder` exactly as a crawl does (compaction and
checkpoints included), a synthetic archive of `--years` of daily runs over `--topics`
topics (half English, half Spanish): the first run stores every topic; afterwards about
`--change-rate` of the topics get a new version each day (a 200 with a new
`last_updated`, ~3-6 KB of summary, ~30 links, a few trials and journal articles) and
every other topic is a 304 revalidation (`unchanged`, no content), as a conditional
re-crawl records it. Then it reports, as JSON:

* the time to open the archive, to load the latest snapshot (`topics()`), a valid-time
  snapshot (a date half-way), a transaction-time snapshot (a run id half-way), one
  topic's history, and `verify_archive`; each load on a freshly opened archive, with the
  time of a bare `pyarrow.parquet.read_table` of the same table's files in use (and of
  hashing every file in use, for verify) measured in the same process, as a ratio;
* the bytes one more run in which nothing changed adds;
* how the archive is laid out (files per table, sizes, compactions) and how long the
  build took.

Targets (absolute): each load <= 1 s, verify <= 5 s, an unchanged run adds <= 200 KB.
Figures exclude raw-page (WARC) storage.

Usage: python bench/archive.py [--years 10] [--topics 2000] [--change-rate 0.01]
       [--archive DIR] [--seed 7]
A quick run: python bench/archive.py --years 1 --topics 500
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from crawler.parsing.items import (
    ClinicalTrial,
    HealthTopicPage,
    Image,
    Institute,
    JournalArticle,
    Language,
    RawResponse,
    RelatedTopic,
    TopicLink,
)
from pipelines.archive.recorder import RunRecorder
from pipelines.core.records import Observation, RunRecord
from pipelines.core.store import ArchiveStore, new_run_id
from pipelines.core.verify import verify_archive
from pipelines.core.warc import WarcFileWriter
from pipelines.notebook import open_archive

ORIGIN = "https://medlineplus.gov"
START = date(2016, 1, 1)
SECTIONS = (
    "Start Here",
    "Diagnosis and Tests",
    "Treatments and Therapies",
    "Related Issues",
    "Specifics",
    "Genetics",
    "Statistics and Research",
    "Find an Expert",
    "Patient Handouts",
)
ORGANIZATIONS = tuple(
    f"{name} {kind}"
    for name in ("National", "American", "Mayo", "Cleveland", "Johns Hopkins", "Nemours")
    for kind in ("Institute", "Foundation", "Association", "Clinic", "Society", "Academy")
)
TARGETS = {"load_seconds": 1.0, "verify_seconds": 5.0, "unchanged_run_bytes": 200_000}
REPOSITORY = Path(__file__).resolve().parents[1]

_COLD = """
import json, sys, time
from datetime import date
sys.path.insert(0, sys.argv[1])
from pipelines.notebook import open_archive
root, load, argument, language = sys.argv[2:6]
began = time.perf_counter()
archive = open_archive(root)
opened = time.perf_counter()
if load == "history":
    frame = archive.history(argument, language=language)
elif argument == "-":
    frame = archive.topics()
else:
    as_of = argument if argument in archive.run_ids else date.fromisoformat(argument)
    frame = archive.topics(as_of=as_of)
done = time.perf_counter()
print(json.dumps({"open": opened - began, "load": done - opened, "rows": len(frame)}))
"""


REPEAT = 3
"""Each time is the median of this many measurements (`--repeat`)."""


def cold(root: Path, load: str, argument: str, language: str = "en") -> dict[str, float]:
    """Median open and load seconds in fresh processes (imports not counted)."""
    results = []
    for _ in range(REPEAT):
        output = subprocess.run(
            [sys.executable, "-c", _COLD, str(REPOSITORY), str(root), load, argument, language],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        results.append(json.loads(output))
    return {
        "open_seconds": round(statistics.median(r["open"] for r in results), 4),
        "load_seconds": round(statistics.median(r["load"] for r in results), 4),
    }


# --- synthetic pages ------------------------------------------------------------------


class Words:
    """A Zipf-distributed vocabulary of made-up words: text compresses like prose."""

    def __init__(self, rng: random.Random, size: int = 6000) -> None:
        syllables = [a + b for a in "bcdfghklmnprstvz" for b in "aeiou"] + ["ion", "ent", "al"]
        self.vocabulary = [
            "".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(size)
        ]
        weights = [1 / (rank + 1) for rank in range(size)]
        total = sum(weights)
        running, self.cumulative = 0.0, []
        for weight in weights:
            running += weight / total
            self.cumulative.append(running)
        self.rng = rng

    def sentence(self, low: int = 8, high: int = 22) -> str:
        words = self.rng.choices(
            self.vocabulary, cum_weights=self.cumulative, k=self.rng.randint(low, high)
        )
        return " ".join(words).capitalize() + "."

    def paragraph(self) -> list[str]:
        return [self.sentence() for _ in range(self.rng.randint(3, 6))]

    def title(self) -> str:
        return " ".join(self.rng.choices(self.vocabulary, k=self.rng.randint(2, 7))).title()


@dataclass
class Topic:
    """One topic's current page, changed in place from version to version."""

    language: Language
    slug: str
    title: str
    paragraphs: list[list[str]]
    links: list[TopicLink]
    trials: list[ClinicalTrial]
    articles: list[JournalArticle]
    version: int = 0
    last_updated: date = START
    content_hash: str = ""
    etag: str = ""
    last_modified: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{ORIGIN}{'/spanish' if self.language == 'es' else ''}/{self.slug}.html"


class Site:
    """The synthetic MedlinePlus: `topics` pages, edited at random."""

    def __init__(self, topics: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = Words(self.rng)
        self.next_pmid = 30_000_000
        self.topics = [self._topic(index) for index in range(topics)]

    def _topic(self, index: int) -> Topic:
        language: Language = "en" if index % 2 == 0 else "es"
        slug = f"topic{index // 2:04d}"
        target = self.rng.randint(3000, 6000)
        paragraphs: list[list[str]] = []
        while sum(len(" ".join(p)) + 7 for p in paragraphs) < target:
            paragraphs.append(self.words.paragraph())
        links = []
        for position in range(self.rng.randint(24, 36)):
            section = SECTIONS[min(position // 4, len(SECTIONS) - 1)]
            organization = self.rng.choice(ORGANIZATIONS)
            links.append(
                TopicLink(
                    section=section,
                    section_id=SECTIONS.index(section) + 50,
                    position=position % 4,
                    title=self.words.title(),
                    url=f"https://www.{organization.split()[0].lower()}.org/{slug}/{position}",
                    organizations=[organization],
                    badges=self.rng.sample(["nih", "video", "easy-to-read", "infographic"], k=1),
                    site_id=str(self.rng.randint(1000, 99999)),
                )
            )
        trials = [
            ClinicalTrial(
                position=position,
                title=f"ClinicalTrials.gov: {self.words.title()}",
                url=f"https://clinicaltrials.gov/search?cond={slug}&n={position}",
                organizations=["National Institutes of Health"],
                nih=True,
            )
            for position in range(3)
        ]
        topic = Topic(language, slug, self.words.title(), paragraphs, links, trials, [])
        topic.articles = [self._article(position) for position in range(5)]
        return topic

    def _article(self, position: int) -> JournalArticle:
        self.next_pmid += 1
        return JournalArticle(
            position=position,
            title=f"Article: {self.words.sentence(6, 14)}",
            url=f"https://pubmed.ncbi.nlm.nih.gov/{self.next_pmid}",
            pmid=str(self.next_pmid),
        )

    def edit(self, topic: Topic, day: date) -> None:
        """A new version: a sentence or two rewritten, maybe a link, new articles."""
        for _ in range(self.rng.randint(1, 2)):
            paragraph = self.rng.choice(topic.paragraphs)
            paragraph[self.rng.randrange(len(paragraph))] = self.words.sentence()
        if self.rng.random() < 0.2:
            index = self.rng.randrange(len(topic.links))
            old = topic.links[index]
            topic.links[index] = TopicLink(
                section=old.section,
                section_id=old.section_id,
                position=old.position,
                title=self.words.title(),
                url=f"{old.url}?v={topic.version + 1}",
                organizations=old.organizations,
                badges=old.badges,
                site_id=old.site_id,
            )
        fresh = [self._article(0) for _ in range(self.rng.randint(1, 2))]
        topic.articles = [
            JournalArticle(position=position, title=a.title, url=a.url, pmid=a.pmid)
            for position, a in enumerate([*fresh, *topic.articles][:5])
        ]
        topic.version += 1
        topic.last_updated = day
        self._stamp(topic)

    def _stamp(self, topic: Topic) -> None:
        digest = hashlib.sha256()
        for paragraph in topic.paragraphs:
            digest.update(" ".join(paragraph).encode())
        for link in topic.links:
            digest.update(link.url.encode() + link.title.encode())
        topic.content_hash = digest.hexdigest()
        topic.etag = f'"{topic.content_hash[:16]}"'
        modified = datetime(
            topic.last_updated.year, topic.last_updated.month, topic.last_updated.day, tzinfo=UTC
        )
        topic.last_modified = format_datetime(modified, usegmt=True)

    def publish_all(self, day: date) -> None:
        for topic in self.topics:
            topic.last_updated = day
            self._stamp(topic)

    def page(self, topic: Topic, fetched_at: datetime) -> HealthTopicPage:
        html = "".join(f"<p>{' '.join(paragraph)}</p>" for paragraph in topic.paragraphs)
        text = "\n".join(" ".join(paragraph) for paragraph in topic.paragraphs)
        other = "" if topic.language == "es" else "/spanish"
        return HealthTopicPage(
            url=topic.url,
            language=topic.language,
            slug=topic.slug,
            title=topic.title,
            also_called=[self.words.title()] if topic.version % 3 == 0 else [],
            other_names=[],
            meta_description=topic.paragraphs[0][0],
            summary_html=html,
            summary_text=text,
            summary_attribution="NIH: National Institutes of Health",
            primary_institute=Institute(name="National Institutes of Health", url=None),
            image=Image(url=f"{ORIGIN}/images/{topic.slug}.jpg", alt=topic.title),
            mesh_headings=[f"D{int(topic.content_hash[:5], 16) % 100000:06d}"],
            groups=["Disorders and Conditions"],
            counterpart_url=f"{ORIGIN}{other}/{topic.slug}.html",
            related_topics=[RelatedTopic(title="Related", url=f"{ORIGIN}/related.html")],
            links=list(topic.links),
            clinical_trials=list(topic.trials),
            journal_articles=list(topic.articles),
            journal_articles_more_url=f"https://pubmed.ncbi.nlm.nih.gov/?term={topic.slug}",
            date_created=START - timedelta(days=3000),
            last_updated=topic.last_updated,
            last_reviewed=None,
            content_hash=topic.content_hash,
            source_url=topic.url,
            fetched_at=fetched_at,
            http_status=200,
            etag=topic.etag,
            last_modified=topic.last_modified,
        )


# --- building -------------------------------------------------------------------------


def run_days(days: int) -> Iterator[tuple[int, date, datetime]]:
    for index in range(days):
        day = START + timedelta(days=index)
        yield index, day, datetime(day.year, day.month, day.day, 2, tzinfo=UTC)


def crawl_once(
    store: ArchiveStore, site: Site, started_at: datetime, changed: set[int], first: bool
) -> str:
    """One daily run through the writer: changed topics fetched in full, others 304."""
    writer = RunRecorder.begin(store, new_run_id(started_at), started_at)
    run_id = writer.run_id
    for index, topic in enumerate(site.topics):
        moment = started_at + timedelta(milliseconds=500 * index)
        if first or index in changed:
            page = site.page(topic, moment)
            outcome = "new"
            writer.add_observation(
                Observation(
                    run_id=run_id,
                    observed_at=moment,
                    url=topic.url,
                    source_url=topic.url,
                    language=topic.language,
                    slug=topic.slug,
                    outcome=outcome,
                    http_status=200,
                    last_updated=topic.last_updated,
                    content_hash=topic.content_hash,
                    etag=topic.etag,
                    last_modified=topic.last_modified,
                )
            )
            writer.add_version(page, run_id, moment)
            writer.add_journal_articles(page, run_id, moment)
        else:
            writer.add_observation(
                Observation(
                    run_id=run_id,
                    observed_at=moment,
                    url=topic.url,
                    source_url=topic.url,
                    language=topic.language,
                    slug=topic.slug,
                    outcome="unchanged",
                    http_status=304,
                    revalidated=True,
                    last_updated=topic.last_updated,
                    content_hash=topic.content_hash,
                    etag=topic.etag,
                    last_modified=topic.last_modified,
                )
            )
    counts = writer.outcome_counts()
    writer.commit(
        RunRecord(
            run_id=run_id,
            started_at=started_at,
            finished_at=started_at + timedelta(milliseconds=500 * len(site.topics)),
            status="success",
            finish_reason="finished",
            pages_fetched=sum(counts.values()),
            pages_new=counts["new"],
            pages_unchanged=counts["unchanged"],
            pages_same_date_edit=counts["same_date_edit"],
            pages_error=counts["error"],
            pages_gone=counts["gone"],
            settings_digest="0" * 16,
            base_url=ORIGIN,
            languages=["en", "es"],
            discovery="bench",
        )
    )
    return run_id


def build(root: Path, site: Site, days: int, change_rate: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed + 1)
    started = time.perf_counter()
    run_ids, versions = [], 0
    store = ArchiveStore.open(root)
    try:
        for index, day, started_at in run_days(days):
            if index and index % 365 == 0:
                # A crawl opens the archive afresh every day; do it yearly (open + recovery).
                store.close()
                store = ArchiveStore.open(root)
            if index == 0:
                site.publish_all(day)
                changed: set[int] = set()
            else:
                count = sum(rng.random() < change_rate for _ in range(len(site.topics)))
                changed = set(rng.sample(range(len(site.topics)), count))
                for topic_index in changed:
                    site.edit(site.topics[topic_index], day)
            versions += len(site.topics) if index == 0 else len(changed)
            run_ids.append(crawl_once(store, site, started_at, changed, first=index == 0))
    finally:
        store.close()
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "runs": len(run_ids),
        "versions": versions,
        "observations": len(run_ids) * len(site.topics),
        "run_ids": run_ids,
    }


# --- measuring ------------------------------------------------------------------------


def timed(function: Callable[[], Any], repeat: int | None = None) -> tuple[float, Any]:
    """Median seconds of `repeat` calls (default `REPEAT`), and the last result."""
    times, result = [], None
    for _ in range(repeat or REPEAT):
        began = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def bare_read(paths: list[Path]) -> int:
    rows = 0
    for path in paths:
        rows += pq.read_table(path).num_rows
    return rows


def bare_hash(paths: list[Path]) -> int:
    size = 0
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    return size


def sizes(root: Path) -> dict[str, int]:
    """Bytes per file under `root`, each stored file counted once: the glob readers' view
    (`_views/`) holds hard links to the files in use, which add no bytes."""
    found: dict[str, int] = {}
    seen: set[tuple[int, int]] = set()
    paths = sorted(root.rglob("*"), key=lambda path: path.relative_to(root).parts[0] == "_views")
    for path in paths:
        if not path.is_file() or path.is_symlink():
            continue
        status = path.stat()
        if (status.st_dev, status.st_ino) in seen:
            continue
        seen.add((status.st_dev, status.st_ino))
        found[path.relative_to(root).as_posix()] = status.st_size
    return found


def tree_bytes(root: Path, prefix: str | None = None, exclude: str | None = None) -> int:
    total = 0
    for name, size in sizes(root).items():
        if prefix is not None and not name.startswith(prefix):
            continue
        if exclude is not None and name.startswith(exclude):
            continue
        total += size
    return total


def measure(root: Path, site: Site, built: dict[str, Any]) -> dict[str, Any]:
    run_ids: list[str] = built["run_ids"]
    middle_run = run_ids[len(run_ids) // 2]
    middle_day = START + timedelta(days=len(run_ids) // 2)
    busiest = max(site.topics, key=lambda topic: topic.version)
    report: dict[str, Any] = {}

    open_seconds, archive = timed(lambda: open_archive(root))
    report["open"] = {
        "seconds": round(open_seconds, 4),
        "new_process_seconds": cold(root, "topics", "-")["open_seconds"],
        "ok": open_seconds <= TARGETS["load_seconds"],
    }
    store = archive.store
    topics_files = store.files("topics")
    bare_topics, _ = timed(lambda: bare_read(topics_files))

    def fresh_load(call: Callable[[Any], Any]) -> tuple[float, Any]:
        # Each load on an archive opened afresh (its caches empty), the open not counted.
        times, result = [], None
        for _ in range(REPEAT):
            fresh = open_archive(root)
            began = time.perf_counter()
            result = call(fresh)
            times.append(time.perf_counter() - began)
        return statistics.median(times), result

    loads = {
        "topics_latest": (lambda a: a.topics(), ("topics", "-")),
        "topics_as_of_date": (
            lambda a: a.topics(as_of=middle_day),
            ("topics", middle_day.isoformat()),
        ),
        "topics_as_of_run": (lambda a: a.topics(as_of=middle_run), ("topics", middle_run)),
        "history": (
            lambda a: a.history(busiest.slug, language=busiest.language),
            ("history", busiest.slug, busiest.language),
        ),
    }
    for name, (call, arguments) in loads.items():
        seconds, frame = fresh_load(call)
        in_new_process = cold(root, *arguments)
        report[name] = {
            "seconds": round(seconds, 4),
            "new_process": in_new_process,
            "rows": len(frame),
            "bare_read_table_seconds": round(bare_topics, 4),
            "ratio_to_bare_read": round(seconds / bare_topics, 3),
            "ok": max(seconds, in_new_process["load_seconds"]) <= TARGETS["load_seconds"],
        }
    report["topics_as_of_date"]["as_of"] = middle_day.isoformat()
    report["topics_as_of_run"]["as_of"] = middle_run
    report["history"]["topic"] = f"{busiest.language}/{busiest.slug}"

    live = [path for table in ("runs", "observations", "topics", "links", "clinical_trials",
                               "journal_articles") for path in store.files(table)]  # fmt: skip
    bare_hash_seconds, hashed = timed(lambda: bare_hash(live), repeat=1)
    verify_seconds, problems = timed(lambda: verify_archive(root), repeat=1)
    report["verify"] = {
        "seconds": round(verify_seconds, 3),
        "problems": len(problems),
        "files_in_use": len(live),
        "bytes_in_use": hashed,
        "bare_sha256_seconds": round(bare_hash_seconds, 3),
        "ratio_to_bare_sha256": round(verify_seconds / bare_hash_seconds, 2),
        "ok": verify_seconds <= TARGETS["verify_seconds"] and not problems,
    }
    if problems:
        report["verify"]["first_problems"] = [str(problem) for problem in problems[:5]]

    # One more run in which nothing changed: what it adds.
    before = sizes(root)
    cycle = 16
    days = [START + timedelta(days=len(run_ids) + offset) for offset in range(cycle)]
    starts = [datetime(day.year, day.month, day.day, 2, tzinfo=UTC) for day in days]
    with ArchiveStore.open(root) as writer_store:
        compactions_before = len(writer_store.compaction_ids)
        run_id = crawl_once(writer_store, site, starts[0], set(), first=False)
        compacted = len(writer_store.compaction_ids) > compactions_before
        after = sizes(root)
        # A whole compaction cycle of such runs: what they add, compacted copies and
        # retired files included.
        for started_at in starts[1:]:
            crawl_once(writer_store, site, started_at, set(), first=False)
        levels = [name.rsplit("-L", 1)[1] for name in writer_store.compaction_ids]
        cycle_levels = sorted({int(level) for level in levels[compactions_before:]})
    end = sizes(root)
    own = sum(size for name, size in after.items() if run_id in name and name not in before)

    report["unchanged_run"] = {
        "run_files_and_manifest_bytes": own,
        "net_bytes_added": sum(after.values()) - sum(before.values()),
        "triggered_compaction": compacted,
        "ok": own <= TARGETS["unchanged_run_bytes"],
        "by_file": {name: size for name, size in after.items() if run_id in name},
        f"over_{cycle}_such_runs": {
            "bytes_added_per_run": round((sum(end.values()) - sum(before.values())) / cycle),
            "includes": "compacted copies, retired files, checkpoints",
            "compaction_levels_triggered": cycle_levels,
        },
    }
    return report


def warc_bytes_per_version(directory: Path) -> dict[str, Any]:
    """WARC bytes a new version costs: the real pages of ../shared/corpus (else the
    fixture site) written as request/response records, through the archive's writer."""
    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "medlineplus" / "pages"
    pages = sorted(corpus.glob("*.html")) or sorted(
        (Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "site").glob("*.html")
    )
    path = directory / "bench.warc.gz"
    now = datetime.now(UTC)
    with WarcFileWriter(path, "warc/bench.warc.gz") as warc:
        for page in pages:
            body = page.read_bytes()
            raw = RawResponse(
                url=f"https://medlineplus.gov/{page.name}",
                status=200,
                reason="OK",
                headers=[("Content-Type", "text/html; charset=utf-8"), ("ETag", '"x"')],
                body=body,
                request_path=f"/{page.name}",
                request_headers=[("User-Agent", "medlineplus-archive")],
                fetched_at=now,
            )
            warc.write(raw, raw.url)
    page_bytes = sum(page.stat().st_size for page in pages)
    size = path.stat().st_size
    return {
        "pages": len(pages),
        "bytes_per_new_version": round(size / len(pages)),
        "page_bytes_per_version": round(page_bytes / len(pages)),
        "compression_ratio": round(size / page_bytes, 3),
    }


def layout(root: Path) -> dict[str, Any]:
    store = ArchiveStore.open(root, read_only=True)
    tables = {}
    for table in ("runs", "observations", "topics", "links", "clinical_trials", "journal_articles"):
        files = store.live_files(table)  # type: ignore[arg-type]
        tables[table] = {
            "files_in_use": len(files),
            "rows": sum(live.entry.rows for live in files),
            "bytes": sum(live.entry.bytes for live in files),
            "levels": sorted({live.level for live in files}),
        }
    return {
        "tables": tables,
        "compactions": len(store.compaction_ids),
        "bytes_in_use": sum(t["bytes"] for t in tables.values()),
        "bytes_retired": tree_bytes(root, prefix="_retired/"),
        "bytes_manifests": tree_bytes(root, prefix="_runs/") + tree_bytes(root, "_compactions/"),
        "bytes_checkpoints": tree_bytes(root, prefix="_catalog/"),
        "bytes_total": tree_bytes(root),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--years", type=float, default=10.0, help="years of daily runs")
    parser.add_argument("--topics", type=int, default=2000, help="topics (en + es pages)")
    parser.add_argument("--change-rate", type=float, default=0.01, help="share changing daily")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--archive", type=Path, help="build here (kept); default: a temp dir")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per time (median)")
    args = parser.parse_args(argv)
    global REPEAT
    REPEAT = max(1, args.repeat)
    logging.basicConfig(level=logging.WARNING)
    days = max(2, round(args.years * 365))
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as temporary:
        root = args.archive or Path(temporary) / "archive"
        site = Site(args.topics, args.seed)
        built = build(root, site, days, args.change_rate, args.seed)
        report = {
            "parameters": {
                "years": args.years,
                "runs": days,
                "topics": args.topics,
                "change_rate": args.change_rate,
                "seed": args.seed,
            },
            "build": {key: value for key, value in built.items() if key != "run_ids"},
            "layout": layout(root),
            **measure(root, site, built),
            "targets": TARGETS,
            "warc": warc_bytes_per_version(Path(temporary)),
        }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
