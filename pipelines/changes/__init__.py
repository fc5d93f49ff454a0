"""Change detection (`pipelines.changes.detection`) and its reports
(`pipelines.changes.reports`), on the archive domain."""
