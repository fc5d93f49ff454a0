"""bench/crawl.py still crawls its mirror with every crawler and reports every figure (a
tiny run; the figures themselves are for the bench, not for a test)."""

from __future__ import annotations

import pytest

from tests.bench_runner import ROOT, run_bench

PAGES = ROOT.parent / "shared" / "corpus" / "medlineplus" / "pages"
PAGE_COUNT = 10
"""Pages of the small crawls (the large one has twice as many): enough for every figure."""


def test_the_crawl_benchmark_reports_every_figure() -> None:
    if not any(PAGES.glob("*.html")):
        pytest.skip(f"real MedlinePlus pages not found at {PAGES} (the shared corpus is optional)")
    report = run_bench("crawl.py", "--pages", str(PAGE_COUNT), "--scale", "2")
    runs = report["runs"]
    for name in ("first", "bare", "parse", "again", "bare_again", "large"):
        assert runs[name]["exit"] == 0, (name, runs[name])
        pages = PAGE_COUNT * (2 if name == "large" else 1)
        assert runs[name]["responses"] == pages + 1  # + robots.txt
    assert runs["first"]["observations"] == {"new": PAGE_COUNT}
    assert runs["again"]["observations"] == {"unchanged": PAGE_COUNT}
    assert runs["large"]["observations"] == {"new": 2 * PAGE_COUNT}
    assert runs["bare_again"]["response_bytes"] == runs["again"]["response_bytes"]  # all 304
    for figure in (
        "full_over_bare",
        "bare_parse_over_bare",
        "recrawl_time_ratio",
        "bare_recrawl_over_first",
    ):
        assert report[figure] > 0, figure
    assert 0 < report["recrawl_bytes_ratio"] < 0.05
    assert report["cpu_ms_per_page"]["workers"] > 0
