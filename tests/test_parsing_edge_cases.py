"""Targeted checks built from string edits of the hand-written fixture pages.

Each test changes one thing in a page whose full output is pinned by the golden tests,
so a failure here points at one behaviour.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from crawler.parsing import parse_health_topic
from crawler.parsing.errors import ExtractionError
from crawler.parsing.items import HealthTopicPage, Institute

PAGES = Path(__file__).parent / "fixtures" / "pages"
HEAT_URL = "https://medlineplus.gov/heatillness.html"
HICCUPS_URL = "https://medlineplus.gov/hiccups.html"
ISLET_URL = "https://medlineplus.gov/isletcelltransplantation.html"
SPANISH_URL = "https://medlineplus.gov/spanish/diabetes.html"
HICCUPS_HREFLANG_ES = (
    '<link rel="alternate" hreflang="es" href="https://medlineplus.gov/spanish/hiccups.html" />'
)


def _html(name: str) -> str:
    return (PAGES / f"{name}.html").read_text(encoding="utf-8")


def _edit(html: str, old: str, new: str) -> str:
    assert html.count(old) == 1, f"{old!r} occurs {html.count(old)} times in the page"
    return html.replace(old, new)


def _parse(html: str, url: str) -> HealthTopicPage:
    return parse_health_topic(html.encode("utf-8"), url)


@pytest.mark.parametrize(
    ("name", "url", "dc_meta", "printed"),
    [
        pytest.param(
            "heatillness_full",
            HEAT_URL,
            '<meta name="DC.Date.Modified" content="2025-06-05"/>',
            date(2025, 6, 5),
            id="english-2025",
        ),
        pytest.param(
            "spanish_diabetes",
            SPANISH_URL,
            '<meta name="DC.Date.Modified" content="2024-07-19"/>',
            date(2024, 7, 19),
            id="spanish",
        ),
    ],
)
def test_printed_date_is_read_without_dc_date_modified(
    name: str, url: str, dc_meta: str, printed: date
) -> None:
    assert _parse(_edit(_html(name), dc_meta, ""), url).last_updated == printed


@pytest.mark.parametrize(
    ("name", "url", "dc_meta", "printed"),
    [
        pytest.param(
            "heatillness_full",
            HEAT_URL,
            '<meta name="DC.Date.Modified" content="2025-06-05"/>',
            date(2025, 6, 5),
            id="english-2025",
        ),
        pytest.param(
            "spanish_diabetes",
            SPANISH_URL,
            '<meta name="DC.Date.Modified" content="2024-07-19"/>',
            date(2024, 7, 19),
            id="spanish",
        ),
    ],
)
def test_printed_date_wins_over_dc_date_modified(
    name: str, url: str, dc_meta: str, printed: date
) -> None:
    other = '<meta name="DC.Date.Modified" content="2030-01-01"/>'
    assert _parse(_edit(_html(name), dc_meta, other), url).last_updated == printed


def test_dc_date_modified_is_the_fallback_when_nothing_is_printed() -> None:
    html = _edit(
        _html("heatillness_full"),
        '<span id="lastupdate">Last updated June 5, 2025</span>',
        "",
    )
    assert _parse(html, HEAT_URL).last_updated == date(2025, 6, 5)


def test_older_template_footer_dates() -> None:
    html = _edit(
        _html("isletcelltransplantation_2020"),
        "<p>Page last updated on 29 January 2020</p><p>Topic last reviewed: 14 February 2017</p>",
        "<p>Topic last reviewed: 3 March 2018</p>\n<p>Page last updated on 1 December 2021</p>",
    )
    page = _parse(html, ISLET_URL)
    assert (page.last_updated, page.last_reviewed) == (date(2021, 12, 1), date(2018, 3, 3))


def test_error_names_the_fetched_url() -> None:
    mirror = "http://127.0.0.1:8000/earwax.html"
    with pytest.raises(ExtractionError) as raised:
        parse_health_topic((PAGES / "topic_without_date.html").read_bytes(), mirror)
    assert raised.value.url == mirror
    assert mirror in str(raised.value)


def test_mirror_fetch_keeps_the_canonical_url() -> None:
    page = _parse(_html("shortlayout_modern"), "http://127.0.0.1:8000/hiccups.html")
    assert page.url == HICCUPS_URL
    assert page.source_url == "http://127.0.0.1:8000/hiccups.html"


@pytest.mark.parametrize(
    "markup",
    [
        pytest.param('<iframe src="https://evil.example/"></iframe>', id="iframe"),
        pytest.param('<img src="x.png" onerror="alert(1)">', id="img-onerror"),
        pytest.param('<a href="JaVa\tScRiPt:alert(1)">x</a>', id="javascript-mixed-case-tab"),
        pytest.param('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', id="data-url"),
        pytest.param("<svg><script>alert(1)</script></svg>", id="svg-script"),
        pytest.param('<form action="https://evil.example/"><input name="q"></form>', id="form"),
        pytest.param('<p style="background:url(javascript:alert(1))">x</p>', id="style-attr"),
    ],
)
def test_active_content_is_stripped_from_the_summary(markup: str) -> None:
    html = _edit(
        _html("shortlayout_modern"),
        "<p>Common causes include:</p>",
        f"<p>Common causes include:</p>{markup}",
    )
    summary = _parse(html, HICCUPS_URL).summary_html.lower()
    for needle in (
        "<iframe",
        "onerror",
        "javascript",
        "data:",
        "<script",
        "<svg",
        "<form",
        "style",
    ):
        assert needle not in summary


def test_toggle_is_the_counterpart_when_no_hreflang_link() -> None:
    html = _edit(
        _html("shortlayout_modern"),
        HICCUPS_HREFLANG_ES,
        "",
    )
    page = _parse(html, HICCUPS_URL)
    assert page.counterpart_url == "https://medlineplus.gov/spanish/hiccups.html"


def test_toggle_to_the_other_language_home_page_is_no_counterpart() -> None:
    """A topic without a Spanish version has the header's "Español" link point at the Spanish
    home page; that page is not "the same topic in the other language"."""
    html = _edit(
        _html("shortlayout_modern"),
        HICCUPS_HREFLANG_ES,
        "",
    )
    html = _edit(
        html,
        '<a id="mplus-lang-toggle" href="https://medlineplus.gov/spanish/hiccups.html"',
        '<a id="mplus-lang-toggle" href="https://medlineplus.gov/spanish/"',
    )
    assert _parse(html, HICCUPS_URL).counterpart_url is None


def test_unknown_charset_label_is_not_a_crash() -> None:
    """An unknown `<meta charset>` label must give an item (browsers ignore the label) or an
    ExtractionError, never a bare LookupError that escapes the caller's error handling."""
    html = _edit(_html("heatillness_full"), '<meta charset="utf-8" />', '<meta charset="utf-9" />')
    try:
        outcome = parse_health_topic(html.encode("utf-8"), HEAT_URL).title
    except ExtractionError as error:
        outcome = f"ExtractionError on field {error.field!r}"
    assert outcome in ("Heat Illness", "ExtractionError on field 'html'")


def test_utf16_page_with_bom_is_decoded() -> None:
    html = _html("spanish_diabetes")
    expected = _parse(html, SPANISH_URL)
    assert parse_health_topic(html.encode("utf-16"), SPANISH_URL) == expected


def test_primary_institute_without_link_keeps_its_name() -> None:
    """Institute.url is documented as "None when not linked": an unlinked institute is still
    the page's primary institute."""
    html = _edit(
        _html("isletcelltransplantation_2020"),
        '<a href="https://www.niddk.nih.gov/">National Institute of Diabetes and Digestive and'
        " Kidney Diseases</a>",
        "National Institute of Diabetes and Digestive and Kidney Diseases",
    )
    assert _parse(html, ISLET_URL).primary_institute == Institute(
        name="National Institute of Diabetes and Digestive and Kidney Diseases", url=None
    )
