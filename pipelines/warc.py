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
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from crawler.items import RawResponse
from pipelines.errors import ArchiveCorruptError

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


GZIP_LEVEL = 3
"""Each record is its own gzip member (the WARC convention, so a record can be read at its
offset). Level 3 compresses a page 7 times faster than warcio's level 9 for a file about
a fifth larger: level 9 was the largest single cost of a crawl."""


class WarcFileWriter:
    """Appends request/response pairs to one gzipped WARC file."""

    def __init__(self, path: Path, relative_name: str) -> None:
        self.path = path
        self.relative_name = relative_name
        self._stream: IO[bytes] = path.open("ab")
        self._buffer = io.BytesIO()
        self._writer = WARCWriter(self._buffer, gzip=False, warc_version="1.1")
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
        headers = [(k, v) for k, v in raw.headers if k.lower() not in _HOP_BY_HOP]
        headers.append(("Content-Length", str(len(raw.body))))
        http_headers = StatusAndHeaders(
            f"{raw.status} {raw.reason}".strip(), headers, protocol="HTTP/1.1"
        )
        warc_headers: dict[str, str] = {"WARC-Date": _iso(raw.fetched_at)}
        if raw.url != target_uri:
            warc_headers[FETCHED_FROM] = raw.url
        response = self._writer.create_warc_record(
            target_uri,
            "response",
            payload=io.BytesIO(raw.body),
            length=len(raw.body),
            http_headers=http_headers,
            warc_headers_dict=warc_headers,
        )
        request = self._writer.create_warc_record(
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
        offset = self._stream.tell()
        for record in (response, request):
            self._stream.write(self._member(record))
        self.records += 2
        return WarcLocation(file=self.relative_name, offset=offset)

    def _member(self, record: Any) -> bytes:
        """`record` serialised and gzipped as one member."""
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.write_record(record)
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS + 16)
        return compressor.compress(self._buffer.getvalue()) + compressor.flush()

    def close(self) -> None:
        if not self._stream.closed:
            self._stream.flush()
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


def read_response(path: Path, offset: int) -> ArchivedResponse:
    """The response record starting at `offset` of the WARC file at `path`, its digests
    checked; ArchiveCorruptError when it is missing, not a response, or does not match."""
    try:
        with path.open("rb") as stream:
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
