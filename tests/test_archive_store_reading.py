"""What the layers above the core ask `ArchiveStore` about its files, instead of looking
at them: whether a folder is there (`folder_exists`), whether a path is inside the
archive (`contains`), and what `snapshot --out` makes of the answer."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from crawler.commands.cli import main
from pipelines.core.errors import ArchiveNotAFolderError
from pipelines.core.store import ArchiveStore
from tests.archive_factory import at, commit_run, make_page


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reading") / "archive"
    commit_run(root, at(date(2024, 3, 1)), [make_page("asthma")])
    return root


def test_folder_exists_tells_nothing_there_from_a_folder_and_refuses_a_file(
    tmp_path: Path,
) -> None:
    assert not ArchiveStore.folder_exists(tmp_path / "missing")
    assert ArchiveStore.folder_exists(tmp_path)  # an empty folder: an archive to make
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    for path in (tmp_path / "file.txt", tmp_path / "file.txt" / "archive"):
        with pytest.raises(ArchiveNotAFolderError):
            ArchiveStore.folder_exists(path)


def test_contains_follows_links_and_sees_only_the_archive_folder(
    archive: Path, tmp_path: Path
) -> None:
    (tmp_path / "into").symlink_to(archive / "topics")
    (tmp_path / "beside").mkdir()
    with ArchiveStore.open(archive, read_only=True) as store:
        assert store.contains(archive / "topics" / "new.csv")
        assert store.contains(archive)
        assert store.contains(tmp_path / "into" / "new.csv")
        assert not store.contains(tmp_path / "beside" / "new.csv")
        assert not store.contains(archive.parent / f"{archive.name}-copy")  # a prefix only


def test_a_snapshot_through_a_link_into_the_archive_is_refused(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "into").symlink_to(archive / "topics")
    out = tmp_path / "into" / "snapshot.csv"

    code = main(["snapshot", "--archive", str(archive), "--out", str(out)])

    _, err = capsys.readouterr()
    assert code == 2
    assert err == f"error: --out: {out} is inside the archive {archive}; write elsewhere\n"
    assert not (archive / "topics" / "snapshot.csv").exists()
