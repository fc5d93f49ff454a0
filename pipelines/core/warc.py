"""Raw pages in the standard web-archive format (WARC, gzipped per record), with warcio.

A run keeps the HTTP exchange of each new version it stores: a `response` record (the
page as received, `WARC-Target-URI` the canonical https://medlineplus.gov URL, payload
digest computed by warcio) followed by its `request` record. Each topics row records
the WARC file and the offset of its response record, so any version can be re-extracted
or replayed. Pure: no Scrapy.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import urlsplit

from isal import isal_zlib
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from crawler.parsing.items import EncodedExchange, RawResponse
from pipelines.core.errors import ArchiveCorruptError
from pipelines.core.storage import ArchivePath

WARC_DIR = "warc"
"""The archive's directory of WARC files: one per run that stored a new version."""

FETCHED_FROM = "WARC-X-Fetched-From"
"""Our own WARC header: the URL actually fetched (a mirror's), when not the canonical one."""

_HOP_BY_HOP = frozenset({"transfer-encoding", "content-encoding", "content-length", "connection"})
"""Headers describing the transfer, not the page: the stored body is the decoded page."""


def warc_path(run_id: str) -> str:
    """The WARC file of run `run_id`, relative to the archive root."""
    return f"{WARC_DIR}/{run_id}.warc.gz"


@dataclass(frozen=True, slots=True)
class WarcLocation:
    """Where one response record is."""

    file: str
    """The WARC file's path relative to the archive root, e.g. warc/<run_id>.warc.gz."""
    offset: int
    """Byte offset of the response record (a gzip member) in the file."""


@dataclass(frozen=True, slots=True)
class ArchivedResponse:
    """A response record read back from a WARC file."""

    target_uri: str
    fetched_from: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    date: str
    payload_digest: str | None
    offset: int


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


GZIP_LEVEL = 1
"""Each record is its own gzip member (the WARC convention, so a record can be read at its
offset), compressed by ISA-L (python-isal): plain gzip that any reader takes. Its level 1
compresses a page six times faster than zlib's level 3 into a slightly smaller member
(measured on the corpus: 0.09 ms and 14.7 KB against 0.54 ms and 15.0 KB); zlib was
the largest single cost of a crawl after parsing."""


def encode_exchange(raw: RawResponse, target_uri: str) -> bytes:
    """`raw` as WARC records, ready to append to a WARC file: its response record, then its
    request record, each its own gzip member. Pure, so a crawl can encode pages in the
    worker processes that extract them."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=False, warc_version="1.1")
    headers = [(k, v) for k, v in raw.headers if k.lower() not in _HOP_BY_HOP]
    headers.append(("Content-Length", str(len(raw.body))))
    http_headers = StatusAndHeaders(
        f"{raw.status} {raw.reason}".strip(), headers, protocol="HTTP/1.1"
    )
    warc_headers: dict[str, str] = {"WARC-Date": _iso(raw.fetched_at)}
    if raw.url != target_uri:
        warc_headers[FETCHED_FROM] = raw.url
    response = writer.create_warc_record(
        target_uri,
        "response",
        payload=io.BytesIO(raw.body),
        length=len(raw.body),
        http_headers=http_headers,
        warc_headers_dict=warc_headers,
    )
    request = writer.create_warc_record(
        target_uri,
        "request",
        http_headers=StatusAndHeaders(
            f"GET {raw.request_path} HTTP/1.1", list(raw.request_headers), is_http_request=True
        ),
        warc_headers_dict={"WARC-Date": _iso(raw.fetched_at)},
    )
    request.rec_headers.add_header(
        "WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID")
    )
    members = []
    for record in (response, request):
        buffer.seek(0)
        buffer.truncate()
        writer.write_record(record)
        compressor = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, isal_zlib.MAX_WBITS + 16)
        members.append(compressor.compress(buffer.getvalue()) + compressor.flush())
    return b"".join(members)


class WarcFileWriter:
    """Appends request/response pairs to one gzipped WARC file."""

    def __init__(self, path: Path, relative_name: str) -> None:
        self.path = path
        self.relative_name = relative_name
        self._stream: IO[bytes] = path.open("ab")
        self.records = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, raw: RawResponse, target_uri: str) -> WarcLocation:
        """Write `raw` as a response record (then its request record); where it starts."""
        records = encode_exchange(raw, target_uri)
        return self.append(EncodedExchange(target_uri=target_uri, records=records))

    def next_location(self) -> WarcLocation:
        """Where the next exchange appended will start."""
        return WarcLocation(file=self.relative_name, offset=self._stream.tell())

    def append(self, exchange: EncodedExchange) -> WarcLocation:
        """Append an exchange `encode_exchange` made; where its response record starts."""
        offset = self._stream.tell()
        self._stream.write(exchange.records)
        self.records += 2
        return WarcLocation(file=self.relative_name, offset=offset)

    def close(self) -> None:
        if not self._stream.closed:
            try:
                self._stream.flush()
            finally:  # the file is closed even when its last bytes cannot be written
                self._stream.close()


def _response_from(record: Any, offset: int) -> ArchivedResponse:
    http = record.http_headers
    status = int(http.get_statuscode()) if http is not None else 0
    body = record.content_stream().read()
    target = record.rec_headers.get_header("WARC-Target-URI")
    return ArchivedResponse(
        target_uri=target,
        fetched_from=record.rec_headers.get_header(FETCHED_FROM) or target,
        status=status,
        headers=list(http.headers) if http is not None else [],
        body=body,
        date=record.rec_headers.get_header("WARC-Date") or "",
        payload_digest=record.rec_headers.get_header("WARC-Payload-Digest"),
        offset=offset,
    )


_RECORD_STARTS = (b"\x1f\x8b", b"WARC/")
"""A WARC record starts with a gzip member's magic number or, uncompressed, its version line."""


def read_response(path: ArchivePath, offset: int) -> ArchivedResponse:
    """The response record starting at `offset` of the WARC file at `path`, its digests
    checked; ArchiveCorruptError when it is missing, not a response, or does not match."""
    try:
        with path.open("rb") as stream:
            stream.seek(offset)
            if not stream.read(5).startswith(_RECORD_STARTS):  # warcio reads on past garbage
                raise ArchiveCorruptError(f"{path}: no record starts at offset {offset}")
            stream.seek(offset)
            records = ArchiveIterator(stream, check_digests=True)
            record = next(records, None)
            if record is None or record.rec_type != "response":
                raise ArchiveCorruptError(f"{path}: no response record at offset {offset}")
            response = _response_from(record, offset)
            if record.digest_checker.passed is False:
                problems = "; ".join(map(str, record.digest_checker.problems))
                raise ArchiveCorruptError(
                    f"{path}: record at offset {offset} fails its digest check ({problems})"
                )
            return response
    except (OSError, ArchiveLoadFailed, ValueError, EOFError) as error:
        raise ArchiveCorruptError(
            f"{path}: cannot read the record at offset {offset}: {error}"
        ) from error


def iter_responses(path: Path) -> Iterator[ArchivedResponse]:
    """Every response record of a WARC file (ours or any standard one), in file order."""
    try:
        with path.open("rb") as stream:
            records = ArchiveIterator(stream)
            for record in records:
                if record.rec_type == "response":
                    # read the record before asking its offset: asking reads it to the end
                    response = _response_from(record, 0)
                    yield dataclasses.replace(response, offset=records.get_record_offset())
    except (OSError, ArchiveLoadFailed) as error:
        raise ArchiveCorruptError(f"{path}: not a readable WARC file: {error}") from error


def check_readable(path: Path) -> None:
    """ArchiveCorruptError unless `path` opens as a WARC file: its first record is read."""
    try:
        with path.open("rb") as stream:
            first = next(iter(ArchiveIterator(stream)), None)
    except (OSError, ArchiveLoadFailed) as error:
        raise ArchiveCorruptError(f"{path}: not a readable WARC file: {error}") from error
    if first is None:
        raise ArchiveCorruptError(f"{path}: not a readable WARC file: it holds no record")


def valid_response_offsets(path: Path) -> set[int]:
    """Offsets of the response records of a WARC file whose digests hold (one pass)."""
    offsets: set[int] = set()
    try:
        with path.open("rb") as stream:
            records = ArchiveIterator(stream, check_digests=True)
            for record in records:
                if record.rec_type != "response":
                    continue
                record.content_stream().read()
                if record.digest_checker.passed is not False:
                    offsets.add(records.get_record_offset())
    except (OSError, ArchiveLoadFailed, ValueError, EOFError):
        return offsets
    return offsets


def raw_from_archived(archived: ArchivedResponse, fetched_at: datetime) -> RawResponse:
    """The exchange of a response record, as the crawler would have kept it."""
    return RawResponse(
        url=archived.fetched_from,
        status=archived.status,
        reason="",
        headers=archived.headers,
        body=archived.body,
        request_path=urlsplit(archived.fetched_from).path,
        request_headers=[],
        fetched_at=fetched_at,
    )
