"""A small tmpfs for tests of full or read-only disks (tests run as root, where file
modes do not stop writes): mounted for one test, unmounted after it, and the test
skipped cleanly where mounting is not permitted."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TMPFS_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Mount:
    """A tmpfs mounted for one test, unmounted after it."""

    path: Path

    def run(self, *options: str) -> None:
        subprocess.run(["mount", *options], check=True, capture_output=True, timeout=30)


@contextmanager
def mounted_tmpfs(path: Path, size: int = TMPFS_BYTES) -> Iterator[Mount]:
    """A tmpfs of `size` bytes at `path` (made here); skips the test where mounting is
    not permitted."""
    path.mkdir()
    mount = Mount(path)
    try:
        mount.run("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True, timeout=30)
