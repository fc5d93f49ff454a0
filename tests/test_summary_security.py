"""summary_html never carries active content, whatever the page's summary holds."""

from __future__ import annotations

import re

import pytest
from lxml import html

from crawler.parsing import parse_health_topic

PAGE = """<!DOCTYPE html>
<html lang="en" id="health_topic"><head><meta charset="utf-8">
<link rel="canonical" href="https://medlineplus.gov/asthma.html">
<meta name="DC.Date.Modified" content="2024-07-19"></head>
<body><div class="page-title"><h1>Asthma</h1></div>
<section id="topsum_section"><div id="topic-summary">
<p>Safe text.</p>{attack}<p>End.</p></div></section>
<footer><span id="lastupdate">Last updated July 19, 2024</span></footer></body></html>"""

ATTACKS = {
    "script": "<script>alert(1)</script>",
    "script-mixed-case": "<ScRiPt>alert(1)</sCrIpT>",
    "img-onerror": '<img src="x.png" onerror="alert(1)">',
    "svg-onload": '<svg onload="alert(1)"><circle r="1"/></svg>',
    "iframe": '<iframe src="https://evil.example/"></iframe>',
    "iframe-srcdoc": '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    "object": '<object data="evil.swf"></object>',
    "embed": '<embed src="evil.swf">',
    "javascript-href": '<a href="javascript:alert(1)">x</a>',
    "javascript-href-case": '<a href="JaVaScRiPt:alert(1)">x</a>',
    "javascript-href-entity": '<a href="&#106;avascript:alert(1)">x</a>',
    "javascript-href-tab": '<a href="java\tscript:alert(1)">x</a>',
    "javascript-href-space": '<a href="  javascript:alert(1)">x</a>',
    "vbscript-href": '<a href="vbscript:msgbox(1)">x</a>',
    "data-href": '<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">x</a>',
    "form-action": '<form action="javascript:alert(1)"><input type="submit"></form>',
    "button-formaction": '<button formaction="javascript:alert(1)">x</button>',
    "style-element": "<style>body{background:url(javascript:alert(1))}</style>",
    "style-attribute": '<p style="background:url(javascript:alert(1))">x</p>',
    "meta-refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "base-href": '<base href="javascript:alert(1)//">',
    "link-import": '<link rel="import" href="evil.html">',
    "details-ontoggle": '<details open ontoggle="alert(1)"><summary>x</summary></details>',
    "math": '<math><mtext><a href="javascript:alert(1)">x</a></mtext></math>',
    "noscript": '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></p></noscript>',
    "template": "<template><script>alert(1)</script></template>",
    "area-href": '<map><area href="javascript:alert(1)"></map>',
}

_EVENT = re.compile(r"^on", re.IGNORECASE)
_ACTIVE = re.compile(r"^\s*(javascript|vbscript|data):", re.IGNORECASE)
_FORBIDDEN = {"script", "style", "iframe", "object", "embed", "form", "button", "meta", "base"}
_FORBIDDEN |= {"link", "svg", "math", "template", "noscript", "frame", "frameset", "applet"}


@pytest.mark.parametrize("attack", [pytest.param(v, id=k) for k, v in ATTACKS.items()])
def test_summary_html_has_no_active_content(attack: str) -> None:
    page = parse_health_topic(PAGE.format(attack=attack), "https://medlineplus.gov/asthma.html")
    # what a browser would build from the stored markup
    fragment = html.fragment_fromstring(page.summary_html, create_parent="div")
    for element in fragment.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag.lower() not in _FORBIDDEN, page.summary_html
        for name, value in element.attrib.items():
            assert not _EVENT.match(name), page.summary_html
            assert name.lower() != "style", page.summary_html
            assert not _ACTIVE.match(re.sub(r"[\x00-\x20]", "", value)), page.summary_html
    assert "alert(" not in page.summary_text
    assert page.summary_text.startswith("Safe text.")
    assert page.summary_text.endswith("End.")
