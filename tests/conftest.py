"""Shared pytest fixtures."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.crawl_runner import PERMISSIVE_ROBOTS, QUICK, crawl
from tests.site_server import SiteServer


@pytest.fixture
def site_server() -> Iterator[SiteServer]:
    """The fixture site (tests/fixtures/site) served on 127.0.0.1, stopped after the test."""
    with SiteServer() as server:
        yield server


@pytest.fixture
def quick_site(site_server: SiteServer) -> SiteServer:
    """The fixture site with robots.txt's Crawl-delay removed (Disallow rules kept)."""
    site_server.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
    return site_server


def _built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """The folder `name`, made by `build(folder)` once for the whole test session: under
    pytest-xdist the first worker to ask builds it (holding a lock in the session's
    shared temporary folder) and the others wait for it, rather than each crawl again."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-N/, shared by this session's workers (popen-gwN/ each)
    folder = root / name
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / f"{name}.built").exists():
            shutil.rmtree(folder, ignore_errors=True)  # left by a build that failed
            build(folder)
            (root / f"{name}.built").touch()
    return folder


def _crawl_the_fixture_site(archive: Path) -> None:
    with SiteServer() as server:
        server.replace_file("/robots.txt", PERMISSIVE_ROBOTS)
        result = crawl(server.base_url, archive, *QUICK)
    assert result.returncode == 0, result


@pytest.fixture(scope="session")
def one_full_crawl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive holding one full index crawl (QUICK, permissive robots.txt) of the fixture
    site, shared by every test of the session: read-only, copy it (`copy_archive`) first."""
    return _built_once(tmp_path_factory, "one_full_crawl", _crawl_the_fixture_site)


@pytest.fixture(scope="session")
def two_full_crawls(tmp_path_factory: pytest.TempPathFactory, one_full_crawl: Path) -> Path:
    """`one_full_crawl` and a second crawl of the unchanged site (no new version), shared
    by every test of the session: read-only, copy it (`copy_archive`) first."""

    def build(archive: Path) -> None:
        shutil.copytree(one_full_crawl, archive)
        _crawl_the_fixture_site(archive)

    return _built_once(tmp_path_factory, "two_full_crawls", build)
