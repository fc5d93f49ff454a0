"""A local HTTP server for tests: serves a directory as if it were medlineplus.gov.

Bound to 127.0.0.1 on a free port, run in a background thread, quiet. By default it
serves the fixture site (tests/fixtures/site, see its README.md) at the server root, so
``server.url("/asthma.html")`` stands for https://medlineplus.gov/asthma.html.

What a test can do with it:

* read the request log (`requests`, `requests_for`, `paths`, `clear_log`): method, path,
  status and request headers of every request, in arrival order;
* rely on real validators: every file is served with a strong ``ETag`` (quoted sha1 of
  its bytes) and a ``Last-Modified`` date; ``If-None-Match`` / ``If-Modified-Since``
  get a ``304 Not Modified`` without a body;
* script answers for one path (`script`): ``[(503, {"Retry-After": "1"}, b""),
  (200, {}, None)]`` answers 503 once, then serves the file as usual;
* change the site while it runs: `replace_file` (an edited page; ``None`` = 404) or
  `set_root` (another copy of the whole site, e.g. one made with `copy_site`);
* answer slowly (`slow_down`), to keep a crawl running long enough to interrupt it;
* inject faults, one switch per fault (see "Faults" below): `error_burst` (500/503),
  `rate_limit` (429 + Retry-After), `too_slow`, `reset_connection`, `truncate_body`,
  `serve_malformed`, `redirect_off_site`, `redirect_loop`, `serve_oversized`,
  `serve_without` (a layout that lost a required field), `mislabel_charset` and
  `disallow` (robots.txt).

HTTP/1.0 (one request per connection) keeps shutdown clean: no idle keep-alive
connection outlives a test, so no ResourceWarning reaches pytest's ``error`` filter.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal, Self
from urllib.parse import unquote, urlsplit

SITE_ROOT = Path(__file__).resolve().parent / "fixtures" / "site"
"""The fixture site: a static look-alike of medlineplus.gov (see its README.md)."""

SITE_LAST_MODIFIED = datetime(2025, 11, 4, 12, 0, 0, tzinfo=UTC)
"""Last-Modified of every served file unless told otherwise (fixed: tests stay repeatable)."""

LIVE_ORIGIN = "https://medlineplus.gov"

CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"

ScriptedResponse = tuple[int, Mapping[str, str], bytes | None]
"""(status, extra headers, body). Body None: serve the path as usual (its own status,
200, 304 or 404), adding the headers."""

ConnectionFault = Literal["reset", "truncate", "redirect_loop"]
"""Faults the handler acts out itself (they cannot be expressed as a scripted answer):
"reset" closes the socket with an RST and no answer; "truncate" promises a
Content-Length twice the bytes it sends, then closes; "redirect_loop" answers 302 to the
path's twin (``?loop``) and the twin back to the path, forever."""

MALFORMED_HTML = (
    b"\x00\xff\xfe<html id=health_topic><head><title>broken</ti<<<div><h1>\x81\x8d"
    b'<p><span class="\x00\x00 <table><tr><td>unclosed <b><i><u> \xc3\x28 \xa0\xa1'
)
"""Garbage bytes, invalid UTF-8 and unclosed tags: what a broken proxy or CDN might send."""

REQUIRED_PARTS: dict[str, str] = {
    "title": r"<h1\b.*?</h1>",
    "last_updated": r'<span id="lastupdate">.*?</span>|<meta name="DC\.Date\.Modified"[^>]*>',
}
"""Regexes of what `serve_without` removes to make a page lose a required field."""

_NOT_FOUND_BODY = b"<!DOCTYPE html>\n<html><body><h1>404 Not Found</h1></body></html>\n"
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server answered."""

    method: str
    path: str
    """The request path as sent, without the query string (not percent-decoded)."""
    query: str
    """The query string ("" when none)."""
    status: int
    """The status the server answered with."""
    headers: Mapping[str, str]
    """Request headers, names lower-cased (repeated headers joined with ", ")."""
    at: float
    """`time.monotonic()` when the request arrived (to check delays between requests)."""
    scripted: bool
    """True when a scripted response answered it."""

    def header(self, name: str) -> str | None:
        """A request header by case-insensitive name, None when absent."""
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class _Resource:
    body: bytes
    last_modified: datetime
    content_type: str

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body, usedforsecurity=False).hexdigest() + '"'


def content_type_for(path: str) -> str:
    """The Content-Type the server sends for `path` (by its extension)."""
    return CONTENT_TYPES.get(Path(path).suffix.lower(), DEFAULT_CONTENT_TYPE)


def copy_site(destination: Path, source: Path = SITE_ROOT) -> Path:
    """Copy the fixture site to `destination` (e.g. under tmp_path) to edit it there."""
    shutil.copytree(source, destination)
    return destination


class SiteServer:
    """The server; use as a context manager or call `start` and `stop`."""

    def __init__(
        self, root: Path = SITE_ROOT, *, last_modified: datetime | None = SITE_LAST_MODIFIED
    ) -> None:
        """`last_modified`: the Last-Modified date of every file; None uses file mtimes."""
        self._lock = threading.Lock()
        self._root = Path(root)
        self._last_modified = last_modified
        self._overrides: dict[str, _Resource | None] = {}
        self._scripts: dict[str, deque[ScriptedResponse]] = {}
        self._delays: dict[str | None, float] = {}
        self._connection_faults: dict[str, tuple[ConnectionFault, int | None]] = {}
        self._extra_headers: dict[str, dict[str, str]] = {}
        self._log: list[LoggedRequest] = []
        self._edits = 0
        self.errors: list[BaseException] = []
        """Exceptions raised while handling requests (kept instead of printed)."""
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("SiteServer already started")
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.site = self
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"site-server-{httpd.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._httpd, self._thread = httpd, thread
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and wait for every handler thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.shutdown()
        thread.join()
        httpd.server_close()
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("SiteServer not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        """The server's URL for a site path: url("/asthma.html")."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def mirror_url(self, live_url: str) -> str:
        """https://medlineplus.gov/x.html -> http://127.0.0.1:<port>/x.html."""
        parts = urlsplit(live_url)
        return self.url(parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    # ---------------------------------------------------------------- site content

    @property
    def root(self) -> Path:
        with self._lock:
            return self._root

    def set_root(self, root: Path, *, last_modified: datetime | None = None) -> None:
        """Serve another directory from now on, forgetting `replace_file` overrides.

        Its files get `last_modified`, by default one day after the previous root's date
        (a new version of the site is newer), or their mtimes when the server uses mtimes.
        """
        with self._lock:
            self._root = Path(root)
            self._overrides.clear()
            if last_modified is not None:
                self._last_modified = last_modified
            elif self._last_modified is not None:
                self._last_modified += timedelta(days=1)

    def replace_file(
        self, path: str, body: bytes | str | None, *, last_modified: datetime | None = None
    ) -> None:
        """Serve `body` at `path` from now on; None makes the path answer 404.

        Last-Modified defaults to one hour after the newest date served so far, so an
        edited page is "modified since" its previous version.
        """
        if isinstance(body, str):
            body = body.encode("utf-8")
        with self._lock:
            if body is None:
                self._overrides[path] = None
                return
            self._edits += 1
            if last_modified is None:
                base = self._last_modified or datetime.now(UTC).replace(microsecond=0)
                last_modified = base + timedelta(hours=self._edits)
            self._overrides[path] = _Resource(body, last_modified, content_type_for(path))

    def restore_file(self, path: str) -> None:
        """Undo `replace_file` for `path`: serve the file under the root again."""
        with self._lock:
            self._overrides.pop(path, None)

    def file_bytes(self, path: str) -> bytes:
        """What a GET of `path` would return now (override or file); KeyError when 404."""
        resource = self._resource(path)
        if not isinstance(resource, _Resource):
            raise KeyError(path)
        return resource.body

    # ---------------------------------------------------------------- scripted answers

    def script(self, path: str, responses: Iterable[ScriptedResponse]) -> None:
        """Answer the next requests for `path` with `responses`, in order, then as usual.

        Each response is (status, headers, body); body None serves the path normally
        (conditional requests included) with the headers added. Replaces any earlier
        script for `path`. Example: ``[(429, {"Retry-After": "2"}, b"slow down")]``.
        """
        with self._lock:
            self._scripts[path] = deque(responses)

    def pending_scripts(self) -> dict[str, int]:
        """Scripted responses not used yet, per path (empty when all were consumed)."""
        with self._lock:
            return {path: len(queue) for path, queue in self._scripts.items() if queue}

    # ---------------------------------------------------------------- slow answers

    def slow_down(self, seconds: float, paths: Iterable[str] | None = None) -> None:
        """Wait `seconds` before answering each request for `paths` (every path when None).

        For tests that need a crawl still running, e.g. to kill it midway; 0 undoes it.
        A path's own delay wins over the every-path one.
        """
        with self._lock:
            for path in [None] if paths is None else paths:
                self._delays[path] = seconds

    def _delay_for(self, path: str) -> float:
        with self._lock:
            return self._delays.get(path, self._delays.get(None, 0.0))

    # ---------------------------------------------------------------- faults

    def error_burst(
        self, path: str, status: int = 503, count: int = 3, retry_after: str | None = None
    ) -> None:
        """Answer the next `count` requests for `path` with `status` (a 5xx burst)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.script(path, [(status, headers, b"<html><body>server error</body></html>")] * count)

    def rate_limit(self, path: str, retry_after: str = "1", count: int = 1) -> None:
        """Answer the next `count` requests for `path` 429 Too Many Requests + Retry-After."""
        self.script(path, [(429, {"Retry-After": retry_after}, b"slow down")] * count)

    def too_slow(self, path: str, seconds: float) -> None:
        """Answer `path` only after `seconds` (set it above the client's download timeout)."""
        self.slow_down(seconds, [path])

    def reset_connection(self, path: str, count: int | None = None) -> None:
        """Close the connection of the next `count` requests for `path` (every one when
        None) with an RST (SO_LINGER 0) and no answer at all."""
        with self._lock:
            self._connection_faults[path] = ("reset", count)

    def truncate_body(self, path: str, count: int | None = None) -> None:
        """Send only half of `path`'s body, with a Content-Length for all of it, then close."""
        with self._lock:
            self._connection_faults[path] = ("truncate", count)

    def redirect_loop(self, path: str) -> None:
        """`path` redirects (302) to ``path?loop``, which redirects back to `path`, forever."""
        with self._lock:
            self._connection_faults[path] = ("redirect_loop", None)

    def redirect_off_site(self, path: str, location: str = "http://example.invalid/x.html") -> None:
        """Every request for `path` is redirected (302) to `location`, another host."""
        self.script(path, [(302, {"Location": location}, b"")] * 100)

    def serve_malformed(self, path: str, body: bytes = MALFORMED_HTML) -> None:
        """Serve garbage bytes and unclosed tags at `path`, as text/html."""
        self.replace_file(path, body)

    def serve_oversized(self, path: str, size: int) -> None:
        """Serve `path` padded with an HTML comment to `size` bytes (above DOWNLOAD_MAXSIZE)."""
        body = self.file_bytes(path)
        padding = max(0, size - len(body))
        self.replace_file(path, body + b"<!--" + b"x" * padding + b"-->")

    def serve_without(self, path: str, *fields: str) -> None:
        """Serve `path` with its required `fields` removed (keys of REQUIRED_PARTS):
        the layout drifted and the parser cannot find them."""
        html = self.file_bytes(path).decode("utf-8")
        for name in fields:
            html, removed = re.subn(REQUIRED_PARTS[name], "", html, flags=re.DOTALL)
            if not removed:
                raise ValueError(f"{path} has no {name} to remove")
        self.replace_file(path, html)

    def mislabel_charset(self, path: str, charset: str = "ISO-8859-1") -> None:
        """Send `path` as ``text/html; charset=<charset>``, its body unchanged."""
        with self._lock:
            self._extra_headers[path] = {"Content-Type": f"text/html; charset={charset}"}

    def disallow(self, *paths: str) -> None:
        """Serve a robots.txt (no Crawl-delay) that disallows `paths` and the usual ones."""
        rules = "".join(f"Disallow: {path}\n" for path in paths)
        robots = f"User-agent: *\n{rules}Disallow: /privatetopic.html\nDisallow: /ency/\n"
        self.replace_file("/robots.txt", robots)

    def _take_connection_fault(self, path: str) -> ConnectionFault | None:
        with self._lock:
            fault = self._connection_faults.get(path)
            if fault is None and path.endswith("?loop"):
                fault = self._connection_faults.get(path.removesuffix("?loop"))
            if fault is None:
                return None
            kind, left = fault
            if left is not None:
                if left <= 0:
                    return None
                self._connection_faults[path] = (kind, left - 1)
            return kind

    def _headers_for(self, path: str) -> dict[str, str]:
        with self._lock:
            return dict(self._extra_headers.get(path, {}))

    # ---------------------------------------------------------------- request log

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request answered so far (a copy), oldest first."""
        with self._lock:
            return list(self._log)

    def requests_for(self, path: str) -> list[LoggedRequest]:
        return [request for request in self.requests if request.path == path]

    def paths(self, method: str | None = "GET") -> list[str]:
        """Requested paths in order (only `method`'s; None for every method)."""
        return [r.path for r in self.requests if method is None or r.method == method]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ---------------------------------------------------------------- internals

    def _next_script(self, path: str) -> ScriptedResponse | None:
        with self._lock:
            queue = self._scripts.get(path)
            return queue.popleft() if queue else None

    def _record(self, request: LoggedRequest) -> None:
        with self._lock:
            self._log.append(request)

    def _resource(self, path: str) -> _Resource | str | None:
        """The resource at `path`, a redirect target (str) for a directory, or None (404)."""
        with self._lock:
            if path in self._overrides:
                return self._overrides[path]
            root, fixed = self._root, self._last_modified
        relative = unquote(path).lstrip("/")
        parts = [part for part in relative.split("/") if part]
        if any(part in (".", "..") or "\\" in part for part in parts):
            return None
        target = root.joinpath(*parts)
        if target.is_dir():
            if not path.endswith("/"):
                return path + "/"
            target = target / "index.html"
        if not target.is_file():
            return None
        body = target.read_bytes()
        if fixed is None:
            modified = datetime.fromtimestamp(int(target.stat().st_mtime), UTC)
        else:
            modified = fixed
        return _Resource(body, modified, content_type_for(target.name))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for handler threads: nothing outlives a test
    request_queue_size = 64  # listen backlog: Scrapy opens 16 connections at once
    site: SiteServer

    def handle_error(self, request: object, client_address: object) -> None:
        """Keep the exception for the test instead of printing a traceback to stderr."""
        error = sys.exc_info()[1]
        if error is not None:
            self.site.errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    timeout = 10  # a client that never sends its request cannot hold shutdown forever
    server_version = "MedlinePlusFixture/1.0"

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default access log on stderr (the request log replaces it)."""

    def _answer(self) -> None:
        site = self.server.site
        arrived = time.monotonic()
        split = urlsplit(self.path)
        path = split.path or "/"
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        delay = site._delay_for(path)
        if delay > 0:
            time.sleep(delay)
        fault = site._take_connection_fault(path + ("?loop" if split.query == "loop" else ""))
        scripted = site._next_script(path) if fault is None else None
        # Logged just before the status line goes out, so a client that has its answer
        # always finds its request in the log.
        self._log_entry = LoggedRequest(
            method=self.command,
            path=path,
            query=split.query,
            status=0,
            headers=headers,
            at=arrived,
            scripted=scripted is not None,
        )
        if fault is not None:
            self._act_out(fault, site, path, split.query)
        elif scripted is not None and scripted[2] is not None:
            status, extra, body = scripted[0], scripted[1], scripted[2]
            content_type = extra.get("Content-Type") or content_type_for(path)
            self._send(status, {"Content-Type": content_type, **extra}, body)
        else:
            extra = site._headers_for(path)
            self._serve(site, path, headers, {**extra, **(scripted[1] if scripted else {})})

    def _act_out(self, fault: ConnectionFault, site: SiteServer, path: str, query: str) -> None:
        if fault == "redirect_loop":
            target = path if query == "loop" else path + "?loop"
            self._send(302, {"Location": target}, b"")
        elif fault == "reset":
            self.server.site._record(dataclasses.replace(self._log_entry, status=0))
            # SO_LINGER on, 0 s: close() sends an RST instead of a FIN, dropping the request
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # closed before the server's usual shutdown(SHUT_WR), which would send a FIN
            self.connection.close()
            self.close_connection = True
        else:  # truncate
            body = site.file_bytes(path)
            self.server.site._record(dataclasses.replace(self._log_entry, status=200))
            self.send_response(200)
            self.send_header("Content-Type", content_type_for(path))
            self.send_header("Content-Length", str(len(body) * 2))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True

    def _serve(
        self, site: SiteServer, path: str, headers: Mapping[str, str], extra: Mapping[str, str]
    ) -> int:
        resource = site._resource(path)
        if resource is None:
            self._send(404, {"Content-Type": "text/html; charset=utf-8", **extra}, _NOT_FOUND_BODY)
            return 404
        if isinstance(resource, str):
            self._send(301, {"Location": resource, **extra}, b"")
            return 301
        validators = {
            "ETag": resource.etag,
            "Last-Modified": format_datetime(resource.last_modified, usegmt=True),
        }
        if _not_modified(resource, headers):
            self._send(304, {**validators, **extra}, b"")
            return 304
        self._send(
            200, {"Content-Type": resource.content_type, **validators, **extra}, resource.body
        )
        return 200

    def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.server.site._record(dataclasses.replace(self._log_entry, status=status))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status not in _NO_BODY_STATUSES:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in _NO_BODY_STATUSES:
            self.wfile.write(body)


def _not_modified(resource: _Resource, headers: Mapping[str, str]) -> bool:
    """RFC 9110 13.1: If-None-Match wins over If-Modified-Since when both are sent."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = [tag.strip() for tag in if_none_match.split(",")]
        return "*" in tags or any(tag.removeprefix("W/") == resource.etag for tag in tags)
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unparsable date is ignored, as RFC 9110 asks
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return resource.last_modified <= since
