"""Where `open_archive` was imported from before the archive code moved into layers
(`pipelines.notebook` now): notebooks that say `from pipelines.load import open_archive`
keep working."""

from pipelines.notebook import Archive, open_archive

__all__ = ["Archive", "open_archive"]
