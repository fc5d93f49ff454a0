"""Text and markup helpers for lxml elements: whitespace, plain-text blocks, the summary's
allowlist."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import cast

import nh3
from lxml import etree

HtmlElement = etree._Element
"""Pages are parsed with lxml's plain HTML parser: its elements skip lxml.html's
per-element class lookup, which is most of lxml.html's overhead."""


def collapse(text: str | None) -> str:
    """Collapse every whitespace run (newlines, tabs, no-break spaces) to one space and trim."""
    return " ".join(text.split()) if text else ""


def texts(element: HtmlElement) -> Iterator[str]:
    """The element's text nodes in document order (str: pages are decoded before parsing)."""
    return cast("Iterator[str]", element.itertext())


def text_of(element: HtmlElement) -> str:
    """The element's whole text content, whitespace collapsed."""
    if len(element) == 0:  # no children: skip building the itertext iterator
        return collapse(element.text)
    return collapse("".join(texts(element)))


_BLOCK_BREAK = "\ue000"
"""A private-use character marking block boundaries while the text is split."""
_BLOCK_TAG = re.compile(
    r"</?(?:p|li|h[1-6]|dt|dd|pre|ul|ol|dl|div|section|blockquote|table|tbody|tr|td|th|br)\b[^>]*>",
    re.IGNORECASE,
)
_ANY_TAG = re.compile(r"<[^>]*>")


def markup_text_blocks(markup: str) -> list[str]:
    """Plain text of serialised (sanitised) HTML as blocks: one per p, li, h3... in order.

    Inline markup (a, em, strong) stays inside its block; text that sits directly in a
    container (no p around it) becomes a block of its own; br breaks a block. Works on
    the serialised string: two regular expressions beat a Python walk over the tree.
    """
    text = html.unescape(_ANY_TAG.sub("", _BLOCK_TAG.sub(_BLOCK_BREAK, markup)))
    return [line for line in (collapse(part) for part in text.split(_BLOCK_BREAK)) if line]


SUMMARY_TAGS = frozenset(
    {
        *("p", "br", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd"),
        *("blockquote", "div", "span", "hr", "table", "caption", "thead", "tbody", "tfoot"),
        *("tr", "th", "td", "a", "img", "strong", "em", "b", "i", "u", "s", "small", "sub"),
        *("sup", "abbr", "cite", "q", "code"),
    }
)
"""The elements kept in `summary_html`; any other is unwrapped to its content (MedlinePlus'
own `<topic>` and `<ph3>`, a stray `<font>`), except the `SUMMARY_DROPPED` ones."""
SUMMARY_ATTRIBUTES: dict[str, set[str]] = {"a": {"href", "tid"}, "img": {"src", "alt"}}
"""The attributes kept in `summary_html`: every other one (class, style, on*, ...) goes.

`tid` (MedlinePlus' id of the linked topic) stays on links: English summaries carry it
(leukemia.html's), and dropping it would change the content hash of every stored page
whose summary has one, recording an edit nobody made."""
SUMMARY_DROPPED = frozenset(
    {
        *("script", "style", "iframe", "frame", "frameset", "object", "embed", "applet"),
        *("form", "button", "textarea", "select", "svg", "math", "template", "noscript"),
    }
)
"""Elements removed together with their content."""
SUMMARY_URL_SCHEMES = frozenset({"http", "https", "mailto"})
"""Link schemes kept; a link or image with any other (javascript:, data:...) loses its URL."""

_SUMMARY_CLEANER = nh3.Cleaner(
    tags=SUMMARY_TAGS,
    clean_content_tags=SUMMARY_DROPPED,
    attributes=SUMMARY_ATTRIBUTES,
    url_schemes=SUMMARY_URL_SCHEMES,
    link_rel=None,
)


def clean_markup(markup: str) -> str:
    """`markup` with only the allowlisted elements, attributes and URL schemes kept
    (ammonia, through nh3). On the corpus and fixture pages the result is, byte for byte,
    what lxml serialises, so keeping the allowlist costs no stored version its hash."""
    return _SUMMARY_CLEANER.clean(markup)


def make_links_absolute(element: HtmlElement, absolute: Callable[[str], str]) -> None:
    """Every link and image URL under `element` made absolute with `absolute`, in place."""
    for node in element.iter("a", "img"):
        name = "href" if node.tag == "a" else "src"
        value = node.get(name)
        if value is not None:
            node.set(name, absolute(value))


def inner_html(element: HtmlElement) -> str:
    """The serialised children of `element` (its inner HTML), trimmed.

    Serialises the element once and cuts its own start and end tags off: one C call
    instead of one per child.
    """
    tail, element.tail = element.tail, None
    try:
        outer = etree.tostring(element, encoding="unicode", method="html")
    finally:
        element.tail = tail
    start = outer.find(">") + 1
    end = outer.rfind("</")
    return outer[start:end].strip() if end >= start else ""
