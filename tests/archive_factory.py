"""Hand-made pages and runs for the archive tests: small, explicit, every field filled."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from crawler.parsing.items import (
    ClinicalTrial,
    HealthTopicPage,
    Image,
    Institute,
    JournalArticle,
    Language,
    RelatedTopic,
    TopicLink,
)
from pipelines.archive.keys import TopicKey, version_key
from pipelines.archive.recorder import RunRecorder
from pipelines.core.records import Observation, Outcome, RunRecord
from pipelines.core.store import ArchiveStore, new_run_id

ORIGIN = "https://medlineplus.gov"


def at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC datetime on `day`."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def topic_url(slug: str, language: str = "en") -> str:
    return f"{ORIGIN}{'/spanish' if language == 'es' else ''}/{slug}.html"


def make_page(
    slug: str = "asthma",
    *,
    language: Language = "en",
    last_updated: date = date(2024, 1, 10),
    text: str = "Asthma is a chronic disease that affects your airways.",
    pmids: Sequence[str | None] = ("38000001", "38000002"),
    **overrides: Any,
) -> HealthTopicPage:
    """A page with every field filled; `text` drives the content hash."""
    url = topic_url(slug, language)
    page = HealthTopicPage(
        url=url,
        language=language,
        slug=slug,
        title=slug.capitalize(),
        also_called=["Bronchial asthma", "Reactive airway disease"],
        other_names=["Wheezing"],
        meta_description=f"Learn about {slug}.",
        summary_html=f"<p>{text}</p><ul><li>Cough</li></ul>",
        summary_text=f"{text}\nCough",
        summary_attribution="NIH: National Heart, Lung, and Blood Institute",
        primary_institute=Institute(
            name="National Heart, Lung, and Blood Institute", url="https://www.nhlbi.nih.gov/"
        ),
        image=Image(url=f"{ORIGIN}/images/{slug}.jpg", alt="Lungs"),
        mesh_headings=["D001249"],
        groups=["Lungs and Breathing"],
        counterpart_url=f"{ORIGIN}/spanish/{slug}.html",
        related_topics=[
            RelatedTopic(title="Allergy", url=f"{ORIGIN}/allergy.html"),
            RelatedTopic(title="COPD", url=f"{ORIGIN}/copd.html"),
        ],
        links=[
            TopicLink(
                section="Start Here",
                section_id=51,
                position=0,
                title="Asthma (Mayo Foundation)",
                url="https://www.mayoclinic.org/asthma",
                organizations=["Mayo Foundation for Medical Education and Research"],
                badges=["easy-to-read"],
                other_language_url="https://www.mayoclinic.org/es/asthma",
                site_id="1234",
            ),
            TopicLink(
                section="Start Here",
                section_id=51,
                position=1,
                title="What Is Asthma?",
                url="https://www.nhlbi.nih.gov/health/asthma",
                organizations=["National Heart, Lung, and Blood Institute", "NIH"],
                badges=["nih", "video"],
            ),
            TopicLink(
                section="Treatments and Therapies",
                section_id=None,
                position=0,
                title="Inhalers",
                url="https://example.org/inhalers",
            ),
        ],
        clinical_trials=[
            ClinicalTrial(
                position=0,
                title="ClinicalTrials.gov: Asthma",
                url="https://clinicaltrials.gov/search?cond=asthma",
                organizations=["National Institutes of Health"],
                nih=True,
            )
        ],
        journal_articles=[
            JournalArticle(
                position=position,
                title=f"Article: Study {position}",
                url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid or 'search'}",
                pmid=pmid,
            )
            for position, pmid in enumerate(pmids)
        ],
        journal_articles_more_url="https://pubmed.ncbi.nlm.nih.gov/?term=asthma",
        date_created=date(2003, 5, 1),
        last_updated=last_updated,
        last_reviewed=date(2017, 2, 14),
        source_url=url,
        fetched_at=at(last_updated, 12),
        http_status=200,
    )
    page = dataclasses.replace(page, **overrides)
    if not page.content_hash:
        page.content_hash = fake_content_hash(page)
    return page


def make_sparse_page(slug: str = "sparse", **overrides: Any) -> HealthTopicPage:
    """A page with every optional field None and every list empty."""
    page = HealthTopicPage(
        url=topic_url(slug),
        language="en",
        slug=slug,
        title="Sparse",
        last_updated=date(2024, 2, 1),
        **overrides,
    )
    page.content_hash = fake_content_hash(page)
    return page


def fake_content_hash(page: HealthTopicPage) -> str:
    """Stands in for the parser's hash: the same text gives the same hash."""
    return hashlib.sha256(f"{page.language}|{page.slug}|{page.summary_html}".encode()).hexdigest()


def run_record(run_id: str, started_at: datetime, writer: RunRecorder | None = None) -> RunRecord:
    counts = writer.outcome_counts() if writer is not None else {}
    return RunRecord(
        run_id=run_id,
        started_at=started_at,
        finished_at=started_at + timedelta(hours=1),
        status="success",
        finish_reason="finished",
        pages_fetched=sum(counts.values()),
        pages_new=counts.get("new", 0),
        pages_unchanged=counts.get("unchanged", 0),
        pages_same_date_edit=counts.get("same_date_edit", 0),
        pages_error=counts.get("error", 0),
        pages_gone=counts.get("gone", 0),
        settings_digest="0123456789abcdef",
        base_url=ORIGIN,
        languages=["en", "es"],
        discovery="test",
    )


def observe(
    page_or_topic: HealthTopicPage | TopicKey,
    run_id: str,
    observed_at: datetime,
    outcome: Outcome,
    **fields: Any,
) -> Observation:
    """An observation of a page (its key filled) or of a bare topic (gone, error)."""
    if isinstance(page_or_topic, HealthTopicPage):
        page = page_or_topic
        base: dict[str, Any] = {
            "url": page.url,
            "source_url": page.source_url or page.url,
            "language": page.language,
            "slug": page.slug,
            "http_status": 200,
            "last_updated": page.last_updated,
            "content_hash": page.content_hash,
            "etag": f'"{page.content_hash[:8]}"',
            "last_modified": "Wed, 10 Jan 2024 12:00:00 GMT",
        }
    else:
        language, slug = page_or_topic
        url = topic_url(slug, language)
        base = {"url": url, "source_url": url, "language": language, "slug": slug}
    base.update(fields)
    return Observation(run_id=run_id, observed_at=observed_at, outcome=outcome, **base)


def commit_run(
    root: Path,
    when: datetime,
    pages: Iterable[HealthTopicPage] = (),
    *,
    gone: Iterable[tuple[Language, str]] = (),
    errors: Iterable[tuple[Language, str]] = (),
    notes: Iterable[str] = (),
    hidden_changes: Iterable[str] = (),
) -> str:
    """Crawl `pages` (classified like the dedupe pipeline does), then `gone` and `errors`
    topics, as one committed run starting at `when` whose record carries `notes` and
    `hidden_changes` (as an incremental run's cross-check does); returns the run id."""
    run_id = new_run_id(when)
    with ArchiveStore.open(root) as store:
        writer = RunRecorder.begin(store, run_id, when)
        moment = when
        for page in pages:
            moment += timedelta(minutes=1)
            outcome = classify(page, writer)
            writer.add_observation(observe(page, run_id, moment, outcome))
            if outcome != "unchanged":
                writer.add_version(page, run_id, moment)
            writer.add_journal_articles(page, run_id, moment)
        for topic in gone:
            moment += timedelta(minutes=1)
            writer.add_observation(
                observe(TopicKey(*topic), run_id, moment, "gone", http_status=404, error="404")
            )
        for topic in errors:
            moment += timedelta(minutes=1)
            writer.add_observation(
                observe(TopicKey(*topic), run_id, moment, "error", http_status=503, error="503")
            )
        record = run_record(run_id, when, writer)
        record.notes = list(notes)
        record.hidden_changes = list(hidden_changes)
        writer.commit(record)
    return run_id


def classify(page: HealthTopicPage, writer: RunRecorder) -> Outcome:
    if version_key(page) in writer.index.versions:
        return "unchanged"
    latest = writer.index.latest.get(TopicKey(page.language, page.slug))
    if latest is not None and latest.last_updated == page.last_updated:
        return "same_date_edit"
    return "new"
