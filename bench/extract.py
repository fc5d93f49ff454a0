"""Benchmark: parse_health_topic against the bare lxml parse, on the shared corpus.

For every real page in ../shared/corpus/medlineplus/pages, times `parse_health_topic`
and `lxml.html.fromstring` on the same bytes in this process (interleaved, best of
several rounds per page), and prints JSON with the per-page ratio and its median.
Usage: python bench/extract.py [--corpus DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lxml.html

from crawler.parsing import parse_health_topic

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "medlineplus" / "pages"


def _median_seconds(function: Callable[[], object], rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    pages = sorted(args.corpus.glob("*.html"))
    if not pages:
        print(f"error: no pages under {args.corpus}", file=sys.stderr)
        return 2
    per_page = {}
    for page in pages:
        body = page.read_bytes()
        url = f"https://medlineplus.gov/{page.name}"
        parse_health_topic(body, url)  # warm-up: compiled XPaths, parser objects
        lxml.html.fromstring(body)
        lxml_s = _median_seconds(lambda body=body: lxml.html.fromstring(body), args.rounds)
        parse_s = _median_seconds(
            lambda body=body, url=url: parse_health_topic(body, url), args.rounds
        )
        per_page[page.name] = {
            "parse_ms": round(parse_s * 1000, 3),
            "lxml_ms": round(lxml_s * 1000, 3),
            "ratio": round(parse_s / lxml_s, 3),
        }
    ratios = [figures["ratio"] for figures in per_page.values()]
    print(
        json.dumps(
            {
                "benchmark": "extract",
                "pages": len(pages),
                "rounds": args.rounds,
                "median_ratio": round(statistics.median(ratios), 3),
                "max_ratio": max(ratios),
                "median_parse_ms": round(
                    statistics.median(f["parse_ms"] for f in per_page.values()), 3
                ),
                "per_page": per_page,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
