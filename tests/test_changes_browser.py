"""The HTML change report in a real browser: headless Chromium renders it from a file://
URL (no network), the rendered DOM is checked, the page is measured at 400 px wide (no
horizontal scroll), and a screenshot is kept in test-artifacts/changes-report.png for
people to look at.

Skipped, with the reason, only when no Chromium binary exists (CI installs Debian's
`chromium` in .ci/run).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from datetime import date
from pathlib import Path

import lxml.html
import pytest

from pipelines.archive.keys import VersionKey
from pipelines.archive.pages import copy_name
from pipelines.changes.detection import ChangeSet, compare
from pipelines.changes.reports.html import render_html
from pipelines.notebook import open_archive
from tests import changes_scenario
from tests.archive_factory import at, commit_run
from tests.changes_scenario import AFTER_RUN, BEFORE_RUN, page

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((path for name in _CANDIDATES if (path := shutil.which(name))), None)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary on PATH (apt-get install chromium; .ci/run installs it)",
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


COPIES = "changes_pages"
"""Where `changes --out changes.html` writes the archived copies."""


def rendered(changes: ChangeSet, page_file: Path) -> Path:
    """`changes` rendered into `page_file`, linking an archived copy of every version as
    `changes --out` names them (the files themselves are not needed here)."""
    archived = {
        key: f"{COPIES}/{copy_name(key)}"
        for change in changes.changes
        for version in (change.before, change.after)
        if version is not None
        for key in [
            VersionKey(change.language, change.slug, version.last_updated, version.content_hash)
        ]
    }
    page_file.write_text(render_html(changes, archived), encoding="utf-8")
    return page_file


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    changes_scenario.build(root)
    changes = compare(open_archive(root), BEFORE_RUN, AFTER_RUN)
    return rendered(changes, tmp_path_factory.mktemp("report") / "changes.html")


LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 4
LONG_URL = "https://example.org/" + "/".join(["a-very-long-path-segment"] * 12) + "?q=" + "x" * 80


@pytest.fixture(scope="module")
def long_words(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report whose page text has words and URLs far wider than a phone."""
    root = tmp_path_factory.mktemp("long")
    slug = "pneumonoultramicroscopicsilicovolcanoconiosis-and-related-lung-diseases"
    before = page(slug, title=LONG_WORD, text=f"Short text with {LONG_URL} in it.")
    link = changes_scenario._link("Start Here", 5, LONG_WORD, LONG_URL, LONG_WORD)
    after = page(
        slug,
        title=LONG_WORD,
        text=f"Longer text: {LONG_WORD} {LONG_URL}, and more words.",
        last_updated=date(2026, 11, 20),
        links=[*before.links, link],
        also_called=[LONG_WORD],
    )
    first = commit_run(root, at(date(2026, 11, 1)), [before])
    second = commit_run(root, at(date(2026, 11, 21)), [after])
    changes = compare(open_archive(root), first, second)
    return rendered(changes, tmp_path_factory.mktemp("report") / "changes.html")


def test_the_rendered_dom(report: Path, tmp_path: Path) -> None:
    dom = lxml.html.document_fromstring(chromium(tmp_path, "--dump-dom", report.as_uri()).stdout)
    counts = {
        cell.get("data-kind"): cell.text_content()
        for cell in dom.xpath("//table[@class='counts']//td[@class='count']")
    }
    assert counts == {
        "added": "1",
        "removed": "1",
        "updated": "1",
        "same_date_edit": "2",
        "date_only": "1",
        "total": "6",
    }
    (summary,) = dom.xpath("//dd[@class='field-summary']/p[contains(@class, 'summary-diff')]")
    assert [d.text_content() for d in summary.xpath(".//del")] == ["chronic", "affects"]
    assert [i.text_content() for i in summary.xpath(".//ins")] == [
        "long-term",
        "inflames and narrows",
        "Call 911 if your lips turn <blue> & you cannot breathe.",
    ]
    assert summary.text_content().startswith("Asthma is a chronic long-term disease that")
    bars = {bar.get("data-kind"): bar for bar in dom.xpath("//svg//g[@class='bar']")}
    assert list(bars) == ["added", "removed", "updated", "same_date_edit", "date_only"]
    widths = {kind: float(bar.xpath("./rect/@width")[0]) for kind, bar in bars.items()}
    assert widths["same_date_edit"] == 2 * widths["added"] > 0
    articles = dom.xpath("//article[@class='topic']")
    assert [a.get("id") for a in articles] == [
        "topic-en-flu",
        "topic-en-measles",
        "topic-en-asthma",
        "topic-en-copd",
        "topic-es-diabetes",
        "topic-en-diabetes",
    ]
    sections = dom.xpath("//article[@id='topic-en-asthma']//dd[@class='field-links']/h4/text()")
    assert sections == ["Start Here", "Treatments and Therapies"]
    # Nothing that loads: no script, no external element or attribute, no CSS url().
    assert not dom.xpath("//script | //link | //img | //iframe | //object | //embed")
    assert not dom.xpath("//@src | //@srcset")
    styles = " ".join(dom.xpath("//style/text()"))
    assert "url(" not in styles
    assert "@import" not in styles
    archived = dom.xpath("//a[@class='archived']/@href")
    assert len(archived) == 10  # before and after of 4 changes, one side of added and removed
    assert all(href.startswith(f"{COPIES}/") for href in archived)  # relative, beside it
    others = dom.xpath("//a[not(@class='archived')]/@href")
    assert all(href.startswith(("https://", "#")) for href in others)
    (meta,) = dom.xpath("//article[@id='topic-en-asthma']//p[@class='meta']")
    assert "2024-01-10 (10 January 2024)" in " ".join(meta.text_content().split())


NARROW = 400
"""A phone's width, in CSS pixels."""

_PROBE = """<script>
const width = window.innerWidth;
const wide = [...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > width + 0.5)
  .map((e) => e.tagName.toLowerCase() + (typeof e.className === "string" && e.className
    ? "." + e.className.trim().split(/\\s+/).join(".") : ""));
parent.postMessage({
  scrollWidth: String(document.documentElement.scrollWidth),
  innerWidth: String(width),
  wide: wide.join(" "),
}, "*");
</script>"""
"""Measures the page it ends and posts the figures to the page framing it."""

_FRAME = """<!DOCTYPE html>
<html><body style="margin: 0">
<pre id="layout-probe"></pre>
<script>
addEventListener("message", (event) => {
  Object.assign(document.getElementById("layout-probe").dataset, event.data);
});
</script>
<iframe src="probed.html" width="{width}" height="900" style="border: 0"></iframe>
</body></html>
"""
"""A page showing the probed report in a frame `width` CSS px wide: headless Chromium
has no window narrower than 500 px, a frame has the viewport of any width."""


def measured(report: Path, tmp_path: Path, width: int) -> tuple[int, int, str]:
    """document.documentElement.scrollWidth, window.innerWidth and the elements reaching
    past the right edge, of `report` in a viewport `width` px wide. The report allows no
    script, so a copy gets a measuring one, appended after everything it shows (its
    policy then allows that inline script, nothing more)."""
    text = report.read_text(encoding="utf-8")
    policy = "default-src 'none'; style-src 'unsafe-inline'"
    assert text.count(policy) == 1
    probed = text.replace(policy, f"{policy}; script-src 'unsafe-inline'").replace(
        "</body>", f"{_PROBE}</body>"
    )
    (tmp_path / "probed.html").write_text(probed, encoding="utf-8")
    frame = tmp_path / "frame.html"
    frame.write_text(_FRAME.replace("{width}", str(width)), encoding="utf-8")
    result = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", frame.as_uri())
    (probe,) = lxml.html.document_fromstring(result.stdout).xpath("//pre[@id='layout-probe']")
    return (
        int(probe.get("data-scroll-width")),
        int(probe.get("data-inner-width")),
        probe.get("data-wide", ""),
    )


@pytest.mark.parametrize("which", ["report", "long_words"])
def test_no_horizontal_scroll_at_400_px(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    report: Path = request.getfixturevalue(which)
    scroll_width, inner_width, wide = measured(report, tmp_path, NARROW)
    assert inner_width == NARROW
    assert scroll_width <= inner_width, f"wider than the window: {wide}"


def _png_rows(data: bytes) -> tuple[int, list[bytes]]:
    """Bytes per pixel and the RGB(A) rows of an 8-bit, non-interlaced PNG (Chromium's kind)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks, header = 8, [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8, depth
    assert color in (2, 6), color
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[x] = (line[x] + best) & 0xFF
        rows.append(bytes(line))
        previous = line
    return channels, rows


def test_ins_and_del_are_visibly_highlighted(report: Path, tmp_path: Path) -> None:
    """The report's own stylesheet, in the browser, paints <ins> green and <del> red."""
    dom = lxml.html.document_fromstring(report.read_text(encoding="utf-8"))
    (style,) = dom.xpath("//style/text()")
    sample = tmp_path / "sample.html"
    sample.write_text(
        f"<!DOCTYPE html><html><head><style>{style}</style></head><body style='margin:0'>"
        "<p style='font-size:40px;margin:0'><ins>inserted</ins> <del>deleted</del></p>"
        "</body></html>",
        encoding="utf-8",
    )
    shot = tmp_path / "sample.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=420,60", sample.as_uri())
    channels, rows = _png_rows(shot.read_bytes())
    assert len(rows) == 60
    colours = {tuple(row[x : x + 3]) for row in rows for x in range(0, len(row), channels)}
    assert (0xAC, 0xEE, 0xBB) in colours  # the <ins> background
    assert (0xFF, 0xCE, 0xCB) in colours  # the <del> background


def test_screenshot_is_kept_as_an_artifact(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "changes-report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1280, 2000)
    assert len(data) > 50_000  # a page with text and colour, not a blank one
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "changes-report.png")
    shutil.copyfile(report, ARTIFACTS / "changes-report.html")
