"""Dates as MedlinePlus prints them, in English and Spanish.

Seen forms: "July 19, 2024" (2025 template), "29 January 2020" (2020 template) and
"19 de julio de 2024" (Spanish pages).
"""

from __future__ import annotations

import re
from datetime import date

MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        [
            ("january", "enero"),
            ("february", "febrero"),
            ("march", "marzo"),
            ("april", "abril"),
            ("may", "mayo"),
            ("june", "junio"),
            ("july", "julio"),
            ("august", "agosto"),
            ("september", "septiembre", "setiembre"),
            ("october", "octubre"),
            ("november", "noviembre"),
            ("december", "diciembre"),
        ],
        start=1,
    )
    for name in names
}

_MONTH = "(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + ")"
_DATE_RE = re.compile(
    rf"{_MONTH}\s+(?P<day>\d{{1,2}}),?\s+(?P<year>\d{{4}})"  # July 19, 2024
    rf"|(?P<day2>\d{{1,2}})\s+(?:de\s+)?{_MONTH.replace('month', 'month2')}"
    r",?\s+(?:de\s+|del\s+)?(?P<year2>\d{4})",  # 29 January 2020 / 19 de julio de 2024
    re.IGNORECASE,
)
_ISO_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")

UPDATED_MARKERS = ("last updated", "actualizad", "actualización", "actualizacion")
REVIEWED_MARKERS = ("last reviewed", "revisado", "revisión", "revision")
_MARKER_WINDOW = 80
"""How far after a marker ("last updated") its date may start, in characters."""


def parse_written_date(text: str) -> date | None:
    """The first written date in `text` ("July 19, 2024", "19 de julio de 2024"), or None."""
    for match in _DATE_RE.finditer(text):
        month_name = match.group("month") or match.group("month2")
        day = match.group("day") or match.group("day2")
        year = match.group("year") or match.group("year2")
        try:
            return date(int(year), MONTHS[month_name.lower()], int(day))
        except ValueError:
            continue  # "February 30": not a date, look further
    return None


def parse_iso_date(text: str | None) -> date | None:
    """A `YYYY-MM-DD` date as found in Dublin Core metas, or None."""
    if not text:
        return None
    match = _ISO_RE.search(text)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def find_marked_date(text: str, markers: tuple[str, ...]) -> date | None:
    """The date that follows one of `markers` ("Page last updated on ...") in `text`."""
    lowered = text.lower()
    for marker in markers:
        start = lowered.find(marker)
        while start != -1:
            window = text[start + len(marker) : start + len(marker) + _MARKER_WINDOW]
            found = parse_written_date(window)
            if found is not None:
                return found
            start = lowered.find(marker, start + 1)
    return None
