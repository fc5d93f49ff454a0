"""`history SLUG [--language en|es]`: every stored version of one topic, oldest first."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from crawler.commands.common import EXIT_OK, UsageError, add_archive_option, archive_path
from crawler.commands.formats import (
    OUTPUT_FORMATS,
    emit,
    frame_rows,
    render_csv,
    render_json,
    render_table,
)
from crawler.parsing.items import LANGUAGES

if TYPE_CHECKING:
    import pandas as pd

HASH_SHOWN = 12
"""Leading hex digits of a content hash shown in the table (the full hash in csv/json)."""

TABLE_COLUMNS = (
    "last_updated",
    "content_hash",
    "first_seen_run",
    "outcome",
    "last_seen_run",
    "current",
    "title",
)
FULL_COLUMNS = (
    "language",
    "slug",
    "last_updated",
    "content_hash",
    "first_seen_run",
    "first_seen_at",
    "outcome",
    "last_seen_run",
    "last_seen_at",
    "current",
    "title",
    "url",
)
_SHOWN = ("new", "unchanged", "same_date_edit")
"""Observation outcomes that show a version (a 304 "unchanged" included)."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "history",
        help="list every stored version of one topic",
        description="List every stored version of one topic, oldest first: its "
        "last_updated date, content hash, the run that first stored it and how that run "
        "classified it (outcome new, or same_date_edit when the content changed without a "
        "new date), the last run that saw it, whether it is the current version, and its "
        "title. Exit 2 when the archive holds no version of the topic.",
    )
    parser.add_argument("slug", metavar="SLUG", help='the topic\'s slug, e.g. "asthma"')
    parser.add_argument(
        "--language",
        choices=LANGUAGES,
        default="en",
        help="the topic's language (default en; es is the page under /spanish/)",
    )
    add_archive_option(parser)
    parser.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default="table",
        help="table (default, hash shortened), csv or json (full hash, timestamps, url)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.notebook import open_archive

    slug: str = args.slug
    language: str = args.language
    archive = open_archive(archive_path(args))
    versions = frame_rows(archive.history(slug, language))
    if not versions:
        others = [other for other in LANGUAGES if other != language]
        found = [other for other in others if not archive.history(slug, other).empty]
        hint = f" (it has versions in {found[0]}: pass --language {found[0]})" if found else ""
        raise UsageError(f"no stored version of topic {language}/{slug} in {archive.path}{hint}")
    sightings = frame_rows(_of_topic(archive.observations(), slug, language))
    current = frame_rows(_of_topic(archive.topics(), slug, language))
    current_key = _key(current[0]) if current else None
    rows = [_row(version, sightings, current_key) for version in versions]
    if args.format == "table":
        table = [
            [
                row["last_updated"],
                row["content_hash"][:HASH_SHOWN],
                row["first_seen_run"],
                row["outcome"],
                row["last_seen_run"],
                "yes" if row["current"] else "",
                row["title"],
            ]
            for row in rows
        ]
        emit(render_table(TABLE_COLUMNS, table) + _gone_note(sightings, current_key))
        return EXIT_OK
    render = render_csv if args.format == "csv" else render_json
    emit(render(FULL_COLUMNS, rows))
    return EXIT_OK


def _of_topic(frame: pd.DataFrame, slug: str, language: str) -> pd.DataFrame:
    return frame[(frame["slug"] == slug) & (frame["language"] == language)]


def _key(row: dict[str, Any]) -> tuple[Any, Any]:
    return row["last_updated"], row["content_hash"]


def _row(
    version: dict[str, Any], sightings: list[dict[str, Any]], current_key: tuple[Any, Any] | None
) -> dict[str, Any]:
    key = _key(version)
    shown = [s for s in sightings if s["outcome"] in _SHOWN and _key(s) == key]
    # How the run that stored the version classified it: new or same_date_edit.
    stored_by = [
        s for s in shown if s["run_id"] == version["run_id"] and s["outcome"] != "unchanged"
    ]
    last = max(shown, key=lambda s: (s["run_id"], s["observed_at"]), default=version)
    return {
        **version,
        "first_seen_run": version["run_id"],
        "first_seen_at": version["observed_at"],
        "outcome": stored_by[0]["outcome"] if stored_by else None,
        "last_seen_run": last["run_id"],
        "last_seen_at": last["observed_at"],
        "current": key == current_key,
    }


def _gone_note(sightings: list[dict[str, Any]], current_key: tuple[Any, Any] | None) -> str:
    """A line saying why no version is current, when the topic is gone."""
    if current_key is not None:
        return ""
    seen = [s for s in sightings if s["outcome"] != "error"]
    latest = max(seen, key=lambda s: (s["run_id"], s["observed_at"]), default=None)
    if latest is None or latest["outcome"] != "gone":
        return ""
    reason = f": {latest['error']}" if latest.get("error") else ""
    return f"\nno current version: run {latest['run_id']} found the topic gone{reason}\n"
