"""Real-world inputs of `crawl`, end to end against local servers (never the live site).

* `--from-xml URL` behind medlineplus.gov's real robots.txt (which disallows /xml/, where
  NLM's dumps live), on the crawled host and on another host name (`localhost` against
  `127.0.0.1`); `--from-xml latest` through a local xml.html;
* unusable dumps (an HTML page, a damaged zip, a zip bomb, too much XML, no records):
  exit 2, one error line, no archive written, under 500 MB peak memory;
* the A-Z index's real letter-page names (`healthtopics_xyz.html`,
  `spanish/healthtopics_0-9.html`) behind the real robots.txt, whose disallowed paths are
  never requested.

The real robots.txt comes from the shared corpus (../shared/corpus/medlineplus/robots.txt);
tests that need it skip when it is absent.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from protego import Protego

from crawler.settings import USER_AGENT
from tests.crawl_runner import CLI, QUICK, CrawlResult, crawl, last_run, run_main
from tests.page_edits import with_text
from tests.site_server import SITE_ROOT, SiteServer, copy_site

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "medlineplus"
FIXTURE_DUMP = SITE_ROOT / "mplus_topics_fixture.xml"
SETS = json.loads((SITE_ROOT.parent / "site_expected.json").read_text("utf-8"))["topic_sets"]
LIVE = "https://medlineplus.gov"
MEMORY_CEILING = 500 * 1024 * 1024
DUMP_PATH = "/xml/mplus_topics_2025-11-04.xml"


@pytest.fixture(scope="module")
def real_robots() -> bytes:
    path = CORPUS / "robots.txt"
    if not path.is_file():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return path.read_bytes()


@pytest.fixture
def real_site(site_server: SiteServer, real_robots: bytes) -> SiteServer:
    """The fixture site behind medlineplus.gov's real robots.txt (no Crawl-delay)."""
    site_server.replace_file("/robots.txt", real_robots)
    return site_server


@pytest.fixture
def other_host(tmp_path: Path) -> Iterator[SiteServer]:
    """A second server, reached as `localhost` (the crawled site is `127.0.0.1`)."""
    root = tmp_path / "other-host"
    root.mkdir()
    with SiteServer(root) as server:
        yield server


def _disallowed(paths: list[str], robots: bytes) -> list[str]:
    rules = Protego.parse(robots.decode("utf-8"))
    return [path for path in paths if not rules.can_fetch(LIVE + path, USER_AGENT)]


def _dump_of(urls: list[str]) -> bytes:
    """The fixture dump (NLM's layout, DOCTYPE included) cut to the records of `urls`."""
    text = FIXTURE_DUMP.read_text("utf-8")
    head, _, rest = text.partition("<health-topic ")
    records = re.findall(r"<health-topic .*?</health-topic>\n", "<health-topic " + rest, re.S)
    kept = [r for r in records if re.search(r'url="([^"]*)"', r)[1] in urls]  # type: ignore[index]
    assert len(kept) == len(urls)
    return (head + "".join(kept) + "</health-topics>\n").encode()


def _zipped(xml: bytes, name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, xml)
    return buffer.getvalue()


def _stored(archive: Path) -> list[str]:
    seen = last_run(archive)
    return sorted(seen.loc[seen["outcome"] == "new", "url"])


# ------------------------------------------------------------------ --from-xml URL


def test_xml_dump_behind_robots_disallow_is_fetched_and_every_topic_stored(
    real_site: SiteServer, real_robots: bytes, tmp_path: Path
) -> None:
    real_site.replace_file(DUMP_PATH, FIXTURE_DUMP.read_bytes())
    archive = tmp_path / "archive"

    result = crawl(real_site.base_url, archive, *QUICK, "--from-xml", real_site.url(DUMP_PATH))

    assert result.returncode == 0, result
    assert _stored(archive) == sorted(SETS["xml_en"] + SETS["xml_es"])  # the disallow-free 29
    (dump_request,) = real_site.requests_for(DUMP_PATH)
    assert dump_request.header("User-Agent") == USER_AGENT
    assert _disallowed(real_site.paths(), real_robots) == [DUMP_PATH]  # only the named URL


def test_zipped_xml_dump_on_another_host_is_fetched(
    real_site: SiteServer, other_host: SiteServer, tmp_path: Path
) -> None:
    other_host.replace_file(
        "/mplus_topics_compressed_2025-11-04.zip",
        _zipped(FIXTURE_DUMP.read_bytes(), "mplus_topics_2025-11-04.xml"),
    )
    dump_url = f"http://localhost:{other_host.port}/mplus_topics_compressed_2025-11-04.zip"
    archive = tmp_path / "archive"

    result = crawl(real_site.base_url, archive, *QUICK, "--languages", "es", "--from-xml", dump_url)

    assert result.returncode == 0, result
    assert _stored(archive) == SETS["xml_es"]
    assert other_host.paths() == ["/mplus_topics_compressed_2025-11-04.zip"]
    assert all(url.startswith(real_site.base_url) for url in last_run(archive)["source_url"])


def test_latest_xml_dump_is_the_newest_on_xml_html(real_site: SiteServer, tmp_path: Path) -> None:
    older = ["https://medlineplus.gov/acne.html", "https://medlineplus.gov/asthma.html"]
    newer = [
        "https://medlineplus.gov/spanish/acne.html",
        "https://medlineplus.gov/spanish/asthma.html",
    ]
    real_site.replace_file("/xml/mplus_topics_2025-11-03.xml", _dump_of(older))
    real_site.replace_file(
        "/xml/mplus_topics_compressed_2025-11-03.zip",
        _zipped(_dump_of(older), "mplus_topics_2025-11-03.xml"),
    )
    real_site.replace_file("/xml/mplus_topics_2025-11-04.xml", _dump_of(newer))
    real_site.replace_file(
        "/xml/mplus_topics_compressed_2025-11-04.zip",
        _zipped(_dump_of(newer), "mplus_topics_2025-11-04.xml"),
    )
    links = "".join(
        f'<li><a href="{LIVE}/xml/{name}">{name}</a></li>'
        for name in (
            "mplus_topics_2025-11-03.xml",
            "mplus_topics_compressed_2025-11-04.zip",
            "mplus_topics_2025-11-04.xml",
            "mplus_topics_compressed_2025-11-03.zip",
        )
    )
    real_site.replace_file("/xml.html", f"<html><body><ul>{links}</ul></body></html>")
    archive = tmp_path / "archive"

    result = crawl(real_site.base_url, archive, *QUICK, "--from-xml", "latest")

    assert result.returncode == 0, result
    assert _stored(archive) == newer
    dumps = [path for path in real_site.paths() if path.startswith("/xml")]
    assert dumps == ["/xml.html", "/xml/mplus_topics_compressed_2025-11-04.zip"]


# ------------------------------------------------------------------ unusable dumps


@pytest.fixture(scope="session")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """About 2 MB of zip holding 1 GiB of well-formed health-topic XML: records whose one
    64 KB attribute compresses to almost nothing."""
    record = (
        b'<health-topic url="https://medlineplus.gov/asthma.html" language="English" note="'
        + b"x" * 65_536
        + b'"/>\n'
    )
    path = tmp_path_factory.mktemp("bomb") / "mplus_topics_compressed_2025-11-04.zip"
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("mplus_topics_2025-11-04.xml", "w", force_zip64=True) as member,
    ):
        member.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<health-topics>\n')
        for _ in range(2**30 // (len(record) * 16)):
            member.write(record * 16)
        member.write(b"</health-topics>\n")
    return path.read_bytes()


def run_measured(*arguments: str | Path, timeout: float = 120) -> tuple[CrawlResult, int]:
    """Run `medlineplus-archive ARGUMENTS...` in a child process: its result and its peak
    resident memory in bytes (from wait4's resource usage of that very child)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [*CLI, *map(str, arguments)],
            stdout=out,
            stderr=err,
        )
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = CrawlResult(process.returncode, out.read().decode(), err.read().decode())
    return result, usage.ru_maxrss * 1024  # Linux counts kilobytes


@pytest.mark.parametrize(
    ("path", "body", "options", "message"),
    [
        pytest.param("/healthtopics.html", None, [], "served as text/html", id="html-page"),
        pytest.param(
            "/xml/mplus_topics_2025-11-04.xml",
            (SITE_ROOT / "healthtopics.html").read_bytes(),
            [],
            "root element <html>",
            id="html-served-as-xml",
        ),
        pytest.param(
            "/xml/mplus_topics_compressed_2025-11-04.zip",
            _zipped(FIXTURE_DUMP.read_bytes(), "mplus_topics.xml")[:5000],
            [],
            "not a readable zip file",
            id="broken-zip",
        ),
        pytest.param(
            "/xml/mplus_topics_compressed_2025-11-04.zip",
            "zip_bomb",
            [],
            "more than 209,715,200 bytes of XML",
            id="zip-bomb",
        ),
        pytest.param(
            DUMP_PATH,
            FIXTURE_DUMP.read_bytes(),
            ["-s", "MEDLINEPLUS_XML_MAX_BYTES=10000"],
            "more than 10,000 bytes of XML",
            id="over-the-limit",
        ),
        pytest.param(
            DUMP_PATH,
            b'<?xml version="1.0"?>\n<health-topics total="0"></health-topics>\n',
            [],
            "no <health-topic> record",
            id="no-records",
        ),
        pytest.param("/xml/gone.xml", None, [], "HTTP 404", id="not-found"),
    ],
)
def test_unusable_xml_dump_stops_before_the_crawl(
    real_site: SiteServer,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    path: str,
    body: bytes | str | None,
    options: list[str],
    message: str,
) -> None:
    if body == "zip_bomb":
        body = request.getfixturevalue("zip_bomb")
    if body is not None:
        real_site.replace_file(path, body)
    archive = tmp_path / "archive"

    result, peak_memory = run_measured(
        "crawl", "--base-url", real_site.base_url, "--archive", archive,
        *QUICK, *options, "--from-xml", real_site.url(path),
    )  # fmt: skip

    assert result.returncode == 2, result
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: --from-xml: {real_site.url(path)}"), line
    assert message in line, line
    assert not archive.exists()  # no run, not even an empty archive
    assert real_site.paths() == [path]  # nothing crawled
    assert peak_memory < MEMORY_CEILING, f"{peak_memory / 2**20:.0f} MB"


@pytest.mark.parametrize("fault", ["server-stopped", "http-503"])
def test_unreachable_xml_dump_is_an_environment_failure(
    real_site: SiteServer, tmp_path: Path, fault: str
) -> None:
    if fault == "server-stopped":
        with SiteServer() as stopped:
            dump_url = stopped.url(DUMP_PATH)
    else:
        real_site.error_burst(DUMP_PATH, status=503, count=1)
        dump_url = real_site.url(DUMP_PATH)
    archive = tmp_path / "archive"

    result = run_main(
        "crawl", "--base-url", real_site.base_url, "--archive", archive, *QUICK,
        "--from-xml", dump_url,
    )  # fmt: skip

    assert result.returncode == 3, result
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: --from-xml: {dump_url}: "), line
    assert not archive.exists()


def test_an_existing_archive_is_checked_before_the_dump_is_fetched(
    real_site: SiteServer, tmp_path: Path
) -> None:
    real_site.replace_file(DUMP_PATH, FIXTURE_DUMP.read_bytes())
    not_a_folder = tmp_path / "archive"
    not_a_folder.write_text("a file, not an archive folder\n")

    result = run_main(
        "crawl", "--base-url", real_site.base_url, "--archive", not_a_folder, *QUICK,
        "--from-xml", real_site.url(DUMP_PATH),
    )  # fmt: skip

    assert result.returncode == 3, result
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {not_a_folder} is a file"), line
    assert real_site.paths() == []  # the dump was not fetched


def test_a_file_url_dump_is_read(real_site: SiteServer, tmp_path: Path) -> None:
    urls = ["https://medlineplus.gov/spanish/asthma.html"]
    dump = tmp_path / "dump.xml"
    dump.write_bytes(_dump_of(urls))
    archive = tmp_path / "archive"

    result = crawl(real_site.base_url, archive, *QUICK, "--from-xml", dump.as_uri())

    assert result.returncode == 0, result
    assert _stored(archive) == urls


def test_ctrl_c_while_the_dump_downloads_is_one_error_line(
    real_site: SiteServer, tmp_path: Path
) -> None:
    """Ctrl-C before the crawl's own stop handlers are installed: no traceback. The dump's
    server accepts the connection and never answers."""
    archive = tmp_path / "archive"
    with socket.create_server(("127.0.0.1", 0)) as silent:
        dump_url = f"http://127.0.0.1:{silent.getsockname()[1]}{DUMP_PATH}"
        command = [*CLI, "crawl", "--base-url", real_site.base_url]
        command += ["--archive", str(archive), *QUICK, "--from-xml", dump_url]
        process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not _holds_a_socket(process.pid):  # the dump's download has begun
            assert process.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 1, stderr
    assert stderr.strip().splitlines() == ["error: interrupted"], stderr
    assert not archive.exists()


def _holds_a_socket(pid: int) -> bool:
    descriptors = Path(f"/proc/{pid}/fd")
    try:
        return any(str(fd.readlink()).startswith("socket:") for fd in descriptors.iterdir())
    except OSError:  # a descriptor closed while looking
        return False


# ------------------------------------------------------------------ the real index names


def test_real_letter_page_names_are_followed_behind_the_real_robots_txt(
    real_robots: bytes, tmp_path: Path
) -> None:
    """The live site's letter pages include healthtopics_xyz.html and
    spanish/healthtopics_0-9.html; here wheezing.html is listed only on the first, the
    Spanish diabetes page only on the second."""
    root = copy_site(tmp_path / "site")
    (root / "robots.txt").write_bytes(real_robots)
    for index, letter, page in (
        ("healthtopics.html", "X", "healthtopics_xyz.html"),
        ("spanish/healthtopics.html", "X", "spanish/healthtopics_0-9.html"),
    ):
        html = (root / index).read_text("utf-8")
        link = f'<li><a href="{LIVE}/{page}">{letter}</a></li>'
        (root / index).write_text(with_text(html, f"<li><span>{letter}</span></li>", link))
    spanish_d = root / "spanish/healthtopics_d.html"
    diabetes_link = f'<li><a href="{LIVE}/spanish/diabetes.html">Diabetes</a></li>'
    spanish_d.write_text(with_text(spanish_d.read_text("utf-8"), diabetes_link, ""))
    (root / "healthtopics_xyz.html").write_text(
        '<html><body><ul id="index"><li class="item">'
        f'<a href="{LIVE}/wheezing.html">Wheezing</a></li></ul></body></html>'
    )
    (root / "spanish/healthtopics_0-9.html").write_text(
        f'<html><body><ul id="index"><li class="item">{diabetes_link[4:]}</ul></body></html>'
    )
    archive = tmp_path / "archive"

    with SiteServer(root) as site:
        result = crawl(site.base_url, archive, *QUICK)
        requested = site.paths()

    assert result.returncode == 0, result
    expected = SETS["az_index_en"] + SETS["related_topics_only"] + SETS["az_index_es"]
    assert _stored(archive) == sorted(expected)  # the real robots.txt allows every topic
    assert {"/healthtopics_xyz.html", "/spanish/healthtopics_0-9.html"} <= set(requested)
    assert _disallowed(requested, real_robots) == []
