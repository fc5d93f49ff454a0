"""Unit tests of the incremental plan (`pipelines.archive.incremental`) and of the XML records it
compares (`crawler.parsing.xml_dump.DumpTopic`): which topics a day fetches and why, the
revalidation partition, the index schedule, the cross-check notes, and the records read
from NLM's real dump (tests using it skip when the shared corpus is absent)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from crawler.parsing.xml_dump import Dump, DumpSite, DumpTopic, fingerprint, parse_dump
from pipelines.archive.incremental import cross_check, index_due, plan_incremental, topic_url

REAL_DUMP = (
    Path(__file__).resolve().parents[1].parent
    / "shared/corpus/medlineplus/xml/mplus_topics_2025-03-04_head.xml"
)
DAY = date(2025, 3, 4)


def _topic(language: str, slug: str, title: str | None = None) -> DumpTopic:
    topic = DumpTopic(
        url=topic_url(language, slug),
        language=language,  # type: ignore[arg-type]
        slug=slug,
        title=title or slug.title(),
    )
    return replace(topic, fingerprint=fingerprint(topic))


def _dump(*topics: DumpTopic, day: date = DAY) -> Dump:
    return Dump(dump_date=day, topics=list(topics))


def test_plan_fetches_new_changed_and_missing_topics_and_the_days_slice() -> None:
    kept = [_topic("en", f"topic{n}") for n in range(70)]
    changed = _topic("es", "asma")
    stored = {(t.language, t.slug): t.fingerprint for t in kept}
    stored[("es", "asma")] = "an older fingerprint"
    live = {*stored, ("en", "removed")}

    plan = plan_incremental(
        _dump(*kept, changed, _topic("en", "brandnew")),
        stored,
        live,
        languages=("en", "es"),
        revalidate_days=7,
    )

    assert plan.urls("new") == [topic_url("en", "brandnew")]
    assert plan.urls("changed") == [topic_url("es", "asma")]
    assert plan.urls("missing") == [topic_url("en", "removed")]
    assert 0 < plan.count("revalidate") < len(kept)
    assert list(plan.fetch)[:3] == [
        topic_url("en", "brandnew"),
        topic_url("es", "asma"),
        topic_url("en", "removed"),
    ]


def test_every_known_topic_is_revalidated_once_in_n_consecutive_days() -> None:
    topics = [_topic(language, f"t{n}") for n in range(200) for language in ("en", "es")]
    stored = {(t.language, t.slug): t.fingerprint for t in topics}
    for days in (1, 3, 7):
        seen: list[str] = []
        for offset in range(days):
            plan = plan_incremental(
                _dump(*topics, day=DAY + timedelta(days=offset)),
                stored,
                set(stored),
                languages=("en", "es"),
                revalidate_days=days,
            )
            seen += plan.urls("revalidate")
        assert sorted(seen) == sorted(t.url for t in topics), days  # each exactly once


def test_languages_not_crawled_are_neither_fetched_nor_missing() -> None:
    english, spanish = _topic("en", "acne"), _topic("es", "acne")
    plan = plan_incremental(
        _dump(english, spanish), {}, {("es", "other")}, languages=("en",), revalidate_days=7
    )
    assert list(plan.fetch) == [english.url]


def test_the_index_is_read_when_no_run_read_it_for_a_week() -> None:
    assert index_due(DAY, None)
    assert not index_due(DAY, DAY - timedelta(days=6))
    assert index_due(DAY, DAY - timedelta(days=7))


def test_a_dump_without_a_date_takes_the_day_given() -> None:
    plan = plan_incremental(
        Dump(dump_date=None, topics=[_topic("en", "acne")]),
        {},
        set(),
        languages=("en",),
        today=DAY,
    )
    assert plan.day == DAY
    with pytest.raises(ValueError, match="no date-generated"):
        plan_incremental(Dump(dump_date=None, topics=[]), {}, set(), languages=("en",))


def test_cross_check_names_topics_in_one_list_and_not_the_other() -> None:
    plan = plan_incremental(
        _dump(_topic("en", "acne"), _topic("en", "new")),
        {("en", "acne"): _topic("en", "acne").fingerprint},
        {("en", "acne"), ("en", "served"), ("en", "gone"), ("en", "failed")},
        languages=("en", "es"),
        revalidate_days=7,
    )
    notes = cross_check(
        plan,
        confirmed_gone={("en", "gone")},
        served={("en", "acne"), ("en", "served")},
        indexed={("en", "acne"), ("en", "served"), ("en", "unknown")},
        index_languages=("en",),
    )
    assert notes == [
        "1 topic (en/new) in the XML dump, not live in the archive: fetched as new",
        "3 topics (en/failed, en/gone, en/served) live in the archive, missing from the XML"
        " dump: 1 still served (not marked gone): en/served; 1 answered 404/410 (marked"
        " gone): en/gone; 1 not confirmed either way: en/failed",
        "2 topics (en/served, en/unknown) listed by the A-Z index, missing from the XML dump",
        "1 topic (en/new) in the XML dump, not listed by the A-Z index",
    ]
    assert cross_check(plan, confirmed_gone=(), served=(), indexed=None)[-1].startswith(
        "3 topics (en/failed"
    )


def test_fingerprint_changes_with_any_field_and_not_with_indentation() -> None:
    topic = _topic("en", "acne")
    site = DumpSite(title="A", url="https://example.org/a", categories=["Start Here"])
    for edited in (
        replace(topic, title="Acne!"),
        replace(topic, summary="<p>new</p>"),
        replace(topic, also_called=["Pimples"]),
        replace(topic, sites=[site]),
        replace(topic, sites=[replace(site, categories=["Learn More"])]),
        replace(topic, related_topics=[topic_url("en", "skin")]),
        replace(topic, language_mapped_url=topic_url("es", "acne")),
    ):
        assert fingerprint(edited) != topic.fingerprint, edited
    compact = (
        b'<health-topics date-generated="03/04/2025 02:30:23"><health-topic'
        b' url="https://medlineplus.gov/acne.html" language="English" title="Acne">'
        b"<also-called>Pimples</also-called></health-topic></health-topics>"
    )
    indented = compact.replace(b"<also-called>", b"\n   <also-called>  ").replace(
        b"</also-called>", b"\n  </also-called>\n"
    )
    (first,) = parse_dump(io.BytesIO(compact), "a.xml", ["en"], 10**6).topics
    (second,) = parse_dump(io.BytesIO(indented), "b.xml", ["en"], 10**6).topics
    assert first.fingerprint == second.fingerprint
    assert first.also_called == ["Pimples"]


def test_real_nlm_records_are_read_whole() -> None:
    if not REAL_DUMP.is_file():
        pytest.skip(f"NLM's dump not found at {REAL_DUMP} (the shared corpus is optional)")
    dump = parse_dump(io.BytesIO(REAL_DUMP.read_bytes()), str(REAL_DUMP), ["en", "es"], 10**8)
    assert dump.dump_date == DAY
    a1c = dump.topics[0]
    assert (a1c.url, a1c.language, a1c.slug, a1c.title) == (
        "https://medlineplus.gov/a1c.html",
        "en",
        "a1c",
        "A1C",
    )
    assert a1c.also_called == ["Glycohemoglobin", "HbA1C", "Hemoglobin A1C test"]
    assert a1c.language_mapped_url == "https://medlineplus.gov/spanish/a1c.html"
    assert a1c.primary_institute == (
        "National Institute of Diabetes and Digestive and Kidney Diseases"
    )
    assert a1c.mesh_headings == ["Glycated Hemoglobin"]
    assert (a1c.summary or "").startswith("<p>A1C is a blood test for <TOPIC ID=")
    first_site = a1c.sites[0]
    assert (first_site.title, first_site.categories, first_site.organizations) == (
        "A1C and eAG",
        ["Learn More"],
        ["American Diabetes Association"],
    )
    assert len({topic.fingerprint for topic in dump.topics}) == len(dump.topics)
    again = parse_dump(io.BytesIO(REAL_DUMP.read_bytes()), str(REAL_DUMP), ["en"], 10**8)
    english = [t.fingerprint for t in dump.topics if t.language == "en"]
    assert [t.fingerprint for t in again.topics] == english
