"""The archive in DuckDB: its tables as views, its as-of questions as table macros.

`register_archive(store, connection)` (what `Archive.duckdb()` calls) registers, in a
DuckDB connection (temporary objects: nothing is written to a database file):

* views over the committed files in use (DuckDB's own `read_parquet` of the files the
  manifests list, each row once; DuckDB types of the archive's Arrow types): `runs`,
  `observations`, `journal_articles` (every row, as the `Archive` methods of the same
  names give them), `topic_versions`, `link_versions`, `clinical_trial_versions` (every
  stored version's rows);
* table macros answering as `Archive.topics(as_of=...)` does: `topics_as_of(DATE)`
  (valid time: each live topic's newest version dated on or before the day) and
  `topics_as_of_run(RUN_ID)` (transaction time: what the archive held right after
  that run);
* views of the latest state: `topics` (`topics_as_of_run` of the last run), and `links`
  and `clinical_trials` of those versions.

The macros read two small tables computed by `pipelines.archive.versions.Selector` (the events
log, and the stored versions with their last sighting), so SQL makes the same choice
among versions as the loaders, by the same rules:

```sql
SELECT slug, title FROM topics_as_of(DATE '2024-01-01') WHERE language = 'en';
SELECT link.* FROM link_versions AS link
SEMI JOIN topics_as_of_run('20240102T020000Z-0000')
USING (language, slug, last_updated, content_hash);
```

Without an ORDER BY, SQL gives rows in no particular order; the loaders sort by topic.
Like an `Archive`, the views show the archive as it was when opened: after a later crawl
(which may compact, moving files away), register a freshly opened archive again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.archive.state import ArchiveState
from pipelines.core.schema import SCHEMAS, TableName
from pipelines.core.store import ArchiveStore

if TYPE_CHECKING:
    import duckdb

EVENTS_VIEW = "_archive_events"
STORED_VIEW = "_archive_stored"
FILE_VIEWS: dict[str, TableName] = {
    "runs": "runs",
    "observations": "observations",
    "journal_articles": "journal_articles",
    "topic_versions": "topics",
    "link_versions": "links",
    "clinical_trial_versions": "clinical_trials",
}
"""View name: the table whose committed rows it shows."""
ENTRY_VIEWS = {"links": "link_versions", "clinical_trials": "clinical_trial_versions"}
"""Views of the latest versions' entries: the view of every version's entries."""

_KEY = "language, slug, last_updated, content_hash"
_DAY_NUMBER = "date_diff('day', DATE '1970-01-01', CAST(as_of_day AS DATE))"
_LAST_PER_TOPIC = "row_number() OVER (PARTITION BY language, slug ORDER BY event_row DESC) = 1"
_MACROS = f"""
CREATE OR REPLACE TEMP MACRO topics_as_of(as_of_day) AS TABLE
WITH chosen AS (
    SELECT {_KEY} FROM {STORED_VIEW}
    WHERE day_number <= {_DAY_NUMBER}
    QUALIFY row_number() OVER (
        PARTITION BY language, slug ORDER BY day_number DESC, last_seen DESC, stored_row DESC
    ) = 1
), gone AS (
    SELECT language, slug FROM {EVENTS_VIEW}
    WHERE observed_us < ({_DAY_NUMBER} + 1) * 86400000000
    QUALIFY {_LAST_PER_TOPIC} AND gone
)
SELECT topic.* FROM topic_versions AS topic
SEMI JOIN chosen USING ({_KEY})
ANTI JOIN gone USING (language, slug);

CREATE OR REPLACE TEMP MACRO topics_as_of_run(through_run) AS TABLE
WITH cut AS (
    SELECT * FROM {EVENTS_VIEW} WHERE run_id <= through_run
), gone AS (
    SELECT language, slug FROM cut QUALIFY {_LAST_PER_TOPIC} AND gone
), chosen AS (
    SELECT stored.language, stored.slug, stored.last_updated, stored.content_hash
    FROM cut AS event JOIN {STORED_VIEW} AS stored ON stored.stored_row = event.version_row
    WHERE NOT event.gone AND stored.run_id <= through_run
    QUALIFY row_number() OVER (
        PARTITION BY event.language, event.slug ORDER BY event.event_row DESC
    ) = 1
)
SELECT topic.* FROM topic_versions AS topic
SEMI JOIN chosen USING ({_KEY})
ANTI JOIN gone USING (language, slug);
"""


def register_archive(
    store: ArchiveStore, connection: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyConnection:
    """Register the archive's views and macros (module docstring) in `connection`, else
    in a new in-memory connection; returns the connection. ImportError naming the extra
    to install when DuckDB is missing."""
    try:
        import duckdb
    except ImportError as error:
        raise ImportError(
            "Archive.duckdb() needs DuckDB: pip install 'medlineplus-archive[duckdb]'"
        ) from error
    if connection is None:
        connection = duckdb.connect()
    for view, table in FILE_VIEWS.items():
        paths = [str(path) for path in store.files(table)]
        if paths:
            files = ", ".join(_literal(path) for path in paths)
            connection.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS "
                f"SELECT * FROM read_parquet([{files}], union_by_name = true)"
            )
        else:  # an archive without runs
            connection.register(view, SCHEMAS[table].empty_table())
    events, stored = _selection_tables(store)
    connection.register(EVENTS_VIEW, events)
    connection.register(STORED_VIEW, stored)
    connection.execute(_MACROS)
    last_run = store.run_ids[-1] if store.run_ids else ""
    connection.execute(
        "CREATE OR REPLACE TEMP VIEW topics AS "
        f"SELECT * FROM topics_as_of_run({_literal(last_run)})"
    )
    for view, versions in (
        ("links", "link_versions"),
        ("clinical_trials", "clinical_trial_versions"),
    ):
        connection.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS "
            f"SELECT entry.* FROM {versions} AS entry SEMI JOIN topics USING ({_KEY})"
        )
    return connection


def _selection_tables(store: ArchiveStore) -> tuple[pa.Table, pa.Table]:
    """The events log (with each event's row of the stored versions) and the stored
    versions (with their day number and last sighting), as `Selector` sees them."""
    state = ArchiveState.of(store)
    selector = state.selector()
    log = state.version_log().events
    stored = state.stored_versions()
    version_row = np.asarray(selector.event_version, dtype=np.int64)
    events = log.select(["language", "slug", "run_id", "gone"]).append_column(
        "observed_us", log["observed_at"].cast(pa.int64())
    )
    events = events.append_column("event_row", pa.array(np.arange(log.num_rows)))
    events = events.append_column("version_row", pa.array(version_row, mask=version_row < 0))
    day_number = pc.fill_null(stored["last_updated"].cast(pa.int32()), 0)
    rows = stored.select(["language", "slug", "last_updated", "content_hash", "run_id"])
    rows = rows.append_column("day_number", day_number)
    rows = rows.append_column("last_seen", pa.array(np.asarray(selector.last_seen)))
    rows = rows.append_column("stored_row", pa.array(np.arange(stored.num_rows)))
    return events, rows


def _literal(text: str) -> str:
    """`text` as a SQL string literal."""
    escaped = text.replace("'", "''")
    return f"'{escaped}'"
