"""Raw pages in WARC files: written with warcio, read back, digests checked."""

from __future__ import annotations

import gzip
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.parsing.items import RawResponse
from pipelines.core.errors import ArchiveCorruptError
from pipelines.core.warc import WarcFileWriter, iter_responses, read_response

PAGE = "<html lang='en' id='health_topic'><h1>Asthma \u2013 \u00e1</h1></html>".encode()


def _raw(path: str, body: bytes = PAGE) -> RawResponse:
    return RawResponse(
        url=f"http://127.0.0.1:8000{path}",
        status=200,
        reason="OK",
        headers=[
            ("Content-Type", "text/html; charset=utf-8"),
            ("ETag", '"abc"'),
            ("Transfer-Encoding", "chunked"),
            ("Content-Encoding", "gzip"),
        ],
        body=body,
        request_path=path,
        request_headers=[("User-Agent", "medlineplus-archive/0.1"), ("Accept", "text/html")],
        fetched_at=datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
    )


@pytest.fixture
def warc_file(tmp_path: Path) -> tuple[Path, list[int]]:
    path = tmp_path / "run.warc.gz"
    with WarcFileWriter(path, "warc/run.warc.gz") as writer:
        offsets = [
            writer.write(_raw("/asthma.html"), "https://medlineplus.gov/asthma.html").offset,
            writer.write(
                _raw("/acne.html", b"x" * 5000), "https://medlineplus.gov/acne.html"
            ).offset,
        ]
        assert writer.records == 4
    return path, offsets


def test_round_trip_by_offset(warc_file: tuple[Path, list[int]]) -> None:
    path, (first, second) = warc_file
    response = read_response(path, first)
    assert response.body == PAGE
    assert response.status == 200
    assert response.target_uri == "https://medlineplus.gov/asthma.html"
    assert response.fetched_from == "http://127.0.0.1:8000/asthma.html"
    assert response.date == "2026-01-02T03:04:05.600000Z"
    assert str(response.payload_digest).startswith("sha1:")
    names = [name.lower() for name, _ in response.headers]
    assert not {"transfer-encoding", "content-encoding"} & set(names)
    assert read_response(path, second).body == b"x" * 5000


def test_iterating_a_file_finds_every_response_with_its_offset(
    warc_file: tuple[Path, list[int]],
) -> None:
    path, offsets = warc_file
    found = list(iter_responses(path))
    assert [r.offset for r in found] == offsets
    assert [r.body for r in found] == [PAGE, b"x" * 5000]
    assert [r.target_uri for r in found] == [
        "https://medlineplus.gov/asthma.html",
        "https://medlineplus.gov/acne.html",
    ]


def test_warcio_check_passes(warc_file: tuple[Path, list[int]]) -> None:
    path, _ = warc_file
    checked = subprocess.run(
        [sys.executable, "-m", "warcio.cli", "check", "-v", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "digest pass" in checked.stdout


def test_a_wrong_offset_or_a_changed_byte_is_reported(
    warc_file: tuple[Path, list[int]], tmp_path: Path
) -> None:
    path, (first, _) = warc_file
    with pytest.raises(ArchiveCorruptError, match="offset"):
        read_response(path, first + 3)
    # rewrite the second record with one byte of its page changed: its digest no longer holds
    tampered = tmp_path / "tampered.warc.gz"
    with WarcFileWriter(tampered, "tampered") as writer:
        location = writer.write(
            _raw("/acne.html", b"x" * 5000), "https://medlineplus.gov/acne.html"
        )
    data = bytearray(tampered.read_bytes())
    member = gzip.decompress(bytes(data[location.offset :]))
    changed = member.replace(b"xxxxx", b"xxxxy", 1)
    tampered.write_bytes(bytes(data[: location.offset]) + gzip.compress(changed))
    with pytest.raises(ArchiveCorruptError, match="digest"):
        read_response(tampered, location.offset)
