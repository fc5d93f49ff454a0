"""Change detection (pipelines/changes/detection.py): kinds, field detail, properties, the frame."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from crawler.parsing.items import ClinicalTrial, HealthTopicPage, RelatedTopic, TopicLink
from pipelines.archive.as_of import BadAsOfDateError
from pipelines.changes.detection import (
    CHANGE_KINDS,
    CHANGED_FIELDS,
    ChangeSet,
    EntryChange,
    FieldChanges,
    ListChange,
    SummaryChange,
    TopicChange,
    compare,
    markup_diff,
    word_diff,
)
from pipelines.core.errors import UnknownRunError
from pipelines.notebook import open_archive
from tests import changes_scenario
from tests.archive_factory import ORIGIN, at, commit_run
from tests.changes_scenario import AFTER_RUN, BEFORE_RUN, page

EXPECTED_KINDS = {
    ("en", "flu"): "added",
    ("en", "measles"): "removed",
    ("en", "asthma"): "updated",
    ("en", "copd"): "same_date_edit",
    ("es", "diabetes"): "same_date_edit",
    ("en", "diabetes"): "date_only",
}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("changes")
    changes_scenario.build(root)
    return root


@pytest.fixture(scope="module")
def forward(scenario: Path) -> ChangeSet:
    return compare(open_archive(scenario), BEFORE_RUN, AFTER_RUN)


def _by_topic(changes: ChangeSet) -> dict[tuple[str, str], TopicChange]:
    return {(change.language, change.slug): change for change in changes.changes}


def _entries(change: TopicChange, name: str) -> list[tuple[str, str]]:
    entries: list[EntryChange] = getattr(change.fields, name) or []
    return [(entry.change, entry.title) for entry in entries]


# --- kinds ----------------------------------------------------------------------------


def test_every_kind_is_found(forward: ChangeSet) -> None:
    kinds = {topic: change.kind for topic, change in _by_topic(forward).items()}
    assert kinds == EXPECTED_KINDS
    assert forward.counts() == {
        "added": 1,
        "removed": 1,
        "updated": 1,
        "same_date_edit": 2,
        "date_only": 1,
    }
    assert (forward.topics_before, forward.topics_after) == (7, 7)


def test_changes_are_ordered_by_kind_language_slug(forward: ChangeSet) -> None:
    keys = [(CHANGE_KINDS.index(c.kind), c.language, c.slug) for c in forward.changes]
    assert keys == sorted(keys)


def test_a_change_of_only_journal_articles_is_no_change(tmp_path: Path) -> None:
    first = page("hives", pmids=("38000001",))
    second = dataclasses.replace(
        first, journal_articles=page("hives", pmids=("39000001", "39000002")).journal_articles
    )
    assert first.content_hash == second.content_hash
    a = commit_run(tmp_path, at(date(2024, 1, 10)), [first])
    b = commit_run(tmp_path, at(date(2024, 2, 10)), [second])
    archive = open_archive(tmp_path)
    assert len(archive.journal_articles(as_of=b)) == 3  # the new articles were archived
    assert compare(archive, a, b).changes == ()


def test_the_hives_journal_churn_of_the_scenario_is_not_reported(forward: ChangeSet) -> None:
    assert ("en", "hives") not in _by_topic(forward)
    assert ("en", "anemia") not in _by_topic(forward)


def test_date_only_carries_dates_and_nothing_else(forward: ChangeSet) -> None:
    change = _by_topic(forward)[("en", "diabetes")]
    assert change.changed_fields == ["last_updated"]
    assert change.fields.last_updated is not None
    assert change.fields.last_updated.before == date(2024, 1, 10)
    assert change.fields.last_updated.after == date(2024, 2, 20)
    assert change.before is not None
    assert change.after is not None
    assert change.before.content_hash == change.after.content_hash


def test_added_and_removed_carry_their_version(forward: ChangeSet) -> None:
    added, removed = _by_topic(forward)[("en", "flu")], _by_topic(forward)[("en", "measles")]
    assert added.before is None
    assert added.after is not None
    assert added.after.run_id == AFTER_RUN
    assert added.after.last_updated == date(2024, 3, 4)
    assert removed.after is None
    assert removed.before is not None
    assert removed.before.run_id == BEFORE_RUN
    assert removed.title == "Measles"
    assert removed.changed_fields == []


# --- field detail ---------------------------------------------------------------------


def test_updated_topic_field_detail(forward: ChangeSet) -> None:
    change = _by_topic(forward)[("en", "asthma")]
    assert change.changed_fields == [
        "also_called",
        "summary",
        "institute",
        "related_topics",
        "links",
        "clinical_trials",
        "last_updated",
        "last_reviewed",
    ]
    assert change.fields.also_called == ListChange(
        added=["Asthma attack"], removed=["Reactive airway disease"]
    )
    institute = change.fields.institute
    assert institute is not None
    assert institute.before is not None
    assert institute.after is not None
    assert institute.before.name == "National Heart, Lung, and Blood Institute"
    assert institute.after.name == "National Institute of Allergy and Infectious Diseases"
    assert _entries(change, "related_topics") == [
        ("added", "Asthma in Children"),
        ("removed", "COPD"),
    ]
    assert _entries(change, "clinical_trials") == [
        ("added", "ClinicalTrials.gov: Asthma in Children")
    ]


def test_links_added_removed_moved_edited_per_section(forward: ChangeSet) -> None:
    links = _by_topic(forward)[("en", "asthma")].fields.links
    assert links is not None
    by_title = {entry.title: entry for entry in links}
    edited = by_title["What Is Asthma? (Video)"]
    assert edited.change == "edited"
    assert [(e.attribute, e.before, e.after) for e in edited.edits] == [
        ("title", "What Is Asthma?", "What Is Asthma? (Video)"),
        (
            "organizations",
            "National Heart, Lung, and Blood Institute; NIH",
            "National Heart, Lung, and Blood Institute",
        ),
    ]
    added = by_title["Asthma Action Plan <PDF>"]
    assert (added.change, added.section, added.position_after) == ("added", "Start Here", 1)
    assert added.organizations == ["American Lung Association", "CDC"]
    moved = by_title["Asthma (Mayo Foundation)"]
    assert (moved.change, moved.section_before, moved.section) == (
        "moved",
        "Start Here",
        "Treatments and Therapies",
    )
    assert "Inhalers" not in by_title  # its position changed, its place among the rest did not


def test_a_reordered_section_reports_the_fewest_moves(forward: ChangeSet) -> None:
    change = _by_topic(forward)[("en", "copd")]
    assert change.fields.title is not None
    assert (change.fields.title.before, change.fields.title.after) == (
        "COPD",
        "COPD (Chronic Obstructive Pulmonary Disease)",
    )
    assert _entries(change, "links") == [
        ("moved", "COPD and exercise"),
        ("removed", "Oxygen therapy"),
    ]
    assert _entries(change, "clinical_trials") == [("removed", "ClinicalTrials.gov: COPD")]


def test_a_markup_only_summary_change(forward: ChangeSet) -> None:
    change = _by_topic(forward)[("es", "diabetes")]
    assert change.changed_fields == ["summary_html"]
    assert change.fields.summary_html is not None
    assert "<strong>" in (change.fields.summary_html.after or "")


def test_summary_word_diff(forward: ChangeSet) -> None:
    summary = _by_topic(forward)[("en", "asthma")].fields.summary
    assert summary is not None
    assert [(s.op, s.text) for s in summary.segments[:3]] == [
        ("equal", "Asthma is a"),
        ("delete", " chronic"),
        ("insert", " long-term"),
    ]
    assert (summary.words_added, summary.words_removed) == (15, 2)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("", "New text here.", id="from-nothing"),
        pytest.param("Old text.\nSecond line.", "", id="to-nothing"),
        pytest.param("a b c\nd e", "a x c\nd e f", id="lines"),
        pytest.param("a\nb", "a c b", id="line-break-replaced"),
        pytest.param("same  words\n\nhere", "same words\n\nhere", id="whitespace-only"),
    ],
)
def test_word_diff_segments_rebuild_both_texts(before: str, after: str) -> None:
    diff = word_diff(before, after)
    old = "".join(s.text for s in diff.segments if s.op != "insert")
    new = "".join(s.text for s in diff.segments if s.op != "delete")
    assert old.split() == before.split()
    assert new.split() == after.split()
    assert diff.words_added == sum(len(s.text.split()) for s in diff.segments if s.op == "insert")
    assert diff.words_removed == sum(len(s.text.split()) for s in diff.segments if s.op == "delete")


def test_markup_diff_rebuilds_both_texts_exactly() -> None:
    before, after = "<p>A <em>b</em> c.</p>", "<p>A <strong>b</strong>  c!</p>"
    segments = markup_diff(before, after)
    assert "".join(s.text for s in segments if s.op != "insert") == before
    assert "".join(s.text for s in segments if s.op != "delete") == after


# --- properties -----------------------------------------------------------------------


_FLIP = {"added": "removed", "removed": "added"}


def _comparable(fields: FieldChanges) -> dict[str, Any]:
    """The detail that must mirror exactly. Which entries of a reordered list count as
    moved may differ by direction (equally short explanations), so only their number is
    kept; the summary keeps only that it changed."""
    out: dict[str, Any] = {}
    for name in CHANGED_FIELDS:
        value = getattr(fields, name)
        if value is None:
            continue
        if isinstance(value, ListChange):
            out[name] = (sorted(value.added), sorted(value.removed))
        elif isinstance(value, SummaryChange):
            out[name] = "changed"
        elif isinstance(value, list):
            out[name] = (
                sorted(e.url for e in value if e.change == "added"),
                sorted(e.url for e in value if e.change == "removed"),
                sum(e.change == "moved" for e in value),
                sorted((e.url, d.attribute, d.before, d.after) for e in value for d in e.edits),
            )
        else:
            out[name] = (value.before, value.after)
    return out


def _mirrored(fields: FieldChanges) -> dict[str, Any]:
    """`_comparable` of what the reverse comparison must find."""
    out: dict[str, Any] = {}
    for name, value in _comparable(fields).items():
        if isinstance(value, tuple) and len(value) == 4:
            added, removed, moved, edits = value
            out[name] = (
                removed,
                added,
                moved,
                sorted((u, a, new, old) for u, a, old, new in edits),
            )
        elif isinstance(value, tuple):
            out[name] = (value[1], value[0])
        else:
            out[name] = value
    return out


def assert_symmetric(forward: ChangeSet, backward: ChangeSet) -> None:
    """added <-> removed; updated, same_date_edit, date_only keep their kind; every
    field's detail is mirrored."""
    there, back = _by_topic(forward), _by_topic(backward)
    assert set(there) == set(back)
    for key, change in there.items():
        assert back[key].kind == _FLIP.get(change.kind, change.kind), key
        assert back[key].before == change.after
        assert back[key].after == change.before
        assert back[key].changed_fields == change.changed_fields
        assert _comparable(back[key].fields) == _mirrored(change.fields), key


def test_changes_from_a_point_to_itself_are_empty(scenario: Path) -> None:
    archive = open_archive(scenario)
    for point in (BEFORE_RUN, AFTER_RUN, date(2024, 2, 1), None):
        assert compare(archive, point, point).changes == ()


def test_the_reverse_comparison_mirrors(scenario: Path, forward: ChangeSet) -> None:
    backward = compare(open_archive(scenario), AFTER_RUN, BEFORE_RUN)
    assert_symmetric(forward, backward)


# Random before/after pairs: each topic gets one mutation, whose kind is known.

_WORDS = ("asthma", "airway", "lungs", "breathe", "cough", "inhaler", "child", "night", "mild")
_SECTIONS = ("Start Here", "Treatments and Therapies", "Related Issues", "Patient Handouts")
_MUTATIONS = ("keep", "journal", "date", "content", "content_and_date", "gone")


def _random_page(rng: random.Random, slug: str, day: date) -> HealthTopicPage:
    links = []
    for section in rng.sample(_SECTIONS, rng.randint(1, 3)):
        for position in range(rng.randint(1, 4)):
            number = rng.randint(0, 40)
            links.append(
                TopicLink(
                    section=section,
                    section_id=None,
                    position=position,
                    title=f"Resource {number}",
                    url=f"https://example.org/{slug}/{number}",
                    organizations=rng.sample(["NIH", "CDC", "Mayo", "NLM"], rng.randint(0, 2)),
                )
            )
    return page(
        slug,
        last_updated=day,
        text=" ".join(rng.choices(_WORDS, k=rng.randint(3, 25))),
        also_called=rng.sample(["A", "B", "C", "D"], rng.randint(0, 3)),
        links=links,
        related_topics=[
            RelatedTopic(title=f"Topic {n}", url=f"{ORIGIN}/topic{n}.html")
            for n in rng.sample(range(8), rng.randint(0, 3))
        ],
        clinical_trials=[
            ClinicalTrial(position=0, title=f"ClinicalTrials.gov: {slug}", url=f"https://ct/{slug}")
        ]
        if rng.random() < 0.5
        else [],
    )


def _edited(rng: random.Random, old: HealthTopicPage) -> HealthTopicPage:
    """`old` with one or more content edits (always a different hash)."""
    while True:
        new = _random_page(rng, old.slug, old.last_updated)
        if rng.random() < 0.5:  # small edits: keep most links, shuffle a section
            links = list(old.links)
            rng.shuffle(links)
            new = dataclasses.replace(new, links=links)
        new = dataclasses.replace(new, content_hash="")
        new = page(
            old.slug,
            **{
                name: getattr(new, name)
                for name in ("last_updated", "also_called", "links", "related_topics")
            },
            text=new.summary_text.split("\n")[0],
            clinical_trials=new.clinical_trials,
        )
        if new.content_hash != old.content_hash:
            return new


def _random_pair(rng: random.Random) -> tuple[list[HealthTopicPage], list[HealthTopicPage], dict]:
    day, later = date(2024, 1, 10), date(2024, 2, 1)
    before = [_random_page(rng, f"topic{n}", day) for n in range(12)]
    after, expected = [], {}
    for old in before:
        mutation = rng.choice(_MUTATIONS)
        key = (old.language, old.slug)
        if mutation == "keep":
            after.append(old)
        elif mutation == "journal":
            articles = page(old.slug, pmids=(str(rng.randint(1, 99)),)).journal_articles
            after.append(dataclasses.replace(old, journal_articles=articles))
        elif mutation == "date":
            after.append(dataclasses.replace(old, last_updated=later))
            expected[key] = "date_only"
        elif mutation == "content":
            after.append(_edited(rng, old))
            expected[key] = "same_date_edit"
        elif mutation == "content_and_date":
            after.append(dataclasses.replace(_edited(rng, old), last_updated=later))
            expected[key] = "updated"
        else:
            expected[key] = "removed"
    for n in range(rng.randint(0, 3)):
        after.append(_random_page(rng, f"new{n}", later))
        expected[("en", f"new{n}")] = "added"
    return before, after, expected


@pytest.mark.parametrize("seed", [pytest.param(seed, id=f"seed-{seed}") for seed in range(4)])
def test_random_pairs(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    before, after, expected = _random_pair(rng)
    gone = [(p.language, p.slug) for p in before if expected.get((p.language, p.slug)) == "removed"]
    a = commit_run(tmp_path, at(date(2024, 1, 10)), before)
    b = commit_run(tmp_path, at(date(2024, 2, 1)), after, gone=gone)
    archive = open_archive(tmp_path)
    forward = compare(archive, a, b)
    assert {key: change.kind for key, change in _by_topic(forward).items()} == expected
    assert compare(archive, a, a).changes == ()
    assert compare(archive, b, b).changes == ()
    assert_symmetric(forward, compare(archive, b, a))
    pages_before = {p.slug: p for p in before}
    pages_after = {p.slug: p for p in after}
    for change in forward.changes:
        if change.kind not in ("updated", "same_date_edit"):
            assert not set(change.changed_fields) - {"last_updated"}
            continue
        old, new = pages_before[change.slug], pages_after[change.slug]
        links = change.fields.links or []
        old_urls = {link.url for link in old.links}
        new_urls = {link.url for link in new.links}
        assert {e.url for e in links if e.change == "added"} == new_urls - old_urls
        assert {e.url for e in links if e.change == "removed"} == old_urls - new_urls
        assert (change.fields.summary is not None) == (old.summary_text != new.summary_text)


# --- points ---------------------------------------------------------------------------


def test_dates_compare_valid_time(scenario: Path) -> None:
    archive = open_archive(scenario)
    changes = compare(archive, date(2024, 1, 31), date(2024, 2, 29))
    # Only the English diabetes page was dated in February (2024-02-20).
    assert [(c.slug, c.kind) for c in changes.changes] == [("diabetes", "date_only")]
    assert changes.from_point.kind == "date"
    assert changes.from_point.day == date(2024, 1, 31)
    assert compare(archive, "2024-01-31", "2024-02-29") == changes


def test_latest_is_the_last_run(scenario: Path, forward: ChangeSet) -> None:
    latest = compare(open_archive(scenario), BEFORE_RUN, None)
    assert latest.changes == forward.changes
    assert latest.to_point.label == "latest"


def test_language_filter(scenario: Path) -> None:
    changes = compare(open_archive(scenario), BEFORE_RUN, AFTER_RUN, language="es")
    assert [(c.language, c.slug) for c in changes.changes] == [("es", "diabetes")]
    assert (changes.topics_before, changes.topics_after) == (1, 1)
    with pytest.raises(ValueError, match="language"):
        compare(open_archive(scenario), BEFORE_RUN, AFTER_RUN, language="fr")


@pytest.mark.parametrize(
    ("point", "error"),
    [
        pytest.param("20990101T000000Z-dead", UnknownRunError, id="unknown-run"),
        pytest.param("2024-13-01", BadAsOfDateError, id="bad-date"),
        pytest.param("yesterday", UnknownRunError, id="neither"),
    ],
)
def test_bad_points(scenario: Path, point: str, error: type[Exception]) -> None:
    with pytest.raises(error, match=point):
        compare(open_archive(scenario), point, AFTER_RUN)


# --- the frame ------------------------------------------------------------------------


def test_archive_changes_is_one_row_per_changed_topic(scenario: Path, forward: ChangeSet) -> None:
    frame = open_archive(scenario).changes(BEFORE_RUN, AFTER_RUN)
    assert list(zip(frame["language"], frame["slug"], frame["kind"], strict=True)) == [
        (c.language, c.slug, c.kind) for c in forward.changes
    ]
    assert all(isinstance(dtype, pd.ArrowDtype) for dtype in frame.dtypes)
    assert frame.columns[-len(CHANGED_FIELDS) :].tolist() == [f"diff_{n}" for n in CHANGED_FIELDS]
    asthma = frame[frame["slug"] == "asthma"].iloc[0]
    assert asthma["before_last_updated"] == date(2024, 1, 10)
    assert asthma["after_run_id"] == AFTER_RUN
    assert list(asthma["changed_fields"]) == _by_topic(forward)[("en", "asthma")].changed_fields
    assert asthma["diff_also_called"]["added"] == ["Asthma attack"]
    assert pd.isna(asthma["diff_title"])
    links = asthma["diff_links"]
    assert [link["change"] for link in links] == ["edited", "added", "moved"]
    flu = frame[frame["slug"] == "flu"].iloc[0]
    assert pd.isna(flu["before_run_id"])
    assert list(flu["changed_fields"]) == []


def test_an_empty_frame_keeps_its_columns(scenario: Path) -> None:
    frame = open_archive(scenario).changes(AFTER_RUN, AFTER_RUN)
    full = open_archive(scenario).changes(BEFORE_RUN, AFTER_RUN)
    assert frame.empty
    assert list(frame.columns) == list(full.columns)
    assert frame.dtypes.tolist() == full.dtypes.tolist()


def test_the_archive_code_never_imports_scrapy() -> None:
    code = (
        "import sys, pipelines.changes.detection, pipelines.changes.reports, "
        "crawler.commands.changes; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scrapy', 'twisted')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_field_changes_cover_the_vocabulary() -> None:
    assert tuple(f.name for f in dataclasses.fields(FieldChanges)) == CHANGED_FIELDS


def test_every_changed_topic_of_a_week_of_edits_is_found_in_time(tmp_path: Path) -> None:
    """A larger archive: 300 topics, every tenth edited, run in well under a second."""
    import time

    day = date(2024, 1, 10)
    before = [page(f"t{n}", last_updated=day, text=f"Topic {n} text.") for n in range(300)]
    after = [
        dataclasses.replace(p, last_updated=day + timedelta(days=3))
        if n % 10
        else page(p.slug, last_updated=day + timedelta(days=3), text=f"Topic {n} new text.")
        for n, p in enumerate(before)
    ]
    a = commit_run(tmp_path, at(day), before)
    b = commit_run(tmp_path, at(day + timedelta(days=7)), after)
    archive = open_archive(tmp_path)
    start = time.perf_counter()
    changes = compare(archive, a, b)
    elapsed = time.perf_counter() - start
    assert changes.counts()["updated"] == 30
    assert changes.counts()["date_only"] == 270
    assert elapsed < 5  # generous: the benchmark holds the real target
