"""The content hash moves with editorial content and with nothing else.

Variants are string edits of one hand-written page (fixtures/pages/heatillness_full.html);
the whitespace checks also run on a real page when the shared corpus is present.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from crawler.parsing import parse_health_topic
from crawler.parsing.items import HealthTopicPage

PAGE = Path(__file__).parent / "fixtures" / "pages" / "heatillness_full.html"
URL = "https://medlineplus.gov/heatillness.html"
CORPUS_PAGE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "corpus"
    / "medlineplus"
    / "pages"
    / "lungcancer.html"
)


def _parse(html: str, url: str = URL) -> HealthTopicPage:
    return parse_health_topic(html.encode("utf-8"), url)


def _original() -> str:
    return PAGE.read_text(encoding="utf-8")


def _edit(html: str, old: str, new: str) -> str:
    """`html` with `old` replaced by `new`; `old` must be there, or the variant tests nothing."""
    assert html.count(old) == 1, f"{old!r} occurs {html.count(old)} times in the page"
    return html.replace(old, new)


def _reindent(html: str) -> str:
    """Every line re-indented differently (some lines gain indentation, some lose it)."""
    return "\n".join(
        "\t" * (number % 3) + " " + line.lstrip() for number, line in enumerate(html.split("\n"))
    )


def _newlines_between_tags(html: str) -> str:
    return re.sub(r">\s*<", ">\n\n<", html)


def _whitespace_pages() -> list[object]:
    return [
        pytest.param(PAGE, URL, id="heatillness_full"),
        pytest.param(
            CORPUS_PAGE, "https://medlineplus.gov/lungcancer.html", id="corpus-lungcancer"
        ),
    ]


def test_hash_is_a_sha256_hex_digest() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", _parse(_original()).content_hash)


def test_hash_is_stable_across_parses() -> None:
    html = _original()
    assert _parse(html).content_hash == _parse(html).content_hash


def test_hash_ignores_the_fetch_url() -> None:
    """A page fetched from a mirror is the same content as the live one."""
    html = _original()
    mirrored = _parse(html, "http://127.0.0.1:8000/heatillness.html")
    assert mirrored.source_url == "http://127.0.0.1:8000/heatillness.html"
    assert mirrored.content_hash == _parse(html).content_hash


@pytest.mark.parametrize(
    "reformat",
    [
        pytest.param(_reindent, id="reindented"),
        pytest.param(_newlines_between_tags, id="newlines-between-tags"),
        pytest.param(lambda html: _newlines_between_tags(_reindent(html)), id="both"),
    ],
)
@pytest.mark.parametrize(("page", "url"), _whitespace_pages())
def test_whitespace_only_markup_changes_keep_the_hash(
    page: Path, url: str, reformat: Callable[[str], str]
) -> None:
    if not page.is_file():
        pytest.skip(f"real MedlinePlus page not found at {page} (the shared corpus is optional)")
    html = page.read_text(encoding="utf-8")
    before, after = _parse(html, url), _parse(reformat(html), url)
    assert after.summary_html != before.summary_html  # the edit reached the hashed markup
    assert after.content_hash == before.content_hash


def test_journal_article_changes_keep_the_hash() -> None:
    html = _original()
    changed = _edit(
        html,
        "https://www.ncbi.nlm.nih.gov/pubmed/40912345",
        "https://www.ncbi.nlm.nih.gov/pubmed/41000001",
    )
    changed = _edit(
        changed,
        "Article: Heat-related emergency visits during the 2024 heat wave.",
        "Article: Heat illness among outdoor workers: a cohort study.",
    )
    changed = _edit(
        changed,
        "%22Heat+Stress+Disorders%22%5Bmajr%3Anoexp%5D",
        "%22Heat+Stress+Disorders%22%5Bmajr%5D",
    )
    before, after = _parse(html), _parse(changed)
    assert after.journal_articles != before.journal_articles
    assert after.journal_articles_more_url != before.journal_articles_more_url
    assert after.content_hash == before.content_hash


def test_date_changes_keep_the_hash() -> None:
    html = _original()
    changed = _edit(html, "Last updated June 5, 2025", "Last updated November 4, 2025")
    changed = _edit(
        changed,
        '<meta name="DC.Date.Modified" content="2025-06-05"/>',
        '<meta name="DC.Date.Modified" content="2025-11-04"/>',
    )
    before, after = _parse(html), _parse(changed)
    assert (before.last_updated, after.last_updated) == (date(2025, 6, 5), date(2025, 11, 4))
    assert after.content_hash == before.content_hash


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        pytest.param(
            "Heat\n                        Illness&nbsp;",
            "Heat Illnesses",
            "title",
            id="title",
        ),
        pytest.param(
            "sweating just isn't enough",
            "sweating just isn't sufficient",
            "summary_text",
            id="summary-word",
        ),
        pytest.param(
            '<a href="/sunburn.html">sunburn</a>',
            '<a href="/sunburn-prevention.html">sunburn</a>',
            "summary_html",
            id="summary-link-url",
        ),
        pytest.param(
            "https://www.weather.gov/safety/heat-index",
            "https://www.weather.gov/safety/heat-index-chart",
            "links",
            id="link-url",
        ),
        pytest.param(
            "(Centers for Disease Control and Prevention)",
            "(Centers for Disease Control)",
            "links",
            id="organization",
        ),
    ],
)
def test_editorial_changes_change_the_hash(old: str, new: str, field: str) -> None:
    html = _original()
    before, after = _parse(html), _parse(_edit(html, old, new))
    assert getattr(after, field) != getattr(before, field)
    assert after.content_hash != before.content_hash


def test_summary_text_change_between_inline_tags_changes_the_hash() -> None:
    """Dropping the space between two inline elements changes what a reader sees
    ("Heat stroke" becomes "Heatstroke"): summary_text differs, so the hash must too."""
    html = _edit(
        _original(),
        "<li><strong>Heat stroke</strong> is",
        "<li><strong>Heat</strong> <em>stroke</em> is",
    )
    joined = _edit(
        html, "<strong>Heat</strong> <em>stroke</em>", "<strong>Heat</strong><em>stroke</em>"
    )
    spaced, unspaced = _parse(html), _parse(joined)
    assert "Heat stroke is" in spaced.summary_text
    assert "Heatstroke is" in unspaced.summary_text
    assert unspaced.content_hash != spaced.content_hash
