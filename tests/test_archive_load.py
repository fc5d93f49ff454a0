"""Loading the archive: round trips, dtypes, the two clocks, and agreement with other readers."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from crawler.parsing.items import NOT_ARCHIVED, HealthTopicPage, to_jsonable
from pipelines.core.errors import ArchiveNotFoundError, UnknownRunError
from pipelines.core.records import RunRecord
from pipelines.core.schema import SCHEMAS, TABLES, TableName
from pipelines.core.store import ArchiveStore
from pipelines.notebook import Archive, open_archive
from tests.archive_factory import at, commit_run, make_page, make_sparse_page

JAN10, MAR05, MAY20 = date(2024, 1, 10), date(2024, 3, 5), date(2024, 5, 20)


def _row(frame: pd.DataFrame, **where: Any) -> dict[str, Any]:
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == value
    (row,) = frame[mask].to_dict("records")
    return row


def _expected_topic_row(page: HealthTopicPage) -> dict[str, Any]:
    """The topics row of `page`: its fields, nested parts flattened, child tables left out."""
    expected: dict[str, Any] = {}
    for field in dataclasses.fields(HealthTopicPage):
        value = getattr(page, field.name)
        if field.name in ("links", "clinical_trials", "journal_articles", *NOT_ARCHIVED):
            continue
        if field.name in ("primary_institute", "image"):
            for part in ("name", "url", "alt"):
                if f"{field.name}_{part}" in SCHEMAS["topics"].names:
                    expected[f"{field.name}_{part}"] = getattr(value, part, None)
        elif field.name == "related_topics":
            expected[field.name] = [dataclasses.asdict(topic) for topic in value]
        else:
            expected[field.name] = value
    return expected


# --- round trips ----------------------------------------------------------------------


def test_notebooks_importing_open_archive_from_its_old_module_keep_working() -> None:
    import pipelines.load

    assert pipelines.load.open_archive is open_archive
    assert pipelines.load.Archive is Archive


@pytest.mark.parametrize(
    "page",
    [pytest.param(make_page(), id="every-field"), pytest.param(make_sparse_page(), id="all-none")],
)
def test_every_page_field_round_trips(tmp_path: Path, page: HealthTopicPage) -> None:
    run_id = commit_run(tmp_path, at(JAN10), [page])
    row = open_archive(tmp_path).topics().to_dict("records")[0]
    assert row["run_id"] == run_id
    assert row["observed_at"] == at(JAN10, 0, 1)
    assert {name: row[name] for name in _expected_topic_row(page)} == _expected_topic_row(page)
    assert set(row) == set(SCHEMAS["topics"].names)


def test_links_and_trials_round_trip_in_page_order(tmp_path: Path) -> None:
    page = make_page()
    commit_run(tmp_path, at(JAN10), [page])
    archive = open_archive(tmp_path)
    key = {
        "language": "en",
        "slug": "asthma",
        "last_updated": page.last_updated,
        "content_hash": page.content_hash,
    }
    links = archive.links().drop(columns="run_id").to_dict("records")
    assert links == [{**key, **to_jsonable(link)} for link in page.links]
    trials = archive.clinical_trials().drop(columns="run_id").to_dict("records")
    assert trials == [{**key, **to_jsonable(trial)} for trial in page.clinical_trials]


def test_observations_runs_and_articles_round_trip(tmp_path: Path) -> None:
    page = make_page()
    run_id = commit_run(tmp_path, at(JAN10), [page], errors=[("es", "flu")])
    archive = open_archive(tmp_path)

    (run,) = archive.runs().to_dict("records")
    manifest = ArchiveStore.open(tmp_path, read_only=True).manifests[0]
    assert run == dataclasses.asdict(manifest.run)
    assert run["pages_new"] == run["pages_error"] == 1

    observed = archive.observations().to_dict("records")
    assert [row["outcome"] for row in observed] == ["new", "error"]
    assert observed[0]["content_hash"] == page.content_hash
    assert observed[0]["etag"] == f'"{page.content_hash[:8]}"'
    assert observed[1] == {
        "run_id": run_id,
        "observed_at": at(JAN10, 0, 2),
        "url": "https://medlineplus.gov/spanish/flu.html",
        "source_url": "https://medlineplus.gov/spanish/flu.html",
        "language": "es",
        "slug": "flu",
        "outcome": "error",
        "http_status": 503,
        "revalidated": False,
        "last_updated": None,
        "content_hash": None,
        "error": "503",
        "error_field": None,
        "etag": None,
        "last_modified": None,
    }

    articles = archive.journal_articles().to_dict("records")
    assert articles[0] == {
        "language": "en",
        "slug": "asthma",
        "pmid": "38000001",
        "title": "Article: Study 0",
        "url": "https://pubmed.ncbi.nlm.nih.gov/38000001",
        "position": 0,
        "first_seen_run": run_id,
        "first_seen_at": at(JAN10, 0, 1),
    }


# --- dtypes ---------------------------------------------------------------------------


def _frames(archive: Archive) -> dict[TableName, pd.DataFrame]:
    return {
        "runs": archive.runs(),
        "observations": archive.observations(),
        "topics": archive.topics(),
        "links": archive.links(),
        "clinical_trials": archive.clinical_trials(),
        "journal_articles": archive.journal_articles(),
    }


def _expected_dtypes(table: TableName) -> list[pd.ArrowDtype]:
    return [pd.ArrowDtype(field.type) for field in SCHEMAS[table]]


@pytest.mark.parametrize(
    "empty", [pytest.param(False, id="filled"), pytest.param(True, id="empty")]
)
def test_every_column_is_the_arrow_dtype_of_its_schema(tmp_path: Path, empty: bool) -> None:
    if empty:
        ArchiveStore.open(tmp_path).close()
    else:
        commit_run(tmp_path, at(JAN10), [make_page(), make_sparse_page()])
    for table, frame in _frames(open_archive(tmp_path)).items():
        assert list(frame.columns) == SCHEMAS[table].names, table
        assert list(frame.dtypes) == _expected_dtypes(table), table
        assert frame.empty == empty, table


def test_dates_stay_dates_and_int_gaps_stay_int(tmp_path: Path) -> None:
    commit_run(tmp_path, at(JAN10), [make_page()], errors=[("en", "flu")])
    archive = open_archive(tmp_path)
    topics, observations = archive.topics(), archive.observations()
    assert topics["last_updated"].dtype == pd.ArrowDtype(pa.date32())
    assert topics.loc[0, "last_updated"] == JAN10
    assert observations["observed_at"].dtype == pd.ArrowDtype(pa.timestamp("us", tz="UTC"))
    assert observations["http_status"].dtype == pd.ArrowDtype(pa.int64())
    assert observations["http_status"].isna().tolist() == [False, False]
    assert topics["last_updated"].max() == JAN10
    assert (topics["last_updated"] <= MAR05).all()


# --- the two clocks -------------------------------------------------------------------


@pytest.fixture
def three_runs(tmp_path: Path) -> tuple[Path, list[str]]:
    """asthma dated Jan 10, then Mar 5; copd Jan 10, gone in the third run (May 20)."""
    first = commit_run(
        tmp_path, at(JAN10), [make_page(), make_page("copd"), make_page("gripe", language="es")]
    )
    second = commit_run(
        tmp_path,
        at(MAR05),
        [make_page(text="Revised.", last_updated=MAR05), make_page("copd")],
    )
    third = commit_run(tmp_path, at(MAY20), gone=[("en", "copd")])
    return tmp_path, [first, second, third]


def _versions(frame: pd.DataFrame) -> dict[tuple[str, str], date]:
    return {
        (language, slug): last_updated
        for language, slug, last_updated in zip(
            frame["language"], frame["slug"], frame["last_updated"], strict=True
        )
    }


def test_topics_now_are_the_latest_versions_of_live_topics(
    three_runs: tuple[Path, list[str]],
) -> None:
    root, _ = three_runs
    assert _versions(open_archive(root).topics()) == {
        ("en", "asthma"): MAR05,
        ("es", "gripe"): JAN10,
    }


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        pytest.param(date(2024, 1, 9), {}, id="before-anything"),
        pytest.param(
            JAN10,
            {("en", "asthma"): JAN10, ("en", "copd"): JAN10, ("es", "gripe"): JAN10},
            id="first-date",
        ),
        pytest.param(
            date(2024, 3, 4),
            {("en", "asthma"): JAN10, ("en", "copd"): JAN10, ("es", "gripe"): JAN10},
            id="day-before-update",
        ),
        pytest.param(
            date(2024, 5, 19),
            {("en", "asthma"): MAR05, ("en", "copd"): JAN10, ("es", "gripe"): JAN10},
            id="day-before-gone",
        ),
        pytest.param(MAY20, {("en", "asthma"): MAR05, ("es", "gripe"): JAN10}, id="gone-day"),
    ],
)
def test_topics_as_of_a_date(
    three_runs: tuple[Path, list[str]], as_of: date, expected: dict[tuple[str, str], date]
) -> None:
    root, _ = three_runs
    assert _versions(open_archive(root).topics(as_of=as_of)) == expected


def test_a_date_as_text_is_a_date(three_runs: tuple[Path, list[str]]) -> None:
    archive = open_archive(three_runs[0])
    assert archive.topics(as_of="2024-03-04").equals(archive.topics(as_of=date(2024, 3, 4)))


def test_valid_time_uses_what_later_runs_learned(tmp_path: Path) -> None:
    """A version dated in the past but first crawled later still counts for that date."""
    commit_run(tmp_path, at(MAY20), [make_page(last_updated=JAN10)])
    assert _versions(open_archive(tmp_path).topics(as_of=date(2024, 2, 1))) == {
        ("en", "asthma"): JAN10
    }


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        pytest.param(0, {("en", "asthma"): JAN10, ("en", "copd"): JAN10, ("es", "gripe"): JAN10}),
        pytest.param(1, {("en", "asthma"): MAR05, ("en", "copd"): JAN10, ("es", "gripe"): JAN10}),
        pytest.param(2, {("en", "asthma"): MAR05, ("es", "gripe"): JAN10}),
    ],
)
def test_topics_as_of_a_run(
    three_runs: tuple[Path, list[str]], run: int, expected: dict[tuple[str, str], date]
) -> None:
    root, run_ids = three_runs
    assert _versions(open_archive(root).topics(as_of=run_ids[run])) == expected


def test_an_unknown_run_id_is_refused(three_runs: tuple[Path, list[str]]) -> None:
    root, _ = three_runs
    with pytest.raises(UnknownRunError, match=r"no committed run '20990101T000000Z-0000'.*runs"):
        open_archive(root).topics(as_of="20990101T000000Z-0000")
    with pytest.raises(UnknownRunError):
        open_archive(root).observations(run_id="nope")


def test_a_datetime_is_not_an_as_of(three_runs: tuple[Path, list[str]]) -> None:
    with pytest.raises(TypeError, match="not a datetime"):
        open_archive(three_runs[0]).topics(as_of=at(JAN10))


def test_a_topic_seen_again_after_it_was_gone_is_back(three_runs: tuple[Path, list[str]]) -> None:
    root, _ = three_runs
    back = commit_run(root, at(MAY20 + timedelta(days=1)), [make_page("copd")])
    archive = open_archive(root)
    assert ("en", "copd") in _versions(archive.topics())
    assert ("en", "copd") in _versions(archive.topics(as_of=back))
    assert ("en", "copd") not in _versions(archive.topics(as_of=MAY20))


def test_errors_do_not_drop_a_topic(tmp_path: Path) -> None:
    commit_run(tmp_path, at(JAN10), [make_page()])
    commit_run(tmp_path, at(MAR05), errors=[("en", "asthma")])
    assert _versions(open_archive(tmp_path).topics()) == {("en", "asthma"): JAN10}


def test_a_same_date_edit_and_its_revert(tmp_path: Path) -> None:
    original, edited = make_page(), make_page(text="Edited on the same date.")
    commit_run(tmp_path, at(JAN10), [original])
    edit_run = commit_run(tmp_path, at(MAR05), [edited])
    commit_run(tmp_path, at(MAY20), [original])
    archive = open_archive(tmp_path)
    assert archive.topics()["content_hash"].tolist() == [original.content_hash]
    assert archive.topics(as_of=edit_run)["content_hash"].tolist() == [edited.content_hash]
    assert archive.topics(as_of=JAN10)["content_hash"].tolist() == [original.content_hash]
    assert archive.history("asthma")["content_hash"].tolist() == [
        original.content_hash,
        edited.content_hash,
    ]


def test_history_lists_every_version_oldest_first(three_runs: tuple[Path, list[str]]) -> None:
    root, run_ids = three_runs
    archive = open_archive(root)
    history = archive.history("asthma")
    assert history["last_updated"].tolist() == [JAN10, MAR05]
    assert history["run_id"].tolist() == run_ids[:2]
    assert list(history.dtypes) == _expected_dtypes("topics")
    assert archive.history("gripe", language="es")["slug"].tolist() == ["gripe"]
    assert archive.history("gripe").empty
    with pytest.raises(ValueError, match="language must be one of"):
        archive.history("asthma", language="fr")


def test_links_follow_the_topic_selection(three_runs: tuple[Path, list[str]]) -> None:
    root, run_ids = three_runs
    archive = open_archive(root)
    now = archive.links(slug="asthma")
    assert set(now["last_updated"]) == {MAR05}
    assert len(now) == 3
    assert set(archive.links(slug="asthma", as_of=run_ids[0])["last_updated"]) == {JAN10}
    assert set(archive.links(language="es")["slug"]) == {"gripe"}
    assert archive.links(slug="copd").empty  # gone
    assert len(archive.clinical_trials(slug="copd", as_of=date(2024, 5, 1))) == 1


def test_journal_articles_as_of(tmp_path: Path) -> None:
    first = commit_run(tmp_path, at(JAN10), [make_page(pmids=["1"])])
    commit_run(tmp_path, at(MAR05), [make_page(pmids=["1", "2"])])
    archive = open_archive(tmp_path)
    assert archive.journal_articles()["pmid"].tolist() == ["1", "2"]
    assert archive.journal_articles(as_of=first)["pmid"].tolist() == ["1"]
    assert archive.journal_articles(as_of=date(2024, 3, 4))["pmid"].tolist() == ["1"]
    assert archive.journal_articles(slug="copd").empty


def test_observations_of_one_run(three_runs: tuple[Path, list[str]]) -> None:
    root, run_ids = three_runs
    observed = open_archive(root).observations(run_id=run_ids[2])
    assert observed[["slug", "outcome"]].to_dict("records") == [{"slug": "copd", "outcome": "gone"}]


def test_observations_of_one_topic(three_runs: tuple[Path, list[str]]) -> None:
    root, run_ids = three_runs
    archive = open_archive(root)
    copd = archive.observations(slug="copd", language="en")
    assert copd[["run_id", "outcome"]].to_dict("records") == [
        {"run_id": run_ids[0], "outcome": "new"},
        {"run_id": run_ids[1], "outcome": "unchanged"},
        {"run_id": run_ids[2], "outcome": "gone"},
    ]
    assert list(copd.dtypes) == _expected_dtypes("observations")
    assert archive.observations(run_ids[1], slug="copd")["outcome"].tolist() == ["unchanged"]
    assert archive.observations(language="es")["slug"].tolist() == ["gripe"]
    with pytest.raises(ValueError, match="language must be one of"):
        archive.observations(language="fr")


def test_an_opened_archive_is_a_snapshot(tmp_path: Path) -> None:
    commit_run(tmp_path, at(JAN10), [make_page()])
    archive = open_archive(tmp_path)
    commit_run(tmp_path, at(MAR05), [make_page(last_updated=MAR05, text="New.")])
    assert _versions(archive.topics()) == {("en", "asthma"): JAN10}
    assert _versions(open_archive(tmp_path).topics()) == {("en", "asthma"): MAR05}


def test_open_archive_refuses_a_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(ArchiveNotFoundError):
        open_archive(tmp_path / "nowhere")


def test_runs_come_back_as_run_records(three_runs: tuple[Path, list[str]]) -> None:
    root, run_ids = three_runs
    runs = open_archive(root).runs()
    assert runs["run_id"].tolist() == run_ids
    assert runs["status"].tolist() == ["success"] * 3
    assert set(runs.columns) == {field.name for field in dataclasses.fields(RunRecord)}


# --- other readers agree --------------------------------------------------------------


def _duckdb_type(data_type: pa.DataType) -> str:
    if pa.types.is_list(data_type):
        return f"{_duckdb_type(data_type.value_type)}[]"
    if pa.types.is_struct(data_type):
        inner = ", ".join(f"{field.name} {_duckdb_type(field.type)}" for field in data_type)
        return f"STRUCT({inner})"
    return {
        pa.string(): "VARCHAR",
        pa.int64(): "BIGINT",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
        pa.timestamp("us", tz="UTC"): "TIMESTAMP WITH TIME ZONE",
    }[data_type]


@pytest.fixture
def recovered_archive(three_runs: tuple[Path, list[str]]) -> Path:
    """Three committed runs, plus leftovers of a crashed one that recovery moved aside."""
    root, run_ids = three_runs
    (root / "topics" / "part-20990101T000000Z-dead.parquet").write_bytes(
        (root / "topics" / f"part-{run_ids[0]}.parquet").read_bytes()
    )
    ArchiveStore.open(root).close()
    return root


@pytest.mark.parametrize("table", TABLES)
def test_pandas_reads_the_table_directory_like_the_loader(
    recovered_archive: Path, table: TableName
) -> None:
    store = ArchiveStore.open(recovered_archive, read_only=True)
    ours = store.read_table(table).to_pandas(types_mapper=pd.ArrowDtype)
    theirs = pd.read_parquet(recovered_archive / table, dtype_backend="pyarrow")
    assert len(theirs) == len(ours)
    assert list(theirs.columns) == list(ours.columns)
    assert list(theirs.dtypes) == list(ours.dtypes) == _expected_dtypes(table)
    plain = pd.read_parquet(recovered_archive / table)
    assert len(plain) == len(ours)


@pytest.mark.parametrize("table", TABLES)
def test_duckdb_reads_the_table_directory_like_the_loader(
    recovered_archive: Path, table: TableName
) -> None:
    duckdb = pytest.importorskip("duckdb")
    store = ArchiveStore.open(recovered_archive, read_only=True)
    ours = store.read_table(table)
    source = f"read_parquet('{recovered_archive / table}/*.parquet')"
    with duckdb.connect() as connection:
        relation = connection.sql(f"select * from {source}")
        assert relation.columns == SCHEMAS[table].names
        assert [str(kind) for kind in relation.types] == [
            _duckdb_type(field.type) for field in SCHEMAS[table]
        ]
        [(count,)] = connection.sql(f"select count(*) from {source}").fetchall()
    assert count == ours.num_rows


@pytest.mark.parametrize("table", TABLES)
def test_polars_reads_the_table_directory_like_the_loader(
    recovered_archive: Path, table: TableName
) -> None:
    polars = pytest.importorskip("polars")
    store = ArchiveStore.open(recovered_archive, read_only=True)
    ours = store.read_table(table)
    theirs = polars.read_parquet(recovered_archive / table / "*.parquet")
    assert theirs.height == ours.num_rows
    assert theirs.columns == SCHEMAS[table].names
    # polars reads the same Arrow types (large strings and lists are its own layout).
    assert theirs.schema == polars.from_arrow(ours).schema


def test_the_loader_and_the_table_directory_agree_on_topics(recovered_archive: Path) -> None:
    loaded = pd.read_parquet(recovered_archive / "topics", dtype_backend="pyarrow")
    history = open_archive(recovered_archive).history("asthma")
    assert list(history.dtypes) == list(loaded.dtypes)
    assert len(loaded) == 4  # asthma twice, copd, gripe: the crashed run's copy is gone


def test_the_archive_modules_never_import_scrapy_or_twisted() -> None:
    """A notebook loads the archive without Twisted (a fresh interpreter: tests import Scrapy)."""
    code = (
        "import sys, pipelines.archive.load, pipelines.core.verify, pipelines.core.store\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scrapy', 'twisted'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
