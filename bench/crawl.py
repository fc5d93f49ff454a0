"""Benchmark: whole crawls of a local mirror of N topic pages on 127.0.0.1.

The mirror serves the real pages of ../shared/corpus/medlineplus/pages replicated under
distinct slugs (each copy's canonical URL rewritten), with ETag / Last-Modified / 304,
from a separate process. Reported, in one run, as ratios measured in this process:

* full-pipeline pages/s (`medlineplus-archive crawl`) against a bare Scrapy spider that
  only downloads the same URLs with the same download settings and Scrapy components
  (the ceiling);
* the same bare spider parsing each page with lxml and doing nothing else, against the
  bare one: how much of the ceiling is left to any tool that parses the pages it fetches;
* the CPU each spends per page: the bare spider's, the crawl process's and its
  extraction workers' (their ratio is the ceiling ratio a machine reaches when the
  workers and the mirror have cores of their own);
* an unchanged re-crawl's time and bytes received relative to the first crawl, and the
  time of the bare spider sending the same conditional requests (Scrapy's own floor);
* peak RSS of the crawl process for 10x the pages relative to the N-page one.

Every crawl is timed from its process's start (imports included).

Usage: python bench/crawl.py [--pages 2000] [--scale 10] [--concurrency 8] [--workers 1]
Prints JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import re
import subprocess
import sys
import tempfile
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "medlineplus" / "pages"
LAST_MODIFIED = formatdate(1_700_000_000, usegmt=True)
_COPY = re.compile(r"^/t(\d+)-([a-z0-9]+)\.html$")

# --- the mirror ---------------------------------------------------------------------------


def _pages(corpus: Path) -> dict[str, bytes]:
    return {path.stem: path.read_bytes() for path in sorted(corpus.glob("*.html"))}


class _Mirror(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pages: ClassVar[dict[str, bytes]] = {}

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            self._send(200, b"User-agent: *\nDisallow: /ency/\n", "text/plain")
            return
        match = _COPY.match(self.path)
        page = self.pages.get(match[2]) if match else None
        if match is None or page is None:
            self._send(404, b"not found", "text/plain")
            return
        etag = '"' + hashlib.sha1(self.path.encode()).hexdigest() + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        copy = f"t{match[1]}-{match[2]}"
        body = page.replace(f"/{match[2]}.html".encode(), f"/{copy}.html".encode())
        self._send(200, body, "text/html; charset=utf-8", {"ETag": etag})

    def _send(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", LAST_MODIFIED)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _serve(corpus: str, port_queue: Any) -> None:
    _Mirror.pages = _pages(Path(corpus))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Mirror)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _url_file(directory: Path, slugs: list[str], count: int) -> Path:
    path = directory / f"urls-{count}.txt"
    lines = [f"https://medlineplus.gov/t{n:06d}-{slugs[n % len(slugs)]}.html" for n in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the crawls ----------------------------------------------------------------------------

_MEASURED = """
import json, resource, sys, time
started = time.perf_counter()
from crawler.commands.cli import main
code = main(sys.argv[2:])
own, workers = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
json.dump({"exit": code, "seconds": time.perf_counter() - started,
           "cpu_seconds": own.ru_utime + own.ru_stime,
           "worker_cpu_seconds": workers.ru_utime + workers.ru_stime,
           "max_rss_kb": own.ru_maxrss},
          open(sys.argv[1], "w"))
"""

_BARE = """
import json, resource, sys, time
started = time.perf_counter()
import hashlib
import lxml.html
from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess

MODE = sys.argv[5]

class Bare(Spider):
    name = "bare"
    async def start(self):
        for line in open(sys.argv[3]):
            path = line.strip().removeprefix("https://medlineplus.gov")
            if MODE == "revalidate":  # with the ETag the mirror gave the page (see _Mirror)
                etag = '"' + hashlib.sha1(path.encode()).hexdigest() + '"'
                yield Request(sys.argv[2] + path, callback=self.parse,
                              headers={"If-None-Match": etag},
                              meta={"handle_httpstatus_list": [304]})
            else:
                yield Request(sys.argv[2] + path, callback=self.parse)
    def parse(self, response):
        if MODE == "parse":
            lxml.html.document_fromstring(response.body)

process = CrawlerProcess(json.loads(sys.argv[4]))
crawler = process.create_crawler(Bare)
process.crawl(crawler)
process.start()
stats = crawler.stats.get_stats()
own = resource.getrusage(resource.RUSAGE_SELF)
json.dump({"exit": 0, "seconds": time.perf_counter() - started,
           "cpu_seconds": own.ru_utime + own.ru_stime, "max_rss_kb": own.ru_maxrss,
           "response_bytes": stats.get("downloader/response_bytes", 0),
           "responses": stats.get("response_received_count", 0)},
          open(sys.argv[1], "w"))
"""


_LEAN = (
    "CONCURRENT_ITEMS",
    "LOG_FORMATTER",
    "METAREFRESH_ENABLED",
    "REMOTE_CONTROL_ENABLED",
    "COOKIES_ENABLED",
    "TELNETCONSOLE_ENABLED",
    "SPIDER_MIDDLEWARES",
)
"""The project's settings that make Scrapy itself cheaper (components off, fewer tasks per
response): the bare spider gets them too, so that the ceiling is the leanest Scrapy
download, not Scrapy's defaults."""


def _download_settings(concurrency: int) -> dict[str, Any]:
    """What both crawls share: no delay, no AutoThrottle, the same concurrency, and the same
    Scrapy components switched off (see _LEAN)."""
    from crawler import settings as project

    return {
        **{name: getattr(project, name) for name in _LEAN},
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "ROBOTSTXT_OBEY": True,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
    }


def _run(script: str, result: Path, *arguments: str) -> dict[str, Any]:
    subprocess.run([sys.executable, "-c", script, str(result), *arguments], check=True)
    figures: dict[str, Any] = json.loads(result.read_text())
    return figures


def _full_crawl(
    work: Path,
    base_url: str,
    urls: Path,
    archive: Path,
    concurrency: int,
    name: str,
    workers: int,
) -> dict[str, Any]:
    stats_file = work / f"{name}-stats.json"
    settings = _download_settings(concurrency)
    overrides = [
        f"{key}={value}" for key, value in settings.items() if key not in (*_LEAN, "LOG_LEVEL")
    ]
    arguments = ["crawl", "--base-url", base_url, "--urls", str(urls), "--archive", str(archive)]
    arguments += ["--delay", "0", "--concurrency", str(concurrency), "--log-level", "WARNING"]
    arguments += ["--stats-json", str(stats_file), "-s", "PROGRESS_INTERVAL=0"]
    arguments += ["-s", f"MEDLINEPLUS_PARSE_WORKERS={workers}"]
    for override in overrides:
        arguments += ["-s", override]
    figures = _run(_MEASURED, work / f"{name}.json", *arguments)
    stats = json.loads(stats_file.read_text())
    figures["response_bytes"] = stats.get("downloader/response_bytes", 0)
    figures["responses"] = stats.get("response_received_count", 0)
    figures["observations"] = {
        key.removeprefix("archive/observations/"): value
        for key, value in stats.items()
        if key.startswith("archive/observations/")
    }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--scale", type=int, default=10, help="the large crawl is N x pages")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="MEDLINEPLUS_PARSE_WORKERS")
    args = parser.parse_args()
    pages = _pages(args.corpus)
    if not pages:
        print(f"error: no pages under {args.corpus}", file=sys.stderr)
        return 2
    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(str(args.corpus), ports), daemon=True)
    server.start()
    try:
        base_url = f"http://127.0.0.1:{ports.get(timeout=30)}"
        with tempfile.TemporaryDirectory(prefix="bench-crawl-") as directory:
            work = Path(directory)
            slugs = sorted(pages)
            small = _url_file(work, slugs, args.pages)
            large = _url_file(work, slugs, args.pages * args.scale)
            first = _full_crawl(
                work, base_url, small, work / "a", args.concurrency, "first", args.workers
            )
            download = json.dumps(_download_settings(args.concurrency))
            bare = _run(_BARE, work / "bare.json", base_url, str(small), download, "")
            parsing = _run(_BARE, work / "parse.json", base_url, str(small), download, "parse")
            bare_again = _run(
                _BARE, work / "revalidate.json", base_url, str(small), download, "revalidate"
            )
            again = _full_crawl(
                work, base_url, small, work / "a", args.concurrency, "again", args.workers
            )
            big = _full_crawl(
                work, base_url, large, work / "b", args.concurrency, "large", args.workers
            )
    finally:
        server.terminate()
        server.join()
    result = {
        "benchmark": "crawl",
        "pages": args.pages,
        "concurrency": args.concurrency,
        "full_pages_per_s": round(args.pages / first["seconds"], 1),
        "bare_pages_per_s": round(args.pages / bare["seconds"], 1),
        "full_over_bare": round(bare["seconds"] / first["seconds"], 3),
        "bare_parse_over_bare": round(bare["seconds"] / parsing["seconds"], 3),
        "cpu_ms_per_page": {
            "bare": round(bare["cpu_seconds"] / args.pages * 1000, 3),
            "bare_parse": round(parsing["cpu_seconds"] / args.pages * 1000, 3),
            "crawl_process": round(first["cpu_seconds"] / args.pages * 1000, 3),
            "workers": round(first["worker_cpu_seconds"] / args.pages * 1000, 3),
        },
        "crawl_process_over_bare_cpu": round(bare["cpu_seconds"] / first["cpu_seconds"], 3),
        "recrawl_time_ratio": round(again["seconds"] / first["seconds"], 3),
        "recrawl_bytes_ratio": round(again["response_bytes"] / first["response_bytes"], 4),
        "bare_recrawl_over_first": round(bare_again["seconds"] / first["seconds"], 3),
        "large_pages": args.pages * args.scale,
        "rss_mb": round(first["max_rss_kb"] / 1024, 1),
        "large_rss_mb": round(big["max_rss_kb"] / 1024, 1),
        "large_rss_ratio": round(big["max_rss_kb"] / first["max_rss_kb"], 3),
        "runs": {
            "first": first,
            "bare": bare,
            "parse": parsing,
            "again": again,
            "bare_again": bare_again,
            "large": big,
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
