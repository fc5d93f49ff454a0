"""Text and markup helpers for lxml elements: whitespace, plain-text blocks, sanitising."""

from __future__ import annotations

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


_BLOCKS = frozenset({"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "pre"})
_CONTAINERS = frozenset({"ul", "ol", "dl", "div", "section", "blockquote", "table", "tbody"})
_BLOCK_TAGS = _BLOCKS | _CONTAINERS | {"tr", "td", "th"}


def text_blocks(element: HtmlElement) -> list[str]:
    """Plain text of `element` as blocks: one entry per p, li, h3... in document order.

    Inline markup (a, em, strong) stays inside its block; text that sits directly in a
    container (no p around it) becomes a block of its own.
    """
    blocks: list[str] = []
    _collect_blocks(element, blocks)
    return [block for block in blocks if block]


def _collect_blocks(container: HtmlElement, blocks: list[str]) -> None:
    loose: list[str] = [container.text or ""]
    for child in container:
        tag = child.tag
        if tag in _BLOCK_TAGS:
            blocks.append(collapse("".join(loose)))
            loose = []
            if tag in _CONTAINERS or any(grandchild.tag in _BLOCK_TAGS for grandchild in child):
                _collect_blocks(child, blocks)  # a list, or an li holding a nested list
            else:
                blocks.append(text_of(child))
        else:
            loose.extend(texts(child))
        loose.append(child.tail or "")
    blocks.append(collapse("".join(loose)))


_DANGEROUS_TAGS = (
    "script",
    "style",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "link",
    "meta",
    "base",
    "svg",
    "math",
    "template",
    "noscript",
)
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "background"})
_ACTIVE_SCHEME = re.compile(r"^(?:javascript|vbscript|data):", re.IGNORECASE)
_IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20\x7f]+")
"""Browsers skip control characters and spaces inside a scheme ("java\tscript:")."""


def sanitise(element: HtmlElement, absolute: Callable[[str], str]) -> None:
    """Strip active content from `element` in place and make its URLs absolute.

    Removes script-like elements (with their content), event-handler and style
    attributes, and any URL with a javascript:, vbscript: or data: scheme.
    """
    etree.strip_elements(element, *_DANGEROUS_TAGS, with_tail=False)
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
