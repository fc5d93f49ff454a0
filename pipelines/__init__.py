"""Item pipelines and the pure archive code (schema, store, load, changes, report).

The archive modules never import Scrapy, so a notebook can load the archive without Twisted.
"""
