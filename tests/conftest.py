"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.crawl_runner import PERMISSIVE_ROBOTS
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
