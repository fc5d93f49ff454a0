"""The write lock is the archive folder's own: deleting or replacing `.lock` (the
holder's pid, information only) never lets a second writer in."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crawler.commands.cli import main
from pipelines.core.errors import ArchiveLockedError
from pipelines.core.layout import LOCK_FILE
from pipelines.core.lock import KERNEL_LOCKS
from pipelines.core.store import ArchiveStore
from tests.crawl_runner import CLI, QUICK, run_cli
from tests.site_server import SiteServer

PAGES = ["/asthma.html", "/acne.html", "/anemia.html"]


def _locked_message(archive: Path, pid: int | None) -> str:
    holder = f"pid {pid}" if pid is not None else "pid unknown"
    return (
        f"another crawl is writing {archive} ({holder}); "
        "wait for it to finish or pass a different --archive"
    )


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda lock: lock.unlink(), id="deleted"),
        pytest.param(lambda lock: lock.write_text("not a pid\n"), id="overwritten"),
    ],
)
def test_tampering_with_the_lock_file_keeps_the_lock(
    tmp_path: Path, tamper: Callable[[Path], object]
) -> None:
    if not KERNEL_LOCKS.exists():
        pytest.skip("no /proc/locks: the holder's pid cannot be looked up")
    with ArchiveStore.open(tmp_path):
        tamper(tmp_path / LOCK_FILE)
        with pytest.raises(ArchiveLockedError) as raised:
            ArchiveStore.open(tmp_path)
    assert raised.value.pid == os.getpid()  # from the kernel's table of locks
    assert str(raised.value) == _locked_message(tmp_path, os.getpid())
    with ArchiveStore.open(tmp_path) as store:  # released on close all the same
        assert not store.read_only


@pytest.fixture
def first_crawl(quick_site: SiteServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A crawl of PAGES in a child process, logging to tmp_path/first.log; its pages are
    answered slowly, so it is still running when the test stops it (SIGSTOP)."""
    quick_site.slow_down(1.0, PAGES)
    command = [*CLI, "crawl", "--base-url", quick_site.base_url]
    command += ["--archive", str(tmp_path / "archive"), *QUICK, "--log-level", "INFO"]
    command += [option for page in PAGES for option in ("--url", f"https://medlineplus.gov{page}")]
    with (tmp_path / "first.log").open("w") as log:
        process = subprocess.Popen(command, stderr=log)
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait()


def _wait_for_line(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while text not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no {text!r} in 60 s:\n{log.read_text()}"
        time.sleep(0.05)


def test_a_second_crawl_exits_3_though_the_lock_file_of_a_running_one_was_deleted(
    first_crawl: subprocess.Popen[bytes],
    quick_site: SiteServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = tmp_path / "archive"
    _wait_for_line(tmp_path / "first.log", " started in ", first_crawl)  # its run began
    first_crawl.send_signal(signal.SIGSTOP)  # still running, holding the lock
    try:
        (archive / LOCK_FILE).unlink()
        second = run_cli("crawl", "--base-url", quick_site.base_url, "--archive", archive, *QUICK)
    finally:
        first_crawl.send_signal(signal.SIGCONT)
    assert second.returncode == 3, second
    lines = second.stderr.splitlines()
    holder = first_crawl.pid if KERNEL_LOCKS.exists() else None  # .lock is gone
    assert lines == [f"error: {_locked_message(archive, holder)}"], second

    assert first_crawl.wait(timeout=120) == 0, (tmp_path / "first.log").read_text()
    assert main(["verify", "--archive", str(archive)]) == 0
    capsys.readouterr()
    [run] = (archive / "_runs").glob("*.json")  # the first crawl's run, and no other
    assert run.is_file()
