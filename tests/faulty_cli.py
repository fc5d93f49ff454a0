"""The command line with one storage fault injected from outside (tests only).

``python -m tests.faulty_cli crash|fail POINT ARGUMENTS...`` runs
``medlineplus-archive ARGUMENTS...`` with the store's file functions wrapped so that, at
one point of a run's commit, the process kills itself with SIGKILL (``crash``: a power
cut) or the write raises ``OSError(EROFS)`` (``fail``: a disk gone read-only). The points:

* ``commit``: before anything of the run is written (its first staging file);
* ``staging_written``: the run's files written and synced in its staging directory;
* ``parts_moved``: the files moved into the table directories, the manifest not written.

Production code knows nothing of this: the wrappers replace `write_file_durably`,
`fsync_dir` and `write_json_atomically` in `pipelines.core.store` only in this process.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

POINTS = ("commit", "staging_written", "parts_moved")
"""Where a fault can be injected (see the module docstring)."""

_WRAPPED = {
    "commit": "write_file_durably",
    "staging_written": "fsync_dir",
    "parts_moved": "write_json_atomically",
}
"""The store function at whose call in the staging directory (`commit`,
`staging_written`) or for the run's manifest (`parts_moved`) each point is."""


def _at_point(point: str, path: Path) -> bool:
    if point == "commit":
        return path.parent.parent.name == "_staging"
    if point == "staging_written":
        return path.parent.name == "_staging"
    return path.parent.name == "_runs"


def _fault(action: str, point: str, path: Path) -> None:
    if action == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    message = f"{os.strerror(errno.EROFS)} (fault injected at {point})"
    raise OSError(errno.EROFS, message, str(path))


def inject(action: str, point: str) -> None:
    """Wrap the store function of `point` to crash or fail there (once reached)."""
    from pipelines.core import store

    name = _WRAPPED[point]
    original: Callable[..., Any] = getattr(store, name)

    @wraps(original)
    def faulty(path: Path, *arguments: Any, **options: Any) -> Any:
        if not _at_point(point, Path(path)):
            return original(path, *arguments, **options)
        if point == "staging_written":  # after the sync: the files are on disk
            original(path, *arguments, **options)
        _fault(action, point, Path(path))
        return None  # not reached: _fault kills or raises

    setattr(store, name, faulty)


def main(arguments: list[str]) -> int:
    action, point, *rest = arguments
    if action not in {"crash", "fail"} or point not in POINTS:
        raise SystemExit(f"usage: faulty_cli crash|fail {'|'.join(POINTS)} ARGUMENTS...")
    inject(action, point)
    from crawler.commands.cli import main as cli_main

    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
