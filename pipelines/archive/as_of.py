"""As-of resolution, for every reader: which point of the archive a value names.

The two clocks (DESIGN.md section 3):

* None: the latest state, the current version of every topic live now;
* a `datetime.date`, or its text YYYY-MM-DD (valid time): for each topic its newest
  version with `last_updated <= D`, leaving out topics observed gone on or before D (UTC);
* a committed run id (transaction time): what the archive held right after that run.

`resolve_as_of` is the one parser of these values: the loaders (`Archive.topics(as_of=)`),
change detection's points and the commands' `--as-of`, `--from` and `--to` all use it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa

from pipelines.archive.versions import day_end
from pipelines.core.errors import ArchiveError, UnknownRunError
from pipelines.core.storage import ArchivePath

AsOf = date | str | None
"""None (now), a date (valid time) or a committed run id (transaction time); a date may
also be given as its text YYYY-MM-DD (the command line's)."""

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


class BadAsOfDateError(ArchiveError):
    """An as-of value of the form YYYY-MM-DD that is no real date (2024-13-01)."""


@dataclass(frozen=True, slots=True)
class RunCut:
    """Transaction time: the runs up to and including one run."""

    last_run: str


@dataclass(frozen=True, slots=True)
class DateCut:
    """Valid time: versions dated on or before `day`; gone-ness observed by its end (UTC)."""

    day: date

    @property
    def until(self) -> pa.TimestampScalar:
        """The first instant after `day`, as an Arrow timestamp (Python's datetime has
        none after 9999-12-31)."""
        return pa.scalar(day_end(self.day), pa.timestamp("us", tz="UTC"))


Cut = RunCut | DateCut | None
"""A resolved as-of value: None is the latest state."""


def resolve_as_of(value: AsOf, run_ids: Sequence[str], path: ArchivePath) -> Cut:
    """`value` as a cut of the archive at `path`, whose committed runs are `run_ids`.

    UnknownRunError for a string that is neither a committed run nor a YYYY-MM-DD date
    (run ids never look like dates); BadAsOfDateError for a YYYY-MM-DD string that is no
    real date; TypeError for anything but None, a date or a string (a datetime too: the
    valid-time clock counts days).
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        raise TypeError("as_of: pass a datetime.date (valid time) or a run id, not a datetime")
    if isinstance(value, date):
        return DateCut(value)
    if not isinstance(value, str):
        raise TypeError(f"as_of: expected None, a date or a run id, got {type(value).__name__}")
    if value in run_ids:
        return RunCut(value)
    if _ISO_DATE.match(value):
        try:
            return DateCut(date.fromisoformat(value))
        except ValueError as error:
            raise BadAsOfDateError(
                f"bad date {value!r} ({error}); give a real date as YYYY-MM-DD", path=path
            ) from None
    raise UnknownRunError(value, path)
