"""The table-format core: the only code that knows the archive's files (manifests, Parquet
parts, staging, the lock, recovery, compaction, vacuum, verification, the WARC files,
object storage). It imports nothing from the layers above it (see ARCHITECTURE.md)."""
