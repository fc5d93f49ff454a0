"""Whether a crawl reached the site at all: an unreachable site is the environment
failing (exit 3, nothing committed), not pages failing.

The site could not be reached when its robots.txt failed at the network level (DNS
failure, connection refused, TLS failure, timeout, after retries: `crawler.robots`
records it and refuses every later request to the host), or when no request got any
HTTP answer and one failed at the network level (robots.txt not obeyed, a file: mirror
whose files are missing). Any HTTP answer, a 404 or a 500 too, means the site was
reached. The crawler's stats carry the evidence from the components that see it to the
pipeline that decides (`unreachable_reason`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROBOTS_UNREACHABLE = "archive/site/robots_unreachable"
"""Stats key: why the site's robots.txt could not be fetched (set by `crawler.robots`)."""
NETWORK_ERROR = "archive/site/network_error"
"""Stats key: the last request failure with no HTTP answer (set by the spider)."""
SITE_UNREACHABLE = "archive/site/unreachable"
"""Stats key: "<base URL> could not be reached (<why>)", set when the crawl ends."""
RESPONSES = "downloader/response_count"
"""Stats key (Scrapy's DownloaderStats): HTTP answers received, robots.txt included."""


def network_error_text(error: BaseException | None) -> str:
    """A request failure in a few words: its message ("Connection was refused by other
    side: 111: Connection refused"), or its type when it has none. A failure Twisted
    wraps with the failures under it (a TLS handshake that failed) is told by the first
    of those."""
    cause = getattr(error, "__cause__", None)
    wrapped = getattr(error, "reasons", None) or getattr(cause, "reasons", None)
    if wrapped:
        error = getattr(wrapped[0], "value", error)
    if type(error).__module__.startswith("OpenSSL"):
        # OpenSSL.SSL.Error([(library, function, reason), ...])
        steps = error.args[0] if error is not None and error.args else []
        reasons = [str(step[-1]) for step in steps if isinstance(step, tuple) and step]
        return f"TLS failure: {'; '.join(reasons) or type(error).__name__}"
    return str(error).strip().rstrip(".") or type(error).__name__


def unreachable_reason(stats: Mapping[str, Any]) -> str | None:
    """Why the crawl whose final stats are `stats` could not reach the site; None when
    it reached it (or fetched nothing at all, like a WARC replay)."""
    robots = stats.get(ROBOTS_UNREACHABLE)
    if robots:
        return f"robots.txt: {robots}"
    network = stats.get(NETWORK_ERROR)
    if network and not stats.get(RESPONSES):
        return str(network)
    return None
