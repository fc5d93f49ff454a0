"""What a notebook calls, and the commands too: `open_archive(path)`.

`open_archive(path).topics(as_of=...)` and the other readers come from
`pipelines.archive.load.ArchiveReader` (see its module for the backends and the two
clocks); `Archive.changes(a, b)` adds change detection (`pipelines.changes`), which sits
on the readers: this module is above both, so neither imports the other's layer upward.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import pandas as pd
import pyarrow as pa

from pipelines.archive.as_of import AsOf
from pipelines.archive.load import ArchiveReader, Backend, Frame
from pipelines.changes.detection import compare
from pipelines.core.store import ArchiveStore

if TYPE_CHECKING:
    import polars as pl


class Archive(ArchiveReader[Frame]):
    """A read-only view of an archive's committed runs, as they were when it was opened,
    with change detection between any two points of it.

    Its table methods return `Frame`: the tables of the backend it was opened with.
    """

    def changes(self, a: AsOf, b: AsOf, *, language: str | None = None) -> Frame:
        """What changed between `a` and `b`: one row per changed topic
        (`pipelines.changes.detection.ChangeSet.to_frame`)."""
        return self._convert(compare(self._as_pandas(), a, b, language=language).to_table())

    def _as_pandas(self) -> ArchiveReader[pd.DataFrame]:
        """This archive with the pandas backend (what `pipelines.changes` works on)."""
        if self.backend == "pandas":
            return self  # type: ignore[return-value]
        view = ArchiveReader(self.store)
        view._tables = self._tables
        return view


@overload
def open_archive(
    path: Path | str, backend: Literal["pandas"] = "pandas"
) -> Archive[pd.DataFrame]: ...
@overload
def open_archive(path: Path | str, backend: Literal["arrow"]) -> Archive[pa.Table]: ...
@overload
def open_archive(path: Path | str, backend: Literal["polars"]) -> Archive[pl.DataFrame]: ...
def open_archive(path: Path | str, backend: Backend = "pandas") -> Archive[Any]:
    """Open the archive at `path` for reading (no lock; works during a crawl): a folder, or
    an `s3://bucket/prefix` it was published to (`pipelines.core.publish`; S3 settings from
    the AWS environment variables, see `pipelines.core.storage`). Its table methods return
    `backend`'s tables (see `pipelines.archive.load`).

    ValueError for an unknown backend; ImportError when Polars is asked for and missing.
    """
    return Archive(ArchiveStore.open(path, read_only=True), backend)
