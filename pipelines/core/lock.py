"""The archive's write lock: one process writes an archive folder at a time.

The lock is an `flock` on the archive folder itself, not on a file in it: deleting or
replacing a file cannot release it, and the folder cannot go away while it holds an
archive. The holder also writes its pid to `.lock`, for the message another writer
gets; that file is information only, and when it is missing (deleted under a running
crawl) the pid is looked up in the kernel's table of locks (`/proc/locks`).
The kernel releases the lock when its holder exits, however it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from pipelines.core.errors import ArchiveLockedError, ArchiveUnwritableError
from pipelines.core.layout import LOCK_FILE

logger = logging.getLogger(__name__)

KERNEL_LOCKS = Path("/proc/locks")
"""Linux's table of the locks held: one line per lock, its holder's pid and inode."""


class ArchiveLock:
    """The exclusive write lock of one archive folder, held from `acquire` to `release`."""

    def __init__(self, root: Path, folder: int) -> None:
        self.root = root
        """The archive folder locked."""
        self._folder: int | None = folder

    @classmethod
    def acquire(cls, root: Path) -> Self:
        """Lock the archive folder `root` and write this process's pid to its `.lock`.

        ArchiveLockedError naming the holder's pid when another writer holds the lock;
        OSError when the folder cannot be opened or `.lock` written (a full or read-only
        disk).
        """
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise ArchiveLockedError(root, _holder(root, os.fstat(folder))) from error
            (root / LOCK_FILE).write_text(f"{os.getpid()}\n", encoding="ascii")
        except BaseException:
            os.close(folder)  # closing the folder releases the lock
            raise
        return cls(root, folder)

    @property
    def held(self) -> bool:
        """True until `release`."""
        return self._folder is not None

    def release(self) -> None:
        """Empty `.lock` (when it is still there) and unlock. Safe to call twice."""
        folder, self._folder = self._folder, None
        if folder is None:
            return
        pid_file = self.root / LOCK_FILE
        try:
            os.truncate(pid_file, 0)
        except FileNotFoundError:
            pass
        except OSError as error:  # a disk gone read-only: the pid stays, the lock goes
            logger.warning("could not empty %s: %s", pid_file, error)
        finally:
            os.close(folder)


def _holder(root: Path, folder: os.stat_result) -> int | None:
    """The pid of the process holding the lock of `root`: from `.lock`, else from the
    kernel's table of locks; None when neither says."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        written = (root / LOCK_FILE).read_text(encoding="ascii").strip()
        if written.isdigit():
            return int(written)
    return _kernel_holder(folder)


def _kernel_holder(folder: os.stat_result) -> int | None:
    """The pid `/proc/locks` gives for the flock on `folder`; None without /proc."""
    device = f"{os.major(folder.st_dev):02x}:{os.minor(folder.st_dev):02x}:{folder.st_ino}"
    try:
        table = KERNEL_LOCKS.read_text(encoding="ascii")
    except OSError:
        return None
    for line in table.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 3639 fe:00:2402999 0 EOF"
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
            return int(fields[4]) if fields[4].isdigit() else None
    return None


@contextlib.contextmanager
def write_locked(root: Path) -> Iterator[ArchiveLock]:
    """Hold the archive's write lock, without recovering (for `pipelines.core.repair`).

    ArchiveLockedError while a crawl holds it; ArchiveUnwritableError on a read-only or
    full disk.
    """
    try:
        lock = ArchiveLock.acquire(root)
    except OSError as error:
        raise ArchiveUnwritableError(root, error) from error
    try:
        yield lock
    finally:
        lock.release()
