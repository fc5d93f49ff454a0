"""Edits of fixture-site pages, as MedlinePlus makes them (tests only).

Each function takes a page's HTML and returns it edited, asserting that the part it
edits occurs exactly once, so a fixture change fails loudly instead of editing nothing.
"""

from __future__ import annotations

import re
from datetime import date


def with_date(html: str, day: date) -> str:
    """The page bumped to `day`: its printed "Last updated" date and DC.Date.Modified."""
    html, metas = re.subn(
        r'(<meta name="DC\.Date\.Modified" content=")[^"]*(")',
        rf"\g<1>{day.isoformat()}\g<2>",
        html,
    )
    html, printed = re.subn(
        r'(<span id="lastupdate">Last updated )[^<]*(</span>)',
        rf"\g<1>{day:%B} {day.day}, {day.year}\g<2>",
        html,
    )
    assert (metas, printed) == (1, 1), "expected one DC.Date.Modified and one span#lastupdate"
    return html


def with_text(html: str, old: str, new: str) -> str:
    """The page with the one occurrence of `old` replaced by `new`."""
    assert html.count(old) == 1, f"expected {old!r} once in the page"
    return html.replace(old, new)
