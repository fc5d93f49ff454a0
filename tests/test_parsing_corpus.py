"""Properties of the parser's output on the real pages in ../shared/corpus.

Every expectation here is read from the raw HTML with this module's own CSS selectors
(parsel) and regexes, never with the parser's helpers, so a selector bug in the parser
cannot hide behind the same bug in its test.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from parsel import Selector

from crawler.parsing import parse_health_topic
from crawler.parsing.items import HealthTopicPage, to_jsonable

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
PAGES = CORPUS / "medlineplus" / "pages"
CORPUS_ABSENT = f"real MedlinePlus pages not found at {PAGES} (the shared corpus is optional)"

CLINICAL_TRIALS = 27
JOURNAL_ARTICLES = 59
MOJIBAKE = ("Ã", "Â", "â€", "\ufffd")
_SECTION_ID = re.compile(r"^cat_(\d+)_section$")


def _page_params() -> list[Any]:
    if not PAGES.is_dir():
        return [pytest.param(None, id="corpus-absent")]
    return [pytest.param(path, id=path.stem) for path in sorted(PAGES.glob("*.html"))]


PAGE_PARAMS = _page_params()


@cache
def _load(path: Path) -> tuple[HealthTopicPage, Selector, str]:
    """(parsed item, an independent parsel view of the page, the page's canonical URL)."""
    body = path.read_bytes()
    selector = Selector(text=body.decode("utf-8"))
    canonical = selector.css('link[rel="canonical"]::attr(href)').get()
    assert canonical, f"{path.name}: no canonical link, cannot name the page"
    return parse_health_topic(body, canonical.strip()), selector, canonical.strip()


def _page(path: Path | None) -> tuple[HealthTopicPage, Selector, str]:
    if path is None:
        pytest.skip(CORPUS_ABSENT)
    return _load(path)


def _text(selector: Selector) -> str:
    """All text below `selector`, whitespace collapsed."""
    return " ".join("".join(selector.css("::text").getall()).split())


def _sections(selector: Selector) -> list[tuple[int, Selector]]:
    found = []
    for section in selector.css('section[id^="cat_"][id$="_section"]'):
        match = _SECTION_ID.match(section.attrib["id"])
        assert match, section.attrib["id"]
        found.append((int(match[1]), section))
    return found


def _entries(section: Selector) -> list[Selector]:
    return section.css("div.section-body ul.bulletlist > li")


def _strings(value: Any, path: str = "item") -> list[tuple[str, str]]:
    """Every string anywhere in a JSON-like value, with where it sits."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [pair for key, part in value.items() for pair in _strings(part, f"{path}.{key}")]
    if isinstance(value, list):
        return [pair for i, part in enumerate(value) for pair in _strings(part, f"{path}[{i}]")]
    return []


def test_corpus_has_pages() -> None:
    if not PAGES.is_dir():
        pytest.skip(CORPUS_ABSENT)
    assert len(PAGE_PARAMS) >= 16


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_last_updated_equals_dc_date_modified(path: Path | None) -> None:
    item, selector, _ = _page(path)
    modified = selector.css('meta[name="DC.Date.Modified"]::attr(content)').get()
    assert modified, "corpus page without DC.Date.Modified"
    assert item.last_updated == date.fromisoformat(modified.strip())


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_every_section_entry_is_extracted(path: Path | None) -> None:
    item, selector, _ = _page(path)
    sections = _sections(selector)
    assert sections, "corpus page without any cat_N section"
    for section_id, section in sections:
        expected = len(_entries(section))
        if section_id == CLINICAL_TRIALS:
            actual = len(item.clinical_trials)
        elif section_id == JOURNAL_ARTICLES:
            actual = len(item.journal_articles) + (item.journal_articles_more_url is not None)
        else:
            actual = sum(1 for link in item.links if link.section_id == section_id)
        assert actual == expected, f"cat_{section_id}: {actual} entries extracted, {expected} li"


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_no_entry_is_an_also_in_spanish_link(path: Path | None) -> None:
    item, selector, canonical = _page(path)
    spanish = {
        urljoin(canonical, href.strip())
        for href in selector.css("span.also-lang a::attr(href)").getall()
    }
    entry_urls = (
        [link.url for link in item.links]
        + [trial.url for trial in item.clinical_trials]
        + [article.url for article in item.journal_articles]
        + [item.journal_articles_more_url or ""]
    )
    assert sorted(spanish.intersection(entry_urls)) == []


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_other_language_urls_are_the_also_in_spanish_links(path: Path | None) -> None:
    item, selector, canonical = _page(path)
    spanish = sorted(
        urljoin(canonical, href.strip())
        for href in selector.css("span.also-lang a::attr(href)").getall()
    )
    extracted = sorted(link.other_language_url for link in item.links if link.other_language_url)
    assert extracted == spanish


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_texts_are_clean(path: Path | None) -> None:
    item, _, _ = _page(path)
    strings = _strings(to_jsonable(item))
    strings += [
        (f"item.summary_text line {i}", line)
        for i, line in enumerate(item.summary_text.splitlines())
    ]
    mojibake = [(where, text) for where, text in strings if any(m in text for m in MOJIBAKE)]
    padded = [(where, text) for where, text in strings if text != text.strip()]
    assert mojibake == []
    assert padded == []


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_sidebar_parts_found_exactly_when_present(path: Path | None) -> None:
    item, selector, canonical = _page(path)
    assert (item.primary_institute is not None) == bool(selector.css("#primary-institute-section"))
    image_src = selector.css("#ht-img-section img::attr(src)").get()
    assert (item.image.url if item.image else None) == (
        urljoin(canonical, image_src.strip()) if image_src else None
    )
    related = [
        (_text(link), urljoin(canonical, link.attrib["href"].strip()))
        for link in selector.css("#related-topics li a")
    ]
    assert [(topic.title, topic.url) for topic in item.related_topics] == related
    spanish = selector.css('link[hreflang="es"]::attr(href)').get()
    assert item.counterpart_url == (spanish.strip() if spanish else None)


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_title_is_the_h1(path: Path | None) -> None:
    item, selector, _ = _page(path)
    assert item.title == _text(selector.css("h1")[0])
    assert item.title == _text(selector.css("div.page-title h1"))


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_organizations_are_the_orgs_text_split_on_semicolons(path: Path | None) -> None:
    item, selector, _ = _page(path)
    for section_id, section in _sections(selector):
        if section_id == JOURNAL_ARTICLES:
            continue
        expected = []
        for li in _entries(section):
            orgs = _text(li.css("span.orgs"))
            if orgs.startswith("(") and orgs.endswith(")"):
                orgs = orgs[1:-1]
            expected.append([name.strip() for name in orgs.split(";") if name.strip()])
        if section_id == CLINICAL_TRIALS:
            actual = [trial.organizations for trial in item.clinical_trials]
        else:
            in_section = [link for link in item.links if link.section_id == section_id]
            actual = [link.organizations for link in sorted(in_section, key=lambda x: x.position)]
        assert actual == expected, f"cat_{section_id}"


BADGE_NAMES = {
    "From the National Institutes of Health": "nih",
    "Video": "video",
    "Easy-to-Read": "easy-to-read",
    "Infographic": "infographic",
}


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_entries_are_the_first_link_of_each_li(path: Path | None) -> None:
    item, selector, canonical = _page(path)
    for section_id, section in _sections(selector):
        if section_id in (CLINICAL_TRIALS, JOURNAL_ARTICLES):
            continue
        expected = []
        for li in _entries(section):
            first = li.css("a")[0]
            badges = [
                BADGE_NAMES.get(alt, alt.lower())
                for alt in li.css("img.imgdesc::attr(alt)").getall()
            ]
            expected.append(
                (
                    _text(first),
                    urljoin(canonical, first.attrib["href"].strip()),
                    first.attrib.get("data-sid"),
                    badges,
                )
            )
        in_section = sorted(
            (link for link in item.links if link.section_id == section_id),
            key=lambda link: link.position,
        )
        actual = [(link.title, link.url, link.site_id, link.badges) for link in in_section]
        assert actual == expected, f"cat_{section_id}"


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_clinical_trials_nih_flag_follows_the_badge(path: Path | None) -> None:
    item, selector, _ = _page(path)
    expected = [
        "From the National Institutes of Health" in li.css("img.imgdesc::attr(alt)").getall()
        for _, section in _sections(selector)
        if section.attrib["id"] == f"cat_{CLINICAL_TRIALS}_section"
        for li in _entries(section)
    ]
    assert [trial.nih for trial in item.clinical_trials] == expected


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_summary_attribution_is_split_off(path: Path | None) -> None:
    item, selector, _ = _page(path)
    attribution = selector.css("#topic-summary > p.attribution")
    expected = _text(attribution) if attribution else None
    assert item.summary_attribution == expected
    if expected:
        assert expected not in item.summary_text
        assert "attribution" not in item.summary_html


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_head_metadata(path: Path | None) -> None:
    item, selector, _ = _page(path)

    def metas(name: str) -> list[str]:
        return [
            " ".join(v.split())
            for v in selector.css(f'meta[name="{name}"]::attr(content)').getall()
        ]

    assert item.other_names == metas("DC.Title.Alternate")
    assert item.mesh_headings == metas("DC.Subject.MeSH")
    assert item.groups == metas("DC.Relation.IsPartOf")
    assert [item.meta_description] == metas("description")
    created = metas("DC.Date.Created")
    assert item.date_created == (date.fromisoformat(created[0]) if created else None)
    also = _text(selector.css("span.alsocalled"))
    expected_also = also.removeprefix("Also called:").strip().split(", ") if also else []
    assert item.also_called == expected_also


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_summary_text_is_one_line_per_block(path: Path | None) -> None:
    item, selector, _ = _page(path)
    blocks = []
    for block in selector.css("#topic-summary").xpath(
        ".//p[not(contains(@class, 'attribution'))] | .//li | .//h3"
    ):
        # a list item's own text: a nested list's items are blocks of their own
        own = block.xpath("./text() | ./*[not(self::ul or self::ol)]//text()").getall()
        if text := " ".join("".join(own).split()):
            blocks.append(text)
    assert item.summary_text.split("\n") == blocks


@pytest.mark.parametrize("path", PAGE_PARAMS)
def test_summary_html_keeps_the_summary_links_absolute(path: Path | None) -> None:
    item, selector, canonical = _page(path)
    published = [
        urljoin(canonical, href.strip())
        for href in selector.css("#topic-summary a::attr(href)").getall()
    ]
    summary = Selector(text=f"<div>{item.summary_html}</div>")
    assert summary.css("a::attr(href)").getall() == published
    assert summary.css("script, style, iframe, p.attribution") == []
