"""Crawling side of medlineplus-archive: items, the pure page parser, spiders, settings."""
