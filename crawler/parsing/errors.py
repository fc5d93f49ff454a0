"""The crawler package's exception root and its subclasses."""

from __future__ import annotations


class CrawlerError(Exception):
    """Root of every error raised by the `crawler` package."""


class ExtractionError(CrawlerError):
    """A page could not be turned into a complete `HealthTopicPage`.

    Carries the page URL and the field that could not be extracted, so a caller can
    count failures per field and a person can open the page that failed.
    """

    def __init__(self, url: str, field: str, reason: str) -> None:
        self.url = url
        self.field = field
        self.reason = reason
        super().__init__(f"{url}: {reason} (field {field!r})")

    def __reduce__(self) -> tuple[type[ExtractionError], tuple[str, str, str]]:
        """Pickled by its fields, so it crosses from an extraction worker intact."""
        return type(self), (self.url, self.field, self.reason)


class ExtractionStoppedError(CrawlerError):
    """A page was not extracted because its crawl is being stopped (a signal): it is left
    out of the run, neither a version nor an error."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"{url}: not extracted, the crawl is stopping")
