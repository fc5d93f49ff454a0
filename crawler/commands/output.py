"""Where a command writes a file the user names (`--out`, `--stats-json`), for every command.

The rules, checked by `output_path` before the command does any work (exit 2 otherwise):

* `-` is standard output (text only; a directory cannot go there);
* the folder the file goes into exists and is writable;
* a symlink is written through: the file written is the one it points to (following every
  link), and the link itself is never replaced;
* what is already there is a regular file (replaced) or nothing; a directory, FIFO,
  socket or device is refused, and so is a symlink to one (a directory output, a parquet
  snapshot, takes an empty directory instead).

Files are written whole or not at all: into a temporary file beside the target, flushed to
disk, then renamed onto it (`os.replace`), so a reader sees the old file or the complete
new one.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from crawler.commands.common import OutputWriteError, UsageError
from crawler.commands.formats import emit
from pipelines.core.layout import fsync_dir

STDOUT = "-"
"""The path that names standard output."""


@dataclass(frozen=True)
class OutputPath:
    """An output the command may write: `target` is None for standard output."""

    option: str
    """The option that named it, for messages: "--out"."""
    given: str
    """The path as the user gave it, for messages."""
    target: Path | None
    """The file (or directory) written: `given` with every symlink followed."""


def output_path(option: str, given: str | Path, *, directory: bool = False) -> OutputPath:
    """Check where `option` asks to write, before any work; UsageError when it cannot be.

    `directory`: the output is a directory (an absent or empty one is replaced whole)
    rather than one file.
    """
    given = str(given)
    if given == STDOUT:
        if directory:
            raise ValueError("a directory cannot go to standard output")
        return OutputPath(option, given, None)
    path = Path(given)
    try:
        target = path.resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop
        raise UsageError(f"{option}: cannot use {given}: {error}") from error
    named = f"{given} (a link to {target})" if path.is_symlink() else given
    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"{option}: no such directory: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option}: cannot write into {folder}: not writable")
    try:
        mode = target.stat().st_mode
        occupied = stat.S_ISDIR(mode) and any(target.iterdir())
    except FileNotFoundError:
        return OutputPath(option, given, target)
    except OSError as error:
        raise UsageError(f"{option}: cannot use {named}: {error.strerror or error}") from error
    if directory:
        if occupied or not stat.S_ISDIR(mode):
            raise UsageError(f"{option}: {named} already exists; give a new or empty directory")
    elif not stat.S_ISREG(mode):
        raise UsageError(f"{option}: {named} is {_kind(mode)}, not a regular file; give a file")
    return OutputPath(option, given, target)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "something else"


def write_text(output: OutputPath, write: Callable[[IO[str]], object]) -> None:
    """Write text through `write` to standard output, or atomically to the file.

    An existing file keeps its permissions. OutputWriteError (exit 3) when the write
    fails (the old file, if any, is then left as it was, with no temporary file beside it).
    """
    if output.target is None:
        buffer = io.StringIO()
        write(buffer)
        emit(buffer.getvalue())
        return

    def fill(descriptor: int) -> None:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())

    _write_file(output, fill)


def write_bytes(output: OutputPath, data: bytes) -> None:
    """Write `data` as it is to standard output, or atomically to the file (as
    `write_text` does)."""
    if output.target is None:
        emit(data)
        return

    def fill(descriptor: int) -> None:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())

    _write_file(output, fill)


def _write_file(output: OutputPath, fill: Callable[[int], None]) -> None:
    """Create a temporary file beside the target (with the target's permissions, when it
    exists), `fill` it through its descriptor (closing it), then rename it onto the target."""
    target = output.target
    if target is None:
        raise ValueError("standard output is not a file")
    temporary = _temporary(target)
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            _keep_permissions(target, descriptor)
        except OSError:
            os.close(descriptor)
            raise
        fill(descriptor)
        temporary.replace(target)  # atomic: os.replace
        fsync_dir(target.parent)
    except OSError as error:
        raise _write_failed(output, error) from error
    finally:
        temporary.unlink(missing_ok=True)  # left only when something failed


def write_directory(output: OutputPath, write: Callable[[Path], None]) -> None:
    """Fill a temporary directory beside the target through `write`, then rename it onto
    the target (absent or an empty directory). OutputWriteError (exit 3) when that fails."""
    if output.target is None:
        raise ValueError("a directory cannot go to standard output")
    target = output.target
    temporary = _temporary(target)
    try:
        temporary.mkdir()
        write(temporary)
        fsync_dir(temporary)
        temporary.replace(target)  # atomic: os.replace, onto nothing or an empty directory
        fsync_dir(target.parent)
    except OSError as error:
        raise _write_failed(output, error) from error
    finally:
        shutil.rmtree(temporary, ignore_errors=True)  # left only when something failed


def _write_failed(output: OutputPath, error: OSError) -> OutputWriteError:
    """A write that was checked and allowed but failed (a full disk): exit 3."""
    return OutputWriteError(
        f"{output.option}: cannot write {output.given}: {error.strerror or error}"
    )


def _temporary(target: Path) -> Path:
    """A new name beside `target`, hidden and unique to this write."""
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _keep_permissions(target: Path, descriptor: int) -> None:
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return
    os.fchmod(descriptor, stat.S_IMODE(mode))
