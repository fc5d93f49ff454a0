"""The content hash: a fingerprint of a page's editorial content.

Identical content gives the same hash across runs and parser processes; whitespace in
the markup, the page's own dates, journal-article churn and fetch metadata do not
change it; any change of title, summary text or markup, a link or an organisation does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
from typing import Any

from crawler.parsing.items import HASHED_FIELDS, HealthTopicPage


def normalise_markup(markup: str) -> str:
    """Markup with insignificant whitespace removed: runs collapsed, none between tags.

    Only for hashing: "</p>\n<p>" and "</p><p>" must hash alike. (A space between two
    inline tags is lost too, a change no reader would call editorial.)
    """
    return " ".join(markup.split()).replace("> <", "><")


_ENCODER = json.JSONEncoder(
    sort_keys=True, ensure_ascii=True, separators=(",", ":"), check_circular=False
)
"""The canonical serialisation. The content holds no cycle (fields of one page), so the
circularity check, a set insertion and removal per list, is left out: same bytes."""


def content_hash(page: HealthTopicPage) -> str:
    """sha256 (hex) of the hashed fields of `page`, serialised canonically.

    Nested parts (links, trials...) are serialised as tuples of their field values in
    declaration order: field names add nothing to a fingerprint, and tuples are built in C.
    """
    content = {name: _plain(getattr(page, name)) for name in HASHED_FIELDS}
    content["summary_html"] = normalise_markup(page.summary_html)
    encoded = _ENCODER.encode(content)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        if value and _is_item_part(value[0]):
            values = _field_values(type(value[0]))
            return [values(part) for part in value]
        return value
    if _is_item_part(value):
        return _field_values(type(value))(value)
    return value


def _is_item_part(value: object) -> bool:
    """True for the nested item dataclasses (TopicLink, Institute...)."""
    return hasattr(type(value), "__dataclass_fields__")


_GETTERS: dict[type, operator.attrgetter[Any]] = {}


def _field_values(cls: type) -> operator.attrgetter[Any]:
    """A getter returning the tuple of `cls`'s field values, in declaration order."""
    getter = _GETTERS.get(cls)
    if getter is None:
        names = (field.name for field in dataclasses.fields(cls))
        getter = _GETTERS[cls] = operator.attrgetter(*names)
    return getter
