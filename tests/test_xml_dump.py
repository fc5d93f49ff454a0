"""Unit tests of reading NLM's XML dump (`crawler.parsing.xml_dump`): the records, the bounds and
the refusals, and finding the newest dump on xml.html. The command line's use of them,
over HTTP, is in tests/test_xml_input_e2e.py."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from crawler.parsing.discovery import DiscoveryError
from crawler.parsing.items import Language
from crawler.parsing.urls import topic_path
from crawler.parsing.xml_dump import latest_dump_url, parse_dump

MAX_BYTES = 200 * 1024 * 1024
MIRROR = "http://127.0.0.1:8123"


def _urls(
    data: bytes, source: str, languages: list[Language], max_bytes: int = MAX_BYTES
) -> list[str]:
    return parse_dump(io.BytesIO(data), source, languages, max_bytes).urls


def _zipped(xml: bytes, name: str = "mplus_topics_2025-03-04.xml") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, xml)
    return buffer.getvalue()


XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<health-topics total="3">
<health-topic url="https://medlineplus.gov/asthma.html" language="English" title="Asthma"/>
<health-topic url="https://medlineplus.gov/spanish/asthma.html" language="Spanish" title="Asma"/>
<health-topic url="https://medlineplus.gov/ency/article/1.htm" language="English" title="x"/>
</health-topics>"""


def test_xml_dump_plain_and_zipped() -> None:
    assert _urls(XML, "dump.xml", ["en", "es"]) == [
        "https://medlineplus.gov/asthma.html",
        "https://medlineplus.gov/spanish/asthma.html",
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mplus_topics.xml", XML)
    assert _urls(buffer.getvalue(), "dump.zip", ["es"]) == [
        "https://medlineplus.gov/spanish/asthma.html"
    ]


@pytest.mark.parametrize(
    "declarations",
    [
        pytest.param('<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">', id="laughs"),
        pytest.param('<!ENTITY b SYSTEM "file:///etc/passwd">', id="external"),
    ],
)
def test_xml_dump_with_entity_declarations_is_refused(declarations: str) -> None:
    evil = f"""<?xml version="1.0"?>
<!DOCTYPE health-topics [{declarations}]>
<health-topics><health-topic url="https://medlineplus.gov/x&b;.html" language="English"/>
</health-topics>""".encode()
    with pytest.raises(DiscoveryError, match="entities"):
        _urls(evil, "evil.xml", ["en"])


LAUGHS = """<?xml version="1.0" encoding="{encoding}"?>
<!DOCTYPE health-topics [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>
<health-topics><health-topic url="https://medlineplus.gov/x&b;.html" language="English"/>
</health-topics>"""


@pytest.mark.parametrize(
    ("encoding", "codec"),
    [
        pytest.param("UTF-16LE", "utf-16-le", id="utf-16-without-bom"),
        pytest.param("UTF-16", "utf-16", id="utf-16-with-bom"),
        pytest.param("UTF-7", "utf-7", id="utf-7"),
    ],
)
def test_an_xml_dump_in_another_encoding_cannot_smuggle_entities(encoding: str, codec: str) -> None:
    """The entity check reads bytes; a dump in an encoding other than UTF-8 (NLM's) is
    refused rather than decoded past it."""
    evil = LAUGHS.format(encoding=encoding).encode(codec)
    with pytest.raises(DiscoveryError):
        _urls(evil, "evil.xml", ["en"])


CORPUS_XML = (
    Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "medlineplus" / "xml"
)


@pytest.mark.parametrize(
    ("name", "languages", "expected"),
    [
        pytest.param("mplus_topics_2025-03-04_head.xml", ["en", "es"], 11, id="2025-both"),
        pytest.param("mplus_topics_2025-03-04_head.xml", ["en"], 4, id="2025-english"),
        pytest.param("mplus_topics_2012-07-21_fixture.xml", ["en", "es"], 2, id="2012-old-urls"),
    ],
)
def test_nlm_dumps_from_the_shared_corpus(name: str, languages: list[str], expected: int) -> None:
    path = CORPUS_XML / name
    if not path.is_file():
        pytest.skip(f"shared corpus not found at {CORPUS_XML}")
    urls = _urls(path.read_bytes(), name, languages)  # type: ignore[arg-type]
    assert len(urls) == expected
    assert all(url.startswith("https://medlineplus.gov/") and topic_path(url) for url in urls)


def test_real_dump_doctype_without_entities_is_read() -> None:
    dump = XML.replace(
        b"<health-topics",
        b'<!DOCTYPE health-topics PUBLIC "-//NLM//DTD health-topics //EN"'
        b' "https://medlineplus.gov/xml/mplus_topics.dtd">\n<health-topics',
        1,
    )
    assert len(_urls(dump, "dump.xml", ["en"])) == 1


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"not xml at all <", id="garbage"),
        pytest.param(b"<other-root/>", id="foreign-xml"),
        pytest.param(b"PK\x03\x04broken", id="broken-zip"),
    ],
)
def test_unreadable_xml_dump_is_a_discovery_error(data: bytes) -> None:
    with pytest.raises(DiscoveryError):
        _urls(data, "bad.xml", ["en"])


def _corpus_head() -> bytes:
    path = CORPUS_XML / "mplus_topics_2025-03-04_head.xml"
    if not path.is_file():
        pytest.skip(f"shared corpus not found at {CORPUS_XML}")
    return path.read_bytes()


def test_real_dump_zipped_lists_the_same_topics_as_plain() -> None:
    head = _corpus_head()
    plain = _urls(head, "head.xml", ["en", "es"])
    assert len(plain) == 11
    assert _urls(_zipped(head), "head.zip", ["en", "es"]) == plain


@pytest.mark.parametrize("zipped", [False, True], ids=["plain", "zip"])
def test_xml_over_the_limit_is_refused(zipped: bool) -> None:
    head = _corpus_head()  # 125 KB of XML
    data = _zipped(head) if zipped else head
    assert len(_urls(data, "head", ["en"], max_bytes=len(head))) == 4
    with pytest.raises(DiscoveryError, match="more than 100,000 bytes of XML"):
        _urls(data, "head", ["en"], max_bytes=100_000)


def test_damaged_zips_are_refused() -> None:
    whole = _zipped(_corpus_head())
    with pytest.raises(DiscoveryError, match="not a readable zip file"):
        _urls(whole[: len(whole) // 2], "truncated.zip", ["en"])
    middle = len(whole) // 2
    garbled = (
        whole[:middle] + bytes(b ^ 0xFF for b in whole[middle : middle + 64]) + whole[middle + 64 :]
    )
    with pytest.raises(DiscoveryError, match="not a readable"):
        _urls(garbled, "garbled.zip", ["en"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            b"<!DOCTYPE html>\n<html><body><h1>MedlinePlus</h1></body></html>",
            "root element <html>",
            id="html-page",
        ),
        pytest.param(b"%PDF-1.4\n%\xe2\xe3", "neither XML nor a zip file", id="pdf"),
        pytest.param(b"", "neither XML nor a zip file", id="empty"),
        pytest.param(
            b'<?xml version="1.0"?>\n<health-topics total="0"></health-topics>',
            "no <health-topic> record",
            id="no-records",
        ),
        pytest.param(
            b'<?xml version="1.0"?>\n<health-topics><health-topic url="https://medlineplus.gov/'
            b'asthma.html" language="English"/>',
            "not a readable XML file",
            id="cut-short",
        ),
        pytest.param(_zipped(b"<x/>", name="readme.txt"), "holds no .xml file", id="zip-no-xml"),
    ],
)
def test_unusable_dumps_are_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(DiscoveryError, match=message):
        _urls(data, "dump", ["en", "es"])


def test_a_dump_without_topics_in_the_chosen_languages_is_refused() -> None:
    with pytest.raises(DiscoveryError, match=r"chosen languages \(es\)"):
        _urls(XML.replace(b"spanish/asthma", b"spanish/x/asthma"), "dump.xml", ["es"])


def _xml_page(*hrefs: str) -> bytes:
    """An xml.html page in the shape of medlineplus.gov's, linking `hrefs`."""
    items = "".join(f'<li><a href="{href}">MedlinePlus XML</a></li>' for href in hrefs)
    return f"<!DOCTYPE html><html><body><ul class='bulletlist'>{items}</ul></body></html>".encode()


def test_latest_dump_is_the_newest_date_and_its_zip() -> None:
    page = _xml_page(
        "https://medlineplus.gov/xml/mplus_topics_2025-11-03.xml",
        "https://medlineplus.gov/xml/mplus_topics_compressed_2025-11-03.zip",
        "https://medlineplus.gov/xml/mplus_topics_compressed_2025-11-04.zip",
        "https://medlineplus.gov/xml/mplus_topics_2025-11-04.xml",
        "https://medlineplus.gov/xml/mplus_topics_2025-13-40.xml",  # no such date
        "https://medlineplus.gov/xml/mplus_groups_2025-11-05.xml",  # not the topic dump
        "https://medlineplus.gov/xml/mplus_topics.dtd",
    )
    live = "https://medlineplus.gov"
    assert latest_dump_url(page, f"{live}/xml.html", live) == (
        f"{live}/xml/mplus_topics_compressed_2025-11-04.zip"
    )
    # on a mirror, the live site's links are fetched from the mirror
    assert latest_dump_url(page, f"{MIRROR}/xml.html", MIRROR) == (
        f"{MIRROR}/xml/mplus_topics_compressed_2025-11-04.zip"
    )
    only_xml = _xml_page("xml/mplus_topics_2025-11-02.xml", "/xml/mplus_topics_2025-11-01.xml")
    assert latest_dump_url(only_xml, f"{MIRROR}/xml.html", MIRROR) == (
        f"{MIRROR}/xml/mplus_topics_2025-11-02.xml"
    )


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(_xml_page("https://medlineplus.gov/xml/mplus_topics.dtd"), id="no-dump"),
        pytest.param(b"", id="empty"),
    ],
)
def test_latest_dump_on_a_page_without_dumps_is_none(page: bytes) -> None:
    assert latest_dump_url(page, f"{MIRROR}/xml.html", MIRROR) is None
