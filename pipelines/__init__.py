"""The archive and the Scrapy item pipelines that write it, in layers (ARCHITECTURE.md):
`pipelines.core` (the table format), `pipelines.archive` (the domain),
`pipelines.changes.detection` (change detection and reports); at the top the item pipelines
(`validate`, `dedupe`, `archiving`) and `pipelines.notebook` (`open_archive`).

Nothing below the item pipelines imports Scrapy, so a notebook loads the archive without
Twisted.
"""
