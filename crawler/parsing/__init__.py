"""Pure page parsing: HTML bytes in, typed items out. Imports lxml, never Scrapy."""

from crawler.parsing.errors import ExtractionError
from crawler.parsing.health_topic import parse_health_topic

__all__ = ["ExtractionError", "parse_health_topic"]
