"""Where an archive is: a local folder (`pathlib.Path`) or a prefix in an S3 bucket.

Readers of an archive use a handful of `pathlib.Path` methods (`/`, `name`, `iterdir`,
`read_bytes`, `read_text`) and pyarrow's Parquet readers. `ObjectPath` offers
those methods for an object under an `s3://bucket/prefix`, through pyarrow's own S3
filesystem (no other dependency), so the code that reads manifests, checkpoints and
tables works on both; `pyarrow_source` gives pyarrow's readers the filesystem to use.
Local paths stay plain `Path`s, read as before.

The S3 endpoint, region and credentials come from the standard AWS environment variables
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` or
`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`), or the AWS config
files. pyarrow ignores `AWS_ENDPOINT_URL` (apache/arrow#49643), so it is passed here as
`endpoint_override`, with the scheme its URL gives (http for a local MinIO or moto).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from pipelines.core.errors import ObjectStorageError

S3_SCHEME = "s3://"
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
"""The endpoint's URL, service-specific first, as the AWS command line reads them."""
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
_T = TypeVar("_T")


def split_s3_url(url: str) -> tuple[str, str]:
    """The bucket and the prefix (no slashes around it, maybe empty) of `s3://bucket/prefix`;
    ValueError naming what is wrong otherwise."""
    if not url.startswith(S3_SCHEME):
        raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
    bucket, _, prefix = url[len(S3_SCHEME) :].partition("/")
    prefix = prefix.strip("/")
    if not bucket or "?" in url or "#" in url:
        raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ValueError(f"{url!r}: the prefix has an empty, '.' or '..' part")
    return bucket, prefix


def s3_options(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Keyword arguments of `pyarrow.fs.S3FileSystem` taken from the AWS environment
    variables: the endpoint (with its scheme) and the region, when set."""
    options: dict[str, Any] = {}
    endpoint = next((environ[name] for name in ENDPOINT_VARIABLES if environ.get(name)), None)
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        options["scheme"] = parts.scheme
    region = next((environ[name] for name in REGION_VARIABLES if environ.get(name)), None)
    if region:
        options["region"] = region
    return options


def endpoint_name(environ: Mapping[str, str] = os.environ) -> str:
    """The endpoint in use, for messages: the environment's, else AWS's own."""
    endpoint = next((environ[name] for name in ENDPOINT_VARIABLES if environ.get(name)), None)
    return endpoint or "AWS's endpoint"


def s3_filesystem() -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem configured from the environment (see the module docstring)."""
    return pafs.S3FileSystem(**s3_options())


class ObjectPath:
    """An object (or a prefix, as a folder) in an S3 bucket, read like a `pathlib.Path`.

    Missing objects raise FileNotFoundError, as a missing file does; any other failure
    (an endpoint that cannot be reached, credentials refused) raises ObjectStorageError,
    which names the URL and is not an OSError, so readers do not take it for a damaged
    file.
    """

    __slots__ = ("filesystem", "key")

    def __init__(self, filesystem: pafs.FileSystem, key: str) -> None:
        self.filesystem = filesystem
        """The S3 filesystem (see `s3_filesystem`)."""
        self.key = key.rstrip("/")
        """"bucket/prefix/...", as pyarrow's filesystem names it."""

    @classmethod
    def from_url(cls, url: str) -> ObjectPath:
        """The prefix `s3://bucket/prefix`, on the S3 filesystem the environment configures."""
        bucket, prefix = split_s3_url(url)
        return cls(s3_filesystem(), f"{bucket}/{prefix}" if prefix else bucket)

    def __truediv__(self, relative: str) -> ObjectPath:
        return ObjectPath(self.filesystem, f"{self.key}/{relative}")

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.key}"

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    @property
    def name(self) -> str:
        """The last part of the key."""
        return self.key.rpartition("/")[2]

    def iterdir(self) -> Iterator[ObjectPath]:
        """The objects and prefixes right under this prefix; FileNotFoundError when none."""
        selector = pafs.FileSelector(self.key, recursive=False)
        infos = self._call("list", self.filesystem.get_file_info, selector)
        return iter([ObjectPath(self.filesystem, info.path) for info in infos])

    def read_bytes(self) -> bytes:
        """The object's content; FileNotFoundError when there is no such object."""

        def read() -> bytes:
            with self.filesystem.open_input_stream(self.key, compression=None) as stream:
                return bytes(stream.read())

        return self._call("read", read)

    def open(self, mode: str = "rb") -> pa.NativeFile:
        """The object for reading at any offset (mode "rb" only, as for a WARC record)."""
        if mode != "rb":
            raise ValueError(f"{self} is read-only: cannot open it in mode {mode!r}")
        return self._call("open", self.filesystem.open_input_file, self.key)

    def read_text(self, encoding: str = "utf-8") -> str:
        """The object's content decoded."""
        return self.read_bytes().decode(encoding)

    def _call(self, verb: str, function: Callable[..., _T], *arguments: Any) -> _T:
        try:
            return function(*arguments)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise ObjectStorageError(
                self, f"cannot {verb}", error, endpoint=endpoint_name()
            ) from error


ArchivePath = Path | ObjectPath
"""Where an archive (or one of its files) is: a local path, or an object in S3."""


def archive_location(location: Path | str) -> ArchivePath:
    """An `s3://bucket/prefix` URL as an ObjectPath, anything else as a local Path."""
    if isinstance(location, str) and location.startswith(S3_SCHEME):
        return ObjectPath.from_url(location)
    return Path(location)


def pyarrow_source(path: ArchivePath) -> tuple[str, pafs.FileSystem | None]:
    """`path` as pyarrow's Parquet readers take it: a local path with no filesystem (their
    default, as for any local file), or an object's key with its S3 filesystem."""
    if isinstance(path, ObjectPath):
        return path.key, path.filesystem
    return str(path), None
