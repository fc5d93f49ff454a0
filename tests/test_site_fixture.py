"""The fixture site (tests/fixtures/site) and the local server that serves it.

The site is what end-to-end crawl tests run against, so these tests pin down that it is
what its README says: every topic page parses to the expected item, the non-topic pages
do not, links stay inside the site, and each discovery source (A-Z index, XML dump,
urls.txt, related topics) yields the documented topic set. Then the server: validators,
304s, the request log, scripted failures and run-time edits.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import sys
import urllib.error
import urllib.request
import urllib.robotparser
import xml.etree.ElementTree as ET
from datetime import timedelta
from email.message import Message
from email.utils import format_datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from lxml import etree
from protego import Protego

from crawler.parsing import ExtractionError, parse_health_topic
from crawler.parsing.items import to_jsonable
from tests.site_server import SITE_LAST_MODIFIED, SITE_ROOT, SiteServer, copy_site

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "site_expected.json").read_text("utf-8"))
TOPIC_PAGES: dict[str, dict[str, Any]] = EXPECTED["topic_pages"]
SETS: dict[str, list[str]] = EXPECTED["topic_sets"]
LIVE = "https://medlineplus.gov/"
MIRROR = "http://127.0.0.1:8000/"


def _html_files() -> list[str]:
    return sorted(
        path.relative_to(SITE_ROOT).as_posix()
        for path in SITE_ROOT.rglob("*")
        if path.suffix in (".html", ".htm")
    )


def _document(path: str) -> etree._Element:
    return etree.fromstring((SITE_ROOT / path).read_bytes(), etree.HTMLParser(encoding="utf-8"))


def _hrefs(element: etree._Element, base: str) -> list[str]:
    return [urljoin(base, a.get("href").strip()) for a in element.iter("a") if a.get("href")]


# ------------------------------------------------------------------ the generator


@pytest.fixture
def make_site(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_site", FIXTURES / "make_site.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_site", module)  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def test_committed_site_is_what_make_site_generates(make_site: ModuleType) -> None:
    generated: dict[str, str] = make_site.build()
    committed = {f"site/{path.relative_to(SITE_ROOT).as_posix()}" for path in SITE_ROOT.rglob("*")}
    committed = {path for path in committed if (FIXTURES / path).is_file()}
    committed.add("site_expected.json")
    assert committed == set(generated), "run .venv/bin/python tests/fixtures/make_site.py"
    stale = [
        path for path, text in generated.items() if (FIXTURES / path).read_text("utf-8") != text
    ]
    assert stale == [], "run .venv/bin/python tests/fixtures/make_site.py"


def test_make_site_is_deterministic(make_site: ModuleType) -> None:
    assert make_site.build() == make_site.build()


# ------------------------------------------------------------------ pages


def test_every_topic_page_is_listed() -> None:
    topic_files = [path for path in _html_files() if _document(path).get("id") == "health_topic"]
    assert sorted(topic_files) == sorted(TOPIC_PAGES)
    english = [path for path in topic_files if not path.startswith("spanish/")]
    assert len(english) >= 20
    assert len(topic_files) - len(english) >= 5
    layouts = {(page["layout"], page["item"]["language"]) for page in TOPIC_PAGES.values()}
    assert {("2025", "en"), ("2025", "es"), ("short", "en"), ("2020", "en")} <= layouts


@pytest.mark.parametrize("path", sorted(TOPIC_PAGES))
def test_topic_page_parses_to_expected_item(path: str) -> None:
    body = (SITE_ROOT / path).read_bytes()
    page = parse_health_topic(body, MIRROR + path)

    assert page.url == LIVE + path
    assert page.source_url == MIRROR + path
    assert page.language == ("es" if path.startswith("spanish/") else "en")
    assert page.language == _document(path).get("lang")
    assert page.slug == Path(path).stem
    expected = TOPIC_PAGES[path]["item"]
    actual = to_jsonable(page)
    differences = {
        name: {"expected": value, "actual": actual[name]}
        for name, value in expected.items()
        if actual[name] != value
    }
    assert differences == {}, json.dumps(differences, indent=1, ensure_ascii=False)


@pytest.mark.parametrize("path", EXPECTED["non_topic_pages"])
def test_non_topic_page_is_refused(path: str) -> None:
    with pytest.raises(ExtractionError) as raised:
        parse_health_topic((SITE_ROOT / path).read_bytes(), MIRROR + path)
    assert raised.value.field == "html#health_topic"


def test_every_page_is_topic_or_listed_non_topic() -> None:
    assert sorted([*TOPIC_PAGES, *EXPECTED["non_topic_pages"]]) == _html_files()


def test_site_links_to_medlineplus_pages_exist() -> None:
    """Links into medlineplus.gov (any form) resolve to a file of the site: no accidental 404."""
    missing = set()
    for path in _html_files():
        for url in _hrefs(_document(path), LIVE + path):
            parts = urlsplit(url)
            if parts.netloc != "medlineplus.gov" or not parts.path:
                continue
            target = SITE_ROOT / parts.path.lstrip("/")
            if parts.path.endswith("/"):
                target = target / "index.html"
            if not target.is_file():
                missing.add(f"{path} -> {url}")
    assert missing == set()


# ------------------------------------------------------------------ discovery sources


def _index_topics(language: str) -> set[str]:
    prefix = "spanish/" if language == "es" else ""
    found = set()
    for index_page in SITE_ROOT.glob(f"{prefix}healthtopics_*.html"):
        path = index_page.relative_to(SITE_ROOT).as_posix()
        (index,) = [ul for ul in _document(path).iter("ul") if ul.get("id") == "index"]
        found |= {url for url in _hrefs(index, LIVE + path) if url in SETS["all_topic_pages"]}
    return found


@pytest.mark.parametrize("language", ["en", "es"])
def test_az_index_pages_link_the_expected_topics(language: str) -> None:
    assert sorted(_index_topics(language)) == SETS[f"az_index_{language}"]


def test_related_only_topic_is_reached_only_through_related_topics() -> None:
    (related_only,) = SETS["related_topics_only"]
    linking = [
        path
        for path in _html_files()
        if related_only in _hrefs(_document(path), LIVE + path) and LIVE + path != related_only
    ]
    assert linking == ["asthma.html"]
    (asthma,) = [
        element for element in _document("asthma.html").iter("ul") if element.get("id") == "related"
    ]
    assert related_only in _hrefs(asthma, LIVE + "asthma.html")
    assert related_only not in _index_topics("en")
    assert related_only not in SETS["xml_en"]
    assert related_only not in SETS["urls_txt"]
    xml = (SITE_ROOT / "mplus_topics_fixture.xml").read_text("utf-8")
    assert related_only not in xml


def test_indexes_also_link_out_of_scope_pages() -> None:
    index_a = _hrefs(_document("healthtopics_a.html"), LIVE + "healthtopics_a.html")
    assert set(EXPECTED["out_of_scope_links"]) <= set(index_a)
    celiac = parse_health_topic((SITE_ROOT / "celiacdisease.html").read_bytes(), MIRROR)
    entry_urls = {link.url for link in celiac.links}
    assert {LIVE + "ency/article/000001.htm", LIVE + "druginfo/meds/a1.html"} <= entry_urls


def test_xml_dump_lists_the_expected_topics() -> None:
    tree = ET.parse(SITE_ROOT / "mplus_topics_fixture.xml")  # the DTD is never fetched
    root = tree.getroot()
    records = root.findall("health-topic")
    assert root.tag == "health-topics"
    assert int(root.get("total", "-1")) == len(records)
    by_language: dict[str, list[str]] = {"English": [], "Spanish": []}
    for record in records:
        by_language[record.get("language", "")].append(record.get("url", ""))
        assert record.find("full-summary") is not None
    assert sorted(by_language["English"]) == SETS["xml_en"]
    assert sorted(by_language["Spanish"]) == SETS["xml_es"]
    assert set(SETS["xml_en"]) == set(SETS["az_index_en"])
    assert set(SETS["xml_es"]) == set(SETS["az_index_es"])


def test_urls_txt_lists_topic_urls_with_a_comment_and_a_blank_line() -> None:
    lines = (SITE_ROOT / "urls.txt").read_text("utf-8").splitlines()
    assert any(line.startswith("#") for line in lines)
    assert "" in lines
    urls = [line for line in lines if line.strip() and not line.startswith("#")]
    assert urls == SETS["urls_txt"]
    assert set(urls) <= set(SETS["all_topic_pages"])


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        pytest.param("/asthma.html", True, id="topic"),
        pytest.param("/spanish/asthma.html", True, id="spanish-topic"),
        pytest.param("/privatetopic.html", False, id="disallowed-topic"),
        pytest.param("/ency/article/000001.htm", False, id="encyclopedia"),
        pytest.param("/druginfo/meds/a1.html", True, id="drug-page-allowed-but-out-of-scope"),
        pytest.param("/healthtopics_p.html", True, id="index-page"),
    ],
)
def test_robots_txt(path: str, allowed: bool) -> None:
    text = (SITE_ROOT / "robots.txt").read_text("utf-8")
    stdlib = urllib.robotparser.RobotFileParser()
    stdlib.parse(text.splitlines())
    protego = Protego.parse(text)  # Scrapy's default robots.txt parser
    assert stdlib.can_fetch("medlineplus-archive", LIVE.rstrip("/") + path) is allowed
    assert protego.can_fetch(LIVE.rstrip("/") + path, "medlineplus-archive") is allowed
    assert stdlib.crawl_delay("medlineplus-archive") == 2
    assert protego.crawl_delay("medlineplus-archive") == 2
    disallowed = {url for url, page in TOPIC_PAGES.items() if not page["robots_allowed"]}
    assert disallowed == {"privatetopic.html"}


# ------------------------------------------------------------------ the server


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, Message, bytes]:
    """(status, headers, body) of one request; error statuses are returned, not raised."""
    assert urlsplit(url).hostname == "127.0.0.1"
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with _NO_PROXY.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def _etag(path: str) -> str:
    return '"' + hashlib.sha1((SITE_ROOT / path).read_bytes()).hexdigest() + '"'


def test_serves_site_files_with_validators(site_server: SiteServer) -> None:
    status, headers, body = fetch(site_server.url("/asthma.html"))

    assert status == 200
    assert body == (SITE_ROOT / "asthma.html").read_bytes()
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Length"] == str(len(body))
    assert headers["ETag"] == _etag("asthma.html")
    assert headers["Last-Modified"] == format_datetime(SITE_LAST_MODIFIED, usegmt=True)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        pytest.param("/spanish/asthma.html", "text/html; charset=utf-8", id="html"),
        pytest.param("/ency/article/000001.htm", "text/html; charset=utf-8", id="htm"),
        pytest.param("/robots.txt", "text/plain; charset=utf-8", id="robots"),
        pytest.param("/urls.txt", "text/plain; charset=utf-8", id="urls"),
        pytest.param("/mplus_topics_fixture.xml", "application/xml", id="xml"),
    ],
)
def test_content_types(site_server: SiteServer, path: str, content_type: str) -> None:
    status, headers, _ = fetch(site_server.url(path))
    assert (status, headers["Content-Type"]) == (200, content_type)


def test_conditional_requests_get_304_without_body(site_server: SiteServer) -> None:
    url = site_server.url("/asthma.html")
    _, first, _ = fetch(url)
    etag, last_modified = first["ETag"], first["Last-Modified"]
    later = format_datetime(SITE_LAST_MODIFIED + timedelta(days=1), usegmt=True)
    earlier = format_datetime(SITE_LAST_MODIFIED - timedelta(seconds=1), usegmt=True)

    status, headers, body = fetch(url, {"If-None-Match": etag})
    assert (status, body, headers["ETag"]) == (304, b"", etag)
    assert fetch(url, {"If-None-Match": f'"other", W/{etag}'})[0] == 304
    assert fetch(url, {"If-Modified-Since": last_modified})[:3:2] == (304, b"")
    assert fetch(url, {"If-Modified-Since": later})[0] == 304
    assert fetch(url, {"If-Modified-Since": earlier})[0] == 200
    assert fetch(url, {"If-Modified-Since": "not a date"})[0] == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110)
    assert fetch(url, {"If-None-Match": '"stale"', "If-Modified-Since": later})[0] == 200

    statuses = [request.status for request in site_server.requests_for("/asthma.html")]
    assert statuses == [200, 304, 304, 304, 304, 200, 200, 200]
    assert site_server.requests[1].header("If-None-Match") == etag


def test_head_404_and_directories(site_server: SiteServer) -> None:
    status, headers, body = fetch(site_server.url("/asthma.html"), method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) == (SITE_ROOT / "asthma.html").stat().st_size

    assert fetch(site_server.url("/nosuchtopic.html"))[0] == 404
    assert fetch(site_server.url("/"))[2] == (SITE_ROOT / "index.html").read_bytes()
    connection = http.client.HTTPConnection("127.0.0.1", site_server.port, timeout=10)
    try:
        connection.request("GET", "/spanish")
        response = connection.getresponse()
        response.read()
        assert (response.status, response.getheader("Location")) == (301, "/spanish/")
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", site_server.port, timeout=10)
        connection.request("GET", "/%2e%2e/conftest.py")
        response = connection.getresponse()
        response.read()
        assert response.status == 404
    finally:
        connection.close()


def test_request_log(site_server: SiteServer) -> None:
    fetch(site_server.url("/robots.txt"), {"User-Agent": "fixture-test/1.0"})
    fetch(site_server.url("/asthma.html?x=1"))
    fetch(site_server.url("/missing.html"), method="HEAD")

    requests = site_server.requests
    assert [(r.method, r.path, r.status) for r in requests] == [
        ("GET", "/robots.txt", 200),
        ("GET", "/asthma.html", 200),
        ("HEAD", "/missing.html", 404),
    ]
    assert requests[0].header("user-agent") == "fixture-test/1.0"
    assert requests[1].query == "x=1"
    assert requests[0].at <= requests[1].at <= requests[2].at
    assert site_server.paths() == ["/robots.txt", "/asthma.html"]
    assert site_server.paths(None) == ["/robots.txt", "/asthma.html", "/missing.html"]

    site_server.clear_log()
    assert site_server.requests == []
    assert site_server.errors == []


def test_scripted_503_then_normal(site_server: SiteServer) -> None:
    site_server.script("/asthma.html", [(503, {}, b""), (200, {}, None)])
    url = site_server.url("/asthma.html")

    assert fetch(url)[0] == 503
    status, _, body = fetch(url)
    assert (status, body) == (200, (SITE_ROOT / "asthma.html").read_bytes())
    assert fetch(url)[0] == 200  # script used up: served as usual
    logged = site_server.requests_for("/asthma.html")
    assert [(r.status, r.scripted) for r in logged] == [(503, True), (200, True), (200, False)]
    assert site_server.pending_scripts() == {}


def test_scripted_429_with_retry_after(site_server: SiteServer) -> None:
    site_server.script("/robots.txt", [(429, {"Retry-After": "3"}, b"slow down")])

    status, headers, body = fetch(site_server.url("/robots.txt"))
    assert (status, headers["Retry-After"], body) == (429, "3", b"slow down")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert fetch(site_server.url("/robots.txt"))[0] == 200


def test_scripted_normal_answer_keeps_conditional_handling(site_server: SiteServer) -> None:
    etag = _etag("asthma.html")
    site_server.script("/asthma.html", [(200, {"X-Fixture": "yes"}, None)])
    status, headers, _ = fetch(site_server.url("/asthma.html"), {"If-None-Match": etag})
    assert (status, headers["X-Fixture"]) == (304, "yes")


def test_replace_file_changes_validators(site_server: SiteServer) -> None:
    url = site_server.url("/asthma.html")
    _, before, _ = fetch(url)
    edited = (SITE_ROOT / "asthma.html").read_bytes().replace(b"Asthma", b"Asthma (edited)")
    site_server.replace_file("/asthma.html", edited)

    status, after, body = fetch(url, {"If-None-Match": before["ETag"]})
    assert (status, body) == (200, edited)
    assert after["ETag"] != before["ETag"]
    assert fetch(url, {"If-Modified-Since": before["Last-Modified"]})[0] == 200
    assert fetch(url, {"If-None-Match": after["ETag"]})[0] == 304
    assert site_server.file_bytes("/asthma.html") == edited

    site_server.replace_file("/asthma.html", None)
    assert fetch(url)[0] == 404
    site_server.restore_file("/asthma.html")
    assert fetch(url)[2] == (SITE_ROOT / "asthma.html").read_bytes()


def test_set_root_serves_an_edited_copy(site_server: SiteServer, tmp_path: Path) -> None:
    copy = copy_site(tmp_path / "site")
    (copy / "asthma.html").write_bytes(b"<html><body>gone quiet</body></html>")
    (copy / "burns.html").unlink()
    _, before, _ = fetch(site_server.url("/asthma.html"))

    site_server.set_root(copy)

    assert site_server.root == copy
    status, after, body = fetch(site_server.url("/asthma.html"))
    assert (status, body) == (200, b"<html><body>gone quiet</body></html>")
    assert after["Last-Modified"] != before["Last-Modified"]
    assert fetch(site_server.url("/burns.html"))[0] == 404
    unchanged = fetch(site_server.url("/allergy.html"), {"If-None-Match": _etag("allergy.html")})
    assert unchanged[0] == 304


def test_mirror_url(site_server: SiteServer) -> None:
    assert site_server.mirror_url("https://medlineplus.gov/spanish/asthma.html?a=1") == (
        f"http://127.0.0.1:{site_server.port}/spanish/asthma.html?a=1"
    )


def test_server_starts_and_stops_cleanly() -> None:
    server = SiteServer()
    with server:
        port = server.port
        assert fetch(server.url("/robots.txt"))[0] == 200
    with pytest.raises(RuntimeError):
        _ = server.port
    server.stop()  # stopping twice is harmless
    with SiteServer() as again:
        assert again.port != 0
        assert fetch(again.url("/healthtopics.html"))[0] == 200
    assert port > 0
    assert server.errors == []
