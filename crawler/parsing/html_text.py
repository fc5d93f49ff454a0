"""Text and markup helpers for lxml elements: whitespace, plain-text blocks, sanitising."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import cast

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


_ACTIVE_CONTAINERS = (
    "script",
    "style",
    "iframe",
    "frameset",
    "object",
    "applet",
    "form",
    "button",
    "textarea",
    "select",
    "svg",
    "math",
    "template",
    "noscript",
)
"""Removed with everything inside them."""
_ACTIVE_VOIDS = ("embed", "frame", "input", "link", "meta", "base", "param", "source", "track")
"""Removed, keeping what follows: libxml2 may nest the next elements inside these
void elements (`<embed><p>...</p></embed>`), and that text belongs to the summary."""
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "background"})
_ACTIVE_SCHEME = re.compile(r"^(?:javascript|vbscript|data):", re.IGNORECASE)
_IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20\x7f]+")
"""Browsers skip control characters and spaces inside a scheme ("java\tscript:")."""


def sanitise(element: HtmlElement, absolute: Callable[[str], str]) -> None:
    """Strip active content from `element` in place and make its URLs absolute.

    Removes script-like elements (with their content), event-handler and style
    attributes, and any URL with a javascript:, vbscript: or data: scheme.
    """
    etree.strip_elements(element, *_ACTIVE_CONTAINERS, with_tail=False)
    etree.strip_tags(element, *_ACTIVE_VOIDS)
    for node in element.iter():
        names = cast("list[str]", node.keys())
        if not names:  # most summary elements (p, li) carry no attribute at all
            continue
        for name in names:
            lowered = name.lower()
            if lowered.startswith("on") or lowered == "style":
                del node.attrib[name]
            elif lowered in _URL_ATTRIBUTES:
                value = node.get(name) or ""
                if _ACTIVE_SCHEME.match(_IGNORED_IN_SCHEME.sub("", value)):
                    del node.attrib[name]
                else:
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
