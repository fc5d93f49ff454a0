"""The glob readers' view: `current/<table>/` holds exactly the committed files in use.

A table directory (`topics/`) is where files are written, moved and retired: while a run
commits, its files sit there before its manifest does, and a compaction's merged files
sit there beside its inputs until they are retired. A reader that lists a table
directory (`pandas.read_parquet("<archive>/topics")`, DuckDB's
`read_parquet('<archive>/topics/*.parquet')`) would see, in those moments, rows of a run
never committed or rows twice.

So glob readers read `current/` instead: a relative symbolic link to
`_views/<generation>/`, a folder holding, per table, a hard link to each file in use
(the `FileSet` the manifests commit) and nothing else. After each commit (a run, then
the compactions it triggers), the writer builds the next generation's folder beside the
others, where no reader looks, makes its entries durable, and only then swaps `current`
with one rename (`os.replace` of a link written under a temporary name). A rename is
atomic: every reader resolves `current` to one generation, complete, that a committed
state lists exactly. Killed before the rename, readers keep the previous generation:
the rows of the previous commit, each once (stale, never wrong); the next writer to open
the archive builds the view of what is committed (`refresh_view`), as recovery finishes
everything else.

Hard links, not symbolic ones, so that a reader that resolved `current` just before a
swap still reads the files of its generation after a compaction retired them (a hard
link survives the file's move to `_retired/`). They cost no data bytes, one directory
entry per file in use (a few dozen per table after ten years) and one folder per table
per generation. The generation before the current one is kept for such readers; older
ones are removed at each swap, and `pipelines.core.vacuum` keeps only the current one, so a
link never keeps a vacuumed file's bytes alive for long.

A generation is named after the committed state it shows: `r<runs>-c<compactions>-<tag>`
(counts of committed runs and compactions, a random tag so that a rebuild never reuses a
folder a reader may be in). An archive published to object storage has no view: S3 has
no links, and its files never move there (see `pipelines.core.publish`).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from pathlib import Path

from pipelines.core.catalog import FileSet
from pipelines.core.errors import ArchiveCorruptError
from pipelines.core.layout import CURRENT_VIEW, VIEWS_DIR, fsync_dir, retired_path
from pipelines.core.schema import TABLES

logger = logging.getLogger(__name__)

_GENERATION = re.compile(r"r(?P<runs>\d{6,})-c(?P<compactions>\d{6,})-[0-9a-f]{4}")


def generation_counts(name: str) -> tuple[int, int] | None:
    """The (runs, compactions) a generation folder's name says it shows, None when the
    name is not a generation's."""
    match = _GENERATION.fullmatch(name)
    if match is None:
        return None
    return int(match["runs"]), int(match["compactions"])


def current_generation(root: Path) -> str | None:
    """The generation `current` points at, None when there is no view (an archive without
    runs, or written before views existed) or `current` is not a link into `_views/`."""
    try:
        target = (root / CURRENT_VIEW).readlink()
    except OSError:
        return None
    folder, _, name = target.as_posix().partition("/")
    if folder != VIEWS_DIR or "/" in name or generation_counts(name) is None:
        return None
    return name


def expected_files(files: FileSet) -> dict[str, set[str]]:
    """Per table, the file names the view must hold."""
    return {table: {Path(live.entry.path).name for live in files.files(table)} for table in TABLES}


def view_disagreements(root: Path, files: FileSet, generation: str | None = None) -> list[str]:
    """How generation `generation` (default: the one `current` points at) differs from
    `files` (committed files, those in use or, for an older generation, those in use
    then): files it lacks or has too many, or that are not links to the archive's own
    (in its table directory, or in `_retired/` once a compaction replaced them); empty
    when it agrees."""
    name = generation or current_generation(root)
    if name is None:
        return [f"{CURRENT_VIEW} is missing or does not point into {VIEWS_DIR}/"]
    view = root / VIEWS_DIR / name
    found: list[str] = []
    for table, wanted in expected_files(files).items():
        directory = view / table
        try:
            present = {entry.name for entry in os.scandir(directory)}
        except OSError:
            present = set()
        found += [f"{table}/{file} is missing" for file in sorted(wanted - present)]
        found += [f"{table}/{file} is not committed" for file in sorted(present - wanted)]
        for file in sorted(wanted & present):
            relative = f"{table}/{file}"
            original = root / relative
            if not original.exists():
                original = root / retired_path(relative)
            try:
                same = (directory / file).samefile(original)
            except OSError:  # a file in use that is gone: verify reports that already
                continue
            if not same:
                found.append(f"{relative} is not a link to {relative}")
    return found


def _link(committed: Path, link: Path) -> None:
    """Hard-link a committed file into a view. ArchiveCorruptError when the file is
    missing: a manifest commits it, so the archive is damaged (not the disk full)."""
    try:
        os.link(committed, link)
    except FileNotFoundError as error:
        if committed.exists():
            raise
        raise ArchiveCorruptError(
            f"{committed} is missing, though a manifest commits it; run "
            "`medlineplus-archive verify`",
            path=committed,
        ) from error


def publish_view(root: Path, files: FileSet, runs: int, compactions: int) -> str:
    """Build the view of `files` (the committed state of `runs` runs and `compactions`
    compactions) and make `current` point at it; returns the generation's name.

    Writers only (under the lock). Removes generations older than the one replaced.
    ArchiveCorruptError when a committed file is missing.
    """
    views = root / VIEWS_DIR
    views.mkdir(exist_ok=True)
    previous = current_generation(root)
    name = f"r{runs:06d}-c{compactions:06d}-{secrets.token_hex(2)}"
    view = views / name
    view.mkdir()
    for table, names in expected_files(files).items():
        directory = view / table
        directory.mkdir()
        for file in sorted(names):
            _link(root / table / file, directory / file)
        fsync_dir(directory)
    fsync_dir(view)
    fsync_dir(views)
    link = root / CURRENT_VIEW
    if link.is_dir() and not link.is_symlink():
        # A copy of the archive that followed the link (`cp -r`, `shutil.copytree`): a
        # plain folder no writer keeps up to date.
        logger.info("removed %s: a folder, not the link to the view", link)
        shutil.rmtree(link)
    temporary = root / f".{CURRENT_VIEW}.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(f"{VIEWS_DIR}/{name}")
    temporary.replace(link)
    fsync_dir(root)
    prune_views(root, keep={name} if previous is None else {name, previous})
    return name


def refresh_view(root: Path, files: FileSet, runs: int, compactions: int) -> str | None:
    """Publish the view of the committed state unless `current` already shows it (a
    writer's check at opening, after recovery); returns the generation published, None
    when there was nothing to do (the view agrees, or there is no run yet)."""
    if runs == 0:
        return None
    name = current_generation(root)
    if (
        name is not None
        and generation_counts(name) == (runs, compactions)
        and not view_disagreements(root, files, name)
    ):
        return None  # the generation before it stays, for a reader that may be in it
    published = publish_view(root, files, runs, compactions)
    if name is None:
        logger.info("created %s/ (%s/%s) for glob readers", CURRENT_VIEW, VIEWS_DIR, published)
    else:
        logger.warning(
            "rebuilt %s/ (%s/%s): %s/%s did not show the committed state",
            CURRENT_VIEW,
            VIEWS_DIR,
            published,
            VIEWS_DIR,
            name,
        )
    return published


def prune_views(root: Path, keep: set[str]) -> None:
    """Remove the generations not in `keep` (those a build killed half-way left too)."""
    views = root / VIEWS_DIR
    for entry in sorted(views.iterdir()) if views.is_dir() else ():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
