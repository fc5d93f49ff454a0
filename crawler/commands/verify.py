"""`verify`: check the archive against its manifests; exit 1 on any problem.

The contract for leftovers of runs that were never committed (a crawl killed midway, or
one running right now): a run without a manifest never happened, readers of manifests
ignore its files and the next crawl moves them to `_quarantine/`, so they are warnings,
not problems, unless --strict is given. So is a glob readers' view (`current/`) that
shows an older commit than the manifests (a crawl killed between its manifest and the
view's swap, or one committing right now): its readers see that commit's rows, and the
next crawl rebuilds it. A view that shows no commit (`current` pointing outside
`_views/`, files no commit had in use, files missing, links to other files) is a
problem. Files recovery moved to `_quarantine/` are mentioned as `info:`
lines, never problems. Files of an older run whose manifest was lost are a problem:
`repair` rebuilds the manifest.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from crawler.commands.common import (
    EXIT_ARCHIVE,
    EXIT_FAILED,
    EXIT_OK,
    add_archive_option,
    archive_path,
)
from crawler.commands.formats import emit

if TYPE_CHECKING:
    from pipelines.core.verify import Problem


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "verify",
        help="check manifests, files and digests; exit 1 on any problem",
        description="Check the archive against its run manifests: every manifest readable, "
        "every file in use present with its size, sha256 (every byte hashed), row count "
        "and schema, every WARC file's sha256 and its records' digests, every retired file "
        "(in _retired/) present with its size unless `vacuum` deleted it, no version "
        "stored twice, no unlisted file in a table directory, the newest checkpoint "
        "listing the files the manifests do. --deep also hashes every retired file and "
        "rebuilds the checkpoint's sightings log from the tables. Prints each problem "
        "on one line and exits 1 when there is any; otherwise prints `ok: N runs, M files "
        "verified` and exits 0. Leftovers of runs that were never committed (a crawl that "
        "was killed, or one running now) are printed as warnings on stderr: readers of "
        "manifests ignore them and the next crawl moves them to _quarantine/ (listed as "
        "info lines); so is a current/ view that shows an older commit exactly (the next "
        "crawl rebuilds it); --strict counts them as problems. A current/ view that shows "
        "no commit (pointing outside _views/, files missing, not committed or not links to "
        "the table's files) is a problem. Files of an older run whose "
        "manifest was lost are a problem (run `repair`). Exit 3 when the archive is not "
        "a folder or was written by a newer medlineplus-archive. "
        "Read-only; takes no lock.",
    )
    add_archive_option(parser)
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also fail on leftovers of uncommitted runs and a stale current/ view (e.g. in "
        "a check run when no crawl is running)",
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also hash every retired file (about 3 times the bytes of the files in use "
        "after years of compactions) and rebuild the sightings log from every observation "
        "to compare it with the checkpoint's",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.archive.verify_log import verify_archive_deeply
    from pipelines.core.verify import Verification, verify_archive

    check = verify_archive_deeply if args.deep else verify_archive
    verification = Verification.of(archive_path(args), check=check)
    problems: list[Problem] = []
    leftovers: list[Problem] = []
    for problem in verification.problems:
        if verification.in_progress(problem) and not args.strict:
            leftovers.append(problem)
        else:
            problems.append(problem)
    for batch in verification.quarantined:
        print(
            f"info: {batch.path}: {batch.files} file{'s' if batch.files != 1 else ''} of "
            "an uncommitted run or compaction that recovery moved aside (readers ignore "
            "them; delete the folder once you no longer need them)",
            file=sys.stderr,
        )
    for leftover in leftovers:
        print(f"warning: {_one_line(leftover)}{_plain_reader_note(leftover)}", file=sys.stderr)
    if problems:
        emit("".join(f"{_one_line(problem)}\n" for problem in problems))
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        print(f"error: {count} in {verification.path}", file=sys.stderr)
        if any(problem.kind == "newer_schema" for problem in problems):
            return EXIT_ARCHIVE
        return EXIT_FAILED
    depth = " (deep: retired files hashed, sightings log rebuilt)" if args.deep else ""
    emit(f"ok: {verification.runs} runs, {verification.files} files verified{depth}\n")
    return EXIT_OK


def _one_line(problem: Problem) -> str:
    return " ".join(str(problem).split())


def _plain_reader_note(problem: Problem) -> str:
    if problem.kind != "orphan_part":
        return ""
    return " (plain pandas/DuckDB reads of the table directory see it until then)"
