"""Compaction, retired files, checkpoints: same answers, each row once, crash-safe."""

from __future__ import annotations

import json
import os
import shutil
import signal
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from crawler.commands.cli import main as cli_main
from crawler.parsing.items import HealthTopicPage
from pipelines.archive.keys import TopicKey, version_key
from pipelines.archive.recorder import RunRecorder
from pipelines.archive.state import ArchiveState, read_validators
from pipelines.archive.verify_log import verify_archive_deeply
from pipelines.core import catalog as catalog_module
from pipelines.core import compaction as compaction_module
from pipelines.core import layout as layout_module
from pipelines.core import store as store_module
from pipelines.core import vacuum as vacuum_module
from pipelines.core.catalog import FileSet, LiveFile
from pipelines.core.compaction import MANUAL_ONLY, CompactionPolicy, Merge, Unit, plan
from pipelines.core.glob_view import current_generation, generation_counts
from pipelines.core.records import ManifestFile
from pipelines.core.schema import TABLES, TableName
from pipelines.core.store import ArchiveStore
from pipelines.core.verify import verify_archive
from pipelines.notebook import Archive, open_archive
from tests.archive_factory import make_page, observe, run_record

DAY = date(2024, 1, 1)
TWO = CompactionPolicy(fanout=2, checkpoint_every=3)
"""Compacts (and checkpoints) often: several levels from a few runs."""


class SimulatedKill(BaseException):
    """A process killed at this point: nothing after it runs, no cleanup."""


# --- a history with everything in it --------------------------------------------------


def _when(index: int) -> datetime:
    moment = DAY + timedelta(days=index)
    return datetime(moment.year, moment.month, moment.day, 2, tzinfo=UTC)


def _page(slug: str, version: int, *, language: Any = "en", same_date: bool = False) -> Any:
    day = DAY if same_date else DAY + timedelta(days=version)
    return make_page(
        slug,
        language=language,
        last_updated=day,
        text=f"{slug} text {version}.",
        pmids=[f"{slug}-{version}", f"{slug}-{version + 1}"],
    )


def _steps() -> list[list[tuple[str, Any]]]:
    """Twelve runs: new versions, a same-date edit, a revert, 304s with and without
    validators, a full fetch without validators, gone and back, errors, a skipped topic."""
    asthma = [_page("asthma", 0), _page("asthma", 1, same_date=True), _page("asthma", 2)]
    copd = [_page("copd", 0), _page("copd", 3)]
    gripe = [_page("gripe", 0, language="es"), _page("gripe", 5, language="es")]
    flu = _page("flu", 0)
    return [
        [("page", asthma[0]), ("page", copd[0]), ("page", gripe[0])],
        [("304", asthma[0]), ("page", copd[1]), ("error", ("es", "gripe"))],
        [("page", asthma[1]), ("304", copd[1]), ("gone", ("es", "gripe"))],
        [("page", asthma[0]), ("304", copd[1]), ("page", flu)],
        [("304", asthma[0]), ("304", copd[1]), ("304", flu)],
        [("304-bare", asthma[0]), ("gone", ("en", "copd")), ("page", gripe[0])],
        [("page", asthma[2]), ("page", gripe[1]), ("error", ("en", "flu"))],
        [("304", asthma[2]), ("page-bare", copd[1]), ("304", gripe[1])],
        [("304", asthma[2]), ("304", copd[1]), ("304", gripe[1]), ("304", flu)],
        [("gone", ("en", "flu")), ("304", gripe[1])],
        [("page", asthma[1]), ("304", copd[1])],
        [("304", asthma[1]), ("304", copd[1]), ("304", gripe[1])],
    ]


def commit_step(
    store: ArchiveStore, index: int, actions: list[tuple[str, Any]], suffix: str = "0000"
) -> str:
    """One run of `actions` with a fixed run id (so two archives can be compared)."""
    started_at = _when(index)
    run_id = f"{started_at:%Y%m%dT%H%M%SZ}-{suffix}"
    writer = RunRecorder.begin(store, run_id, started_at)
    moment = started_at
    for kind, subject in actions:
        moment += timedelta(minutes=1)
        if kind in ("gone", "error"):
            topic = TopicKey(*subject)
            status = 404 if kind == "gone" else 503
            writer.add_observation(
                observe(topic, run_id, moment, kind, http_status=status, error=str(status))
            )
            continue
        page: HealthTopicPage = subject
        if kind.startswith("304"):
            fields: dict[str, Any] = {"http_status": 304, "revalidated": True}
            if kind == "304-bare":
                fields.update(etag=None, last_modified=None)
            writer.add_observation(observe(page, run_id, moment, "unchanged", **fields))
            continue
        stored = version_key(page) in writer.index.versions
        latest = writer.index.latest.get(TopicKey(page.language, page.slug))
        outcome: Any = "unchanged" if stored else "new"
        if not stored and latest is not None and latest.last_updated == page.last_updated:
            outcome = "same_date_edit"
        bare = {"etag": None, "last_modified": None} if kind == "page-bare" else {}
        writer.add_observation(observe(page, run_id, moment, outcome, **bare))
        writer.add_version(page, run_id, moment)
        writer.add_journal_articles(page, run_id, moment)
    writer.commit(run_record(run_id, started_at, writer))
    return run_id


def build(root: Path, policy: CompactionPolicy, runs: int | None = None) -> list[str]:
    steps = _steps()[:runs]
    with ArchiveStore.open(root, policy=policy) as store:
        return [commit_step(store, index, actions) for index, actions in enumerate(steps)]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The history, one file per table per run (never compacted)."""
    root = tmp_path_factory.mktemp("plain") / "archive"
    return root, build(root, MANUAL_ONLY)


def _copy(source: Path, target: Path) -> Path:
    """A copy of the archive `source`, its links kept (the view's hard links, `current`)."""
    copied: dict[tuple[int, int], str] = {}

    def copy(from_path: str, to_path: str) -> None:
        status = Path(from_path).stat()
        first = copied.setdefault((status.st_dev, status.st_ino), to_path)
        if first == to_path:
            shutil.copy2(from_path, to_path)
        else:
            os.link(first, to_path)

    shutil.copytree(source, target, symlinks=True, copy_function=copy)
    return target


def every_answer(archive: Archive, run_ids: list[str]) -> dict[str, pd.DataFrame]:
    """Everything the loaders can be asked about the history."""
    answers: dict[str, pd.DataFrame] = {
        "runs": archive.runs(),
        "observations": archive.observations(),
        "journal_articles": archive.journal_articles(),
    }
    cuts: list[Any] = [None, *run_ids]
    cuts += [DAY + timedelta(days=offset) for offset in range(-1, 14)]
    for cut in cuts:
        answers[f"topics {cut}"] = archive.topics(as_of=cut)
        answers[f"links {cut}"] = archive.links(as_of=cut)
        answers[f"trials {cut}"] = archive.clinical_trials(as_of=cut)
        answers[f"articles {cut}"] = archive.journal_articles(as_of=cut)
    for run_id in run_ids:
        answers[f"observations {run_id}"] = archive.observations(run_id=run_id)
    for language, slug in (("en", "asthma"), ("en", "copd"), ("es", "gripe"), ("en", "flu")):
        answers[f"history {slug}"] = archive.history(slug, language=language)
        answers[f"links {slug}"] = archive.links(slug=slug, language=language)
    return answers


def assert_same_answers(root: Path, expected_root: Path, run_ids: list[str]) -> None:
    got = every_answer(open_archive(root), run_ids)
    expected = every_answer(open_archive(expected_root), run_ids)
    assert got.keys() == expected.keys()
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, obj=name)
    with ArchiveStore.open(root, read_only=True) as store:
        index = ArchiveState.of(store).index()
    with ArchiveStore.open(expected_root, read_only=True) as store:
        assert index == ArchiveState.of(store).index()
    assert read_validators(root) == read_validators(expected_root)


def assert_directory_reads_see_each_row_once(root: Path, expected_root: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    with duckdb.connect() as connection:
        for table in TABLES:
            glob = f"read_parquet('{root / table}/*.parquet')"
            [(count,)] = connection.sql(f"select count(*) from {glob}").fetchall()
            assert count == sum(live.entry.rows for live in _live(root, table)), table
    for table in TABLES:
        ours = pd.read_parquet(root / table)
        theirs = pd.read_parquet(expected_root / table)
        assert len(ours) == len(theirs), table
        ordered = ours.astype(str).sort_values(list(ours.columns)).reset_index(drop=True)
        expected = theirs.astype(str).sort_values(list(theirs.columns)).reset_index(drop=True)
        pd.testing.assert_frame_equal(ordered, expected, obj=table)


def _live(root: Path, table: TableName) -> list[LiveFile]:
    return ArchiveStore.open(root, read_only=True).live_files(table)


def live_file_count(root: Path, table: TableName) -> int:
    return len(_live(root, table))


# --- compaction gives the same answers --------------------------------------------------


def test_a_compacted_archive_answers_like_the_uncompacted_one(
    plain: tuple[Path, list[str]], tmp_path: Path
) -> None:
    source, run_ids = plain
    root = _copy(source, tmp_path / "archive")
    with ArchiveStore.open(root, policy=TWO) as store:
        done = store.compact()
    assert sorted(manifest.level for manifest in done) == [1, 1, 1, 1, 1, 1, 2, 2, 2, 3]
    assert [manifest.compaction_id for manifest in done] == sorted(store.compaction_ids)
    for table in TABLES:
        assert live_file_count(root, table) == 2  # 8 runs (level 3) + 4 runs (level 2)
    assert verify_archive_deeply(root) == []
    assert_same_answers(root, source, run_ids)
    assert_directory_reads_see_each_row_once(root, source)


def test_compaction_at_commit_time_answers_like_no_compaction(
    plain: tuple[Path, list[str]], tmp_path: Path
) -> None:
    source, run_ids = plain
    root = tmp_path / "archive"
    assert build(root, TWO) == run_ids
    store = ArchiveStore.open(root, read_only=True)
    assert len(store.compaction_ids) == 10
    assert store.checkpoint is not None
    assert verify_archive_deeply(root) == []
    assert_same_answers(root, source, run_ids)
    assert_directory_reads_see_each_row_once(root, source)
    retired = {
        path.relative_to(root / "_retired").as_posix()
        for path in (root / "_retired").rglob("*.parquet")
    }
    # Every run's own file, and every compacted file but the two in use (6 + 3 + 1 - 2).
    assert len(retired) == len(TABLES) * (12 + 6 + 3 + 1 - 2)
    assert f"topics/part-{run_ids[0]}.parquet" in retired


def test_the_index_kept_by_commits_equals_a_rebuilt_one(tmp_path: Path) -> None:
    steps = _steps()
    with ArchiveStore.open(tmp_path, policy=TWO) as store:
        for index, actions in enumerate(steps):
            commit_step(store, index, actions)
            kept = ArchiveState.of(store).index()
            rebuilt = ArchiveState.of(ArchiveStore.open(tmp_path, read_only=True)).index()
            assert kept == rebuilt, index


def test_opening_reads_only_manifests_after_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_ids = build(tmp_path, TWO)
    parsed: list[str] = []
    real = store_module.load_manifest

    def counting(path: Path) -> Any:
        parsed.append(path.stem)
        return real(path)

    monkeypatch.setattr(store_module, "load_manifest", counting)
    archive = open_archive(tmp_path)
    checkpoint = archive.store.checkpoint
    assert checkpoint is not None
    assert parsed == run_ids[len(checkpoint.run_ids) :]
    assert archive.run_ids == tuple(run_ids)


def test_a_damaged_checkpoint_is_ignored(plain: tuple[Path, list[str]], tmp_path: Path) -> None:
    source, run_ids = plain
    root = tmp_path / "archive"
    build(root, TWO)
    checkpoint = sorted((root / "_catalog").iterdir())[-1]
    events = checkpoint / "events.parquet"
    events.write_bytes(events.read_bytes()[:-10])
    assert _kinds(verify_archive(root)) == ["bad_checkpoint"]
    assert_same_answers(root, source, run_ids)  # the log is rebuilt from the tables
    catalog = checkpoint / "catalog.json"
    data = json.loads(catalog.read_text())
    data["run_ids"] = data["run_ids"][1:]
    catalog.write_text(json.dumps(data))
    assert _kinds(verify_archive(root)) == ["bad_checkpoint"]
    assert_same_answers(root, source, run_ids)
    ArchiveStore.open(root, policy=TWO).close()
    with ArchiveStore.open(root, policy=TWO) as store:
        ArchiveState.of(store)  # the checkpoint then saves the sightings log too
        store.write_checkpoint()
    checkpoint = ArchiveStore.open(root, read_only=True).checkpoint
    assert checkpoint is not None
    assert checkpoint.derived_names == ("events", "validators", "versions")
    assert verify_archive_deeply(root) == []


def test_an_older_checkpoint_and_later_compactions_give_the_same_answers(
    plain: tuple[Path, list[str]], tmp_path: Path
) -> None:
    source, run_ids = plain
    root = tmp_path / "archive"
    build(root, TWO)
    *_, older, newest = sorted((root / "_catalog").iterdir(), key=lambda path: path.name)
    shutil.rmtree(newest)
    store = ArchiveStore.open(root, read_only=True)
    assert store.checkpoint is not None
    assert store.checkpoint.directory == older
    assert len(store.compaction_ids) > len(store.checkpoint.compaction_ids)
    assert verify_archive_deeply(root) == []
    assert_same_answers(root, source, run_ids)


def test_deep_verify_rebuilds_the_checkpoint_log(tmp_path: Path) -> None:
    build(tmp_path, TWO)
    checkpoint = sorted((tmp_path / "_catalog").iterdir())[-1]
    events = pq.read_table(checkpoint / "events.parquet")
    pq.write_table(events.slice(1), checkpoint / "events.parquet")
    catalog = checkpoint / "catalog.json"
    data = json.loads(catalog.read_text())
    sha256, size = layout_module.file_digest(checkpoint / "events.parquet")
    data["state"]["events.parquet"].update(sha256=sha256, bytes=size)
    catalog.write_text(json.dumps(data))
    assert verify_archive(tmp_path) == []
    assert _kinds(verify_archive_deeply(tmp_path)) == ["bad_checkpoint"]


def test_readers_opened_before_a_compaction_still_read(
    plain: tuple[Path, list[str]], tmp_path: Path
) -> None:
    source, run_ids = plain
    root = _copy(source, tmp_path / "archive")
    before = open_archive(root)
    with ArchiveStore.open(root, policy=TWO) as store:
        store.compact()
    assert not (root / "topics" / f"part-{run_ids[0]}.parquet").exists()
    expected = every_answer(open_archive(source), run_ids)
    got = every_answer(before, run_ids)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, obj=name)


# --- crash safety ---------------------------------------------------------------------


@contextmanager
def killed_at(step: int, monkeypatch: pytest.MonkeyPatch, root: Path) -> Iterator[list[str]]:
    """Kill the process just before its `step`-th durable step (a file written in full, a
    rename), counting from 0; yields the steps taken, named by kind and path."""
    steps: list[str] = []
    real_replace = os.replace
    real_write = compaction_module.write_file_durably

    def name(path: Any) -> str:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()

    def take(kind: str, path: Any) -> None:
        if len(steps) == step:
            raise SimulatedKill(f"{kind} {name(path)}")
        steps.append(f"{kind} {name(path)}")

    def replace(source: Any, target: Any) -> None:
        target_name = name(target)
        kind = "retire" if target_name.startswith("_retired/") else "rename"
        take(kind, target)
        real_replace(source, target)

    def write(path: Path, data: bytes) -> tuple[str, int]:
        take("write", path)
        return real_write(path, data)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(compaction_module, "write_file_durably", write)
    monkeypatch.setattr(catalog_module, "write_file_durably", write)
    try:
        yield steps
    finally:
        monkeypatch.undo()


ALLOWED_BEFORE_RECOVERY = {"orphan_part", "uncommitted_leftover", "unretired_file", "stale_view"}


def _kinds(problems: list[Any]) -> list[str]:
    return sorted({problem.kind for problem in problems})


def _kill_points(steps: list[str]) -> list[int]:
    """The first and last step of each run of steps of one kind (staging writes, moves
    into the table directories, a manifest, links of the readers' view, the view's swap,
    retirements, the checkpoint): every kind of state a kill can leave, without trying
    each of dozens of alike steps."""

    def kind(step: str) -> str:
        action, path = step.split(" ", 1)
        top = path.split("/")[0]
        return f"{action} {top if top.startswith(('_', '.')) else 'table'}"

    points = set()
    for index, step in enumerate(steps):
        if index == 0 or kind(step) != kind(steps[index - 1]):
            points.add(index)
        if index == len(steps) - 1 or kind(step) != kind(steps[index + 1]):
            points.add(index)
    return sorted(points)


def in_child_killed_at(step: int | None, root: Path, log: Path, action: Any) -> int:
    """Run `action()` in a forked process that SIGKILLs itself just before its `step`-th
    file-system step that others can see (a file written in full, a rename, a hard or
    symbolic link), counting from 0 (None: never); the steps taken are appended to `log`,
    one a line, named by kind and path. Returns the child's wait status."""
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        return status
    try:  # the child: no return, no cleanup but its own exit
        steps = log.open("a", encoding="utf-8", buffering=1)
        taken = 0

        def take(kind: str, path: Any) -> None:
            nonlocal taken
            if taken == step:
                os.kill(os.getpid(), signal.SIGKILL)
            relative = Path(path).absolute().relative_to(root).as_posix()
            steps.write(f"{kind} {relative}\n")
            taken += 1

        def wrapped(kind: str, real: Any, where: int) -> Any:
            def call(*arguments: Any, **options: Any) -> Any:
                named = arguments[where]
                top = Path(named).absolute().relative_to(root).parts[0]
                take("retire" if top == "_retired" else kind, named)
                return real(*arguments, **options)

            return call

        os.replace = wrapped("rename", os.replace, 1)
        os.link = wrapped("link", os.link, 1)
        os.symlink = wrapped("symlink", os.symlink, 1)
        for module in (store_module, compaction_module, catalog_module):
            module.write_file_durably = wrapped("write", module.write_file_durably, 0)  # type: ignore[attr-defined]
        action()
    except BaseException:  # noqa: BLE001 - the child reports and exits, whatever happened
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def _row_counts(frame: pd.DataFrame) -> Counter[str]:
    """How many times each row is in `frame` (columns in name order)."""
    ordered = frame[sorted(frame.columns)]
    return Counter(repr(row) for row in ordered.itertuples(index=False, name=None))


def assert_globs_read_a_committed_state(root: Path, base_runs: int) -> int:
    """Glob readers of `current/` (pandas on a table's folder, DuckDB on a `**` glob) see
    exactly the rows of the committed runs the view names: no row twice, no row of a run
    without a manifest. Returns how many runs that is."""
    duckdb = pytest.importorskip("duckdb")
    store = ArchiveStore.open(root, read_only=True)
    generation = current_generation(root)
    assert generation is not None
    counts = generation_counts(generation)
    assert counts is not None
    runs, compactions = counts
    # The newest commit, or the one before it when killed between a manifest and the swap.
    assert len(store.run_ids) - 1 <= runs <= len(store.run_ids), generation
    assert base_runs <= runs
    assert compactions <= len(store.compaction_ids), generation
    shown = list(store.run_ids[:runs])
    with duckdb.connect() as connection:
        for table in TABLES:
            expected = store.read_table(table, run_ids=shown).to_pandas()
            run_column = store_module.RUN_COLUMN[table]
            read = pd.read_parquet(root / "current" / table)
            assert set(read[run_column]) <= set(shown), table
            assert _row_counts(read) == _row_counts(expected), table
            glob = f"read_parquet('{root}/current/{table}/**/*.parquet')"
            [(rows, distinct, run_ids)] = connection.sql(
                f"select count(*), (select count(*) from (select distinct * from {glob})), "
                f"list(distinct {run_column}) from {glob}"
            ).fetchall()
            assert rows == len(expected), table
            assert distinct == len(_row_counts(expected)), table
            assert set(run_ids or []) <= set(shown), table
    return runs


def test_glob_readers_see_committed_rows_whenever_a_compacting_commit_is_killed(
    tmp_path: Path,
) -> None:
    """A real SIGKILL at the first and last step of each kind of a commit that triggers a
    merge (the run's files and manifest, the readers' view, the merge's files, manifest
    and retirements, the view again, the checkpoint): before recovery, glob readers see
    the rows of the newest or the previous commit, each once; after it, the newest, and
    all is sound."""
    steps = _steps()
    base = tmp_path / "base"
    with ArchiveStore.open(base, policy=MANUAL_ONLY) as store:
        run_ids = [commit_step(store, index, steps[index]) for index in range(2)]
    policy = CompactionPolicy(fanout=2, checkpoint_every=100)

    def commit_and_compact(root: Path) -> Any:
        def action() -> None:
            with ArchiveStore.open(root, policy=policy) as store:
                commit_step(store, 2, steps[2])

        return action

    dry = _copy(base, tmp_path / "dry")
    log = tmp_path / "dry.log"
    assert in_child_killed_at(None, dry.resolve(), log, commit_and_compact(dry)) == 0
    taken = log.read_text(encoding="utf-8").splitlines()
    kinds = {step.split(" ")[0] for step in taken}
    assert kinds == {"write", "rename", "link", "symlink", "retire"}
    assert sum(step.startswith("rename _compactions/") for step in taken) == 1
    assert any(step.startswith("rename _catalog/") for step in taken)
    assert sum(step == "rename current" for step in taken) == 2  # the run; the merges
    full_runs = len(run_ids) + 1
    assert assert_globs_read_a_committed_state(dry, full_runs) == full_runs
    points = _kill_points(taken)
    assert len(points) >= 20
    for point in points:
        root = _copy(base, tmp_path / f"killed-{point}")
        status = in_child_killed_at(
            point, root.resolve(), tmp_path / "steps.log", commit_and_compact(root)
        )
        where = taken[point]
        assert os.WIFSIGNALED(status), where
        assert os.WTERMSIG(status) == signal.SIGKILL, where
        assert_globs_read_a_committed_state(root, len(run_ids))
        assert set(_kinds(verify_archive(root))) <= ALLOWED_BEFORE_RECOVERY, where
        ArchiveStore.open(root, policy=MANUAL_ONLY).close()  # recovery
        assert verify_archive(root) == [], where  # the view lists the files in use, too
        committed = ArchiveStore.open(root, read_only=True)
        generation = current_generation(root)
        assert generation is not None
        assert generation_counts(generation) == (
            len(committed.run_ids),
            len(committed.compaction_ids),
        ), where
    with ArchiveStore.open(root, policy=policy) as store:  # the last: compaction completes
        store.compact()
    assert verify_archive_deeply(root) == []
    assert live_file_count(root, "topics") == 2


def test_a_commit_killed_during_compaction_keeps_the_run(
    plain: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, run_ids = plain
    root = tmp_path / "archive"
    with ArchiveStore.open(root, policy=MANUAL_ONLY) as store:
        for index, actions in enumerate(_steps()[:-1]):
            commit_step(store, index, actions)
    policy = CompactionPolicy(fanout=4)
    # The run's own steps: 6 moves into place, the manifest; then compaction's.
    with (
        ArchiveStore.open(root, policy=policy) as store,
        killed_at(6 + 1 + 3, monkeypatch, root),
        pytest.raises(SimulatedKill),
    ):
        commit_step(store, len(_steps()) - 1, _steps()[-1])
    assert open_archive(root).run_ids == tuple(run_ids)
    ArchiveStore.open(root, policy=MANUAL_ONLY).close()
    assert verify_archive_deeply(root) == []
    assert_same_answers(root, source, run_ids)


def test_a_failed_compaction_after_a_commit_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    build(tmp_path, MANUAL_ONLY, runs=3)

    def disk_full(path: Path, data: bytes) -> tuple[str, int]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compaction_module, "write_file_durably", disk_full)
    with ArchiveStore.open(tmp_path, policy=TWO) as store:
        run_id = commit_step(store, 3, _steps()[3])
        assert store.run_ids[-1] == run_id
        assert "compacting" in caplog.text
        assert "No space left" in caplog.text
    monkeypatch.undo()
    assert verify_archive(tmp_path) == []
    assert open_archive(tmp_path).run_ids[-1] == run_id


def test_a_damaged_input_is_never_compacted(tmp_path: Path) -> None:
    run_ids = build(tmp_path, MANUAL_ONLY, runs=2)
    path = tmp_path / "links" / f"part-{run_ids[0]}.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with (
        ArchiveStore.open(tmp_path, policy=TWO) as store,
        pytest.raises(store_module.ArchiveCorruptError, match="changed since it was committed"),
    ):
        store.compact()
    assert not list((tmp_path / "links").glob("compacted-*"))
    assert _kinds(verify_archive(tmp_path)) == ["digest_mismatch"]


# --- verify knows compacted archives --------------------------------------------------


@pytest.fixture
def compacted(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "archive"
    return root, build(root, TWO, runs=4)


def test_verify_a_missing_or_unretired_input(compacted: tuple[Path, list[str]]) -> None:
    root, run_ids = compacted
    retired = root / "_retired" / "topics" / f"part-{run_ids[0]}.parquet"
    moved_back = root / "topics" / retired.name
    retired.replace(moved_back)
    (problem,) = verify_archive(root)
    assert problem.kind == "unretired_file"
    assert "directory reads count its rows twice" in problem.message
    ArchiveStore.open(root, policy=MANUAL_ONLY).close()
    assert retired.exists()
    assert not moved_back.exists()
    assert verify_archive(root) == []
    retired.unlink()
    (problem,) = verify_archive(root)
    assert (problem.kind, problem.path) == ("missing_file", f"_retired/topics/{retired.name}")


def test_verify_a_changed_retired_file_only_when_deep(compacted: tuple[Path, list[str]]) -> None:
    root, run_ids = compacted
    retired = root / "_retired" / "links" / f"part-{run_ids[1]}.parquet"
    data = bytearray(retired.read_bytes())
    data[10] ^= 1
    retired.write_bytes(bytes(data))
    assert verify_archive(root) == []
    assert _kinds(verify_archive_deeply(root)) == ["digest_mismatch"]


def test_verify_a_changed_compacted_file(compacted: tuple[Path, list[str]]) -> None:
    root, _ = compacted
    (path,) = sorted((root / "observations").glob("compacted-*"))[:1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    (problem,) = verify_archive(root)
    assert problem.kind == "digest_mismatch"
    assert "compaction" in problem.message


def test_verify_an_uncommitted_compaction_and_recovery(compacted: tuple[Path, list[str]]) -> None:
    root, _ = compacted
    stray = root / "topics" / "compacted-29990101T000000Z-0000-L01.parquet"
    shutil.copy(sorted((root / "topics").glob("compacted-*"))[0], stray)
    (root / "_staging" / "29990101T000000Z-0000-L01").mkdir()
    assert _kinds(verify_archive(root)) == ["orphan_part", "uncommitted_leftover"]
    ArchiveStore.open(root, policy=MANUAL_ONLY).close()
    assert not stray.exists()
    assert verify_archive(root) == []


def test_verify_a_compaction_manifest_that_does_not_add_up(
    compacted: tuple[Path, list[str]],
) -> None:
    root, _ = compacted
    manifest = sorted((root / "_compactions").glob("*.json"))[0]
    data = json.loads(manifest.read_text())
    data["tables"][0]["output"]["rows"] += 1
    manifest.write_text(json.dumps(data))
    assert "bad_compaction" in _kinds(verify_archive(root))


# --- planning -------------------------------------------------------------------------


def _fileset(levels: list[int]) -> FileSet:
    files: dict[str, list[LiveFile]] = {}
    for table in TABLES:
        entries = []
        for index, level in enumerate(levels):
            run = f"r{index:03d}"
            entry = ManifestFile(table=table, path=f"{table}/{run}", rows=1, bytes=1, sha256="")
            entries.append(LiveFile(entry, run, run, level))
        files[table] = entries
    return FileSet(files)


@pytest.mark.parametrize(
    ("levels", "fanout", "expected"),
    [
        pytest.param([0, 0, 0], 4, [], id="too-few"),
        pytest.param([0, 0, 0, 0], 4, [(1, 4)], id="one-merge"),
        pytest.param([1, 1, 1, 0, 0, 0, 0], 4, [(1, 4), (2, 4)], id="cascade"),
        pytest.param([0] * 9, 4, [(1, 4), (1, 4)], id="catch-up"),
        pytest.param([0] * 16, 4, [(1, 4)] * 4 + [(2, 4)], id="catch-up-cascade"),
    ],
)
def test_plan(levels: list[int], fanout: int, expected: list[tuple[int, int]]) -> None:
    merges = plan(_fileset(levels), CompactionPolicy(fanout=fanout))
    assert sorted((merge.level, len(merge.units)) for merge in merges) == sorted(expected)
    assert [merge.compaction_id for merge in merges] == sorted(m.compaction_id for m in merges)


def test_plan_leaves_tables_that_disagree_alone() -> None:
    files = _fileset([0, 0])
    files._tables["topics"] = files._tables["topics"][:1]
    assert plan(files, TWO) == []


def test_a_merge_names_its_runs() -> None:
    merge = Merge("r1-L01", 1, (Unit("r0", "r0", 0), Unit("r1", "r1", 0)))
    assert (merge.first_run, merge.last_run) == ("r0", "r1")


def test_a_policy_refuses_a_fanout_below_two() -> None:
    with pytest.raises(ValueError, match="fanout"):
        CompactionPolicy(fanout=1)


# --- the glob readers' view -------------------------------------------------------------


def _point_current_at(root: Path, target: str) -> None:
    """Make `current` a link to `target` (relative to the archive), as a writer swaps it."""
    temporary = root / ".current.test"
    temporary.symlink_to(target)
    temporary.replace(root / "current")


def test_verify_reports_a_view_that_disagrees_and_a_writer_rebuilds_it(
    compacted: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = compacted
    (linked,) = sorted((root / "current" / "topics").iterdir())[:1]
    linked.unlink()
    (problem,) = verify_archive(root)
    assert (problem.kind, problem.path) == ("bad_view", "current")
    assert f"topics/{linked.name} is missing" in problem.message
    # A view that shows no commit is a problem, not work in progress: exit 1 without --strict.
    assert cli_main(["verify", "--archive", str(root)]) == 1
    captured = capsys.readouterr()
    assert "current: glob readers of current/ see other files" in captured.out
    assert "warning:" not in captured.err
    ArchiveStore.open(root, policy=MANUAL_ONLY).close()
    assert verify_archive(root) == []
    assert (root / "current" / "topics" / linked.name).exists()


def test_verify_warns_of_a_view_of_an_older_commit_and_a_writer_rebuilds_it(
    compacted: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A writer killed between its manifests and the view's swap leaves `current` at the
    previous generation: here the commit before the last compaction, whose inputs are
    retired since."""
    root, _ = compacted
    newest = current_generation(root)
    assert newest is not None
    (previous,) = [view.name for view in (root / "_views").iterdir() if view.name != newest]
    assert generation_counts(previous) < generation_counts(newest)  # type: ignore[operator]
    _point_current_at(root, f"_views/{previous}")
    (problem,) = verify_archive(root)
    assert (problem.kind, problem.path) == ("stale_view", "current")
    assert f"_views/{previous}" in problem.message
    assert cli_main(["verify", "--archive", str(root)]) == 0
    assert "warning: current: glob readers of current/ see an older commit" in (
        capsys.readouterr().err
    )
    assert cli_main(["verify", "--strict", "--archive", str(root)]) == 1
    ArchiveStore.open(root, policy=MANUAL_ONLY).close()
    assert verify_archive(root) == []


def _outside_the_views(root: Path) -> str:
    return "topics"


def _an_older_view_missing_a_file(root: Path) -> str:
    newest = current_generation(root)
    (previous,) = [view for view in (root / "_views").iterdir() if view.name != newest]
    sorted((previous / "topics").iterdir())[0].unlink()
    return f"_views/{previous.name}"


def _a_file_not_committed(root: Path) -> str:
    view = root / "current" / "topics"
    shutil.copy2(sorted(view.iterdir())[0], view / "part-20990101T000000Z-abcd.parquet")
    return f"_views/{current_generation(root)}"


def _a_copy_not_a_link(root: Path) -> str:
    linked = sorted((root / "current" / "topics").iterdir())[0]
    copy = linked.with_name("copy")
    shutil.copy2(linked, copy)
    copy.replace(linked)
    return f"_views/{current_generation(root)}"


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        pytest.param(_outside_the_views, "does not point into _views/", id="outside"),
        pytest.param(_an_older_view_missing_a_file, "is not committed", id="older-incomplete"),
        pytest.param(_a_file_not_committed, "is not committed", id="not-committed"),
        pytest.param(_a_copy_not_a_link, "is not a link to topics/", id="copy"),
    ],
)
def test_verify_fails_on_a_view_that_shows_no_commit(
    compacted: tuple[Path, list[str]],
    damage: Any,
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, _ = compacted
    _point_current_at(root, damage(root))
    (problem,) = verify_archive(root)
    assert (problem.kind, problem.path) == ("bad_view", "current")
    assert expected in problem.message
    assert cli_main(["verify", "--archive", str(root)]) == 1
    assert "error: 1 problem in" in capsys.readouterr().err
    ArchiveStore.open(root, policy=MANUAL_ONLY).close()
    assert verify_archive(root) == []


def test_a_reader_of_the_previous_view_still_reads_after_a_compaction(
    plain: tuple[Path, list[str]], tmp_path: Path
) -> None:
    source, _ = plain
    root = _copy(source, tmp_path / "archive")
    before = (root / "current").resolve()
    rows = len(pd.read_parquet(before / "topics"))
    with ArchiveStore.open(root, policy=TWO) as store:
        store.compact()
    assert (root / "current").resolve() != before
    assert not any((root / "topics").glob("part-*"))
    assert len(pd.read_parquet(before / "topics")) == rows  # hard links outlive the move
    assert len(pd.read_parquet(root / "current" / "topics")) == rows
    with ArchiveStore.open(root) as store:
        vacuum_module.vacuum(store, retain_days=0)
    assert [path.name for path in (root / "_views").iterdir()] == [
        (root / "current").resolve().name
    ]
    assert verify_archive_deeply(root) == []
