"""Parsing, the lowest layer: the typed items (`items`, defined once), HTML bytes in and
items out (`health_topic`), URLs, and the readers of NLM's XML dump and of the sitemaps
(`xml_dump`, `discovery`, which fetch their file with urllib). Imports lxml, never
Scrapy nor the archive."""

from crawler.parsing.errors import ExtractionError
from crawler.parsing.health_topic import parse_health_topic

__all__ = ["ExtractionError", "parse_health_topic"]
