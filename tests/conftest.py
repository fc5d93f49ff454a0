"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.site_server import SiteServer


@pytest.fixture
def site_server() -> Iterator[SiteServer]:
    """The fixture site (tests/fixtures/site) served on 127.0.0.1, stopped after the test."""
    with SiteServer() as server:
        yield server
