"""Run `medlineplus-archive crawl` in a subprocess against a local server (tests only).

Scrapy's reactor cannot be restarted in one process, so every crawl of a test runs the
real command line in a child process, exactly as a scheduled job would. A command that
starts no crawl (a usage error found before it, `verify`, `extract`...) can run in the
test's own process instead (`run_main`), which saves the child's interpreter start.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crawler.commands.cli import main

QUICK = ["--delay", "0", "--concurrency", "4", "-s", "RETRY_BACKOFF_BASE=0.05"]
"""Options for tests that are not about politeness: no delay between requests."""

PERMISSIVE_ROBOTS = b"User-agent: *\nDisallow: /privatetopic.html\nDisallow: /ency/\n"
"""The fixture site's robots.txt without its Crawl-delay (tests not about politeness)."""


@dataclass(frozen=True)
class CrawlResult:
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stderr ---\n{self.stderr[-4000:]}"


CLI = [sys.executable, "-m", "crawler.commands.cli"]
"""The command line in a new interpreter (what `medlineplus-archive` runs)."""


def run_cli(*arguments: str | Path, timeout: float = 180) -> CrawlResult:
    """Run `medlineplus-archive ARGUMENTS...` and return its exit code and output."""
    completed = subprocess.run(
        [*CLI, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CrawlResult(completed.returncode, completed.stdout, completed.stderr)


def run_main(*arguments: str | Path) -> CrawlResult:
    """`medlineplus-archive ARGUMENTS...` in this process, through the console script's own
    function: its exit code (argparse's usage errors included) and what it printed."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            returncode = main([str(argument) for argument in arguments])
        except SystemExit as exit_:  # argparse's usage errors
            returncode = exit_.code if isinstance(exit_.code, int) else 1
    return CrawlResult(returncode, stdout.getvalue(), stderr.getvalue())


def crawl(base_url: str, archive: Path, *options: str | Path) -> CrawlResult:
    """One crawl of the site at `base_url` into `archive`."""
    return run_cli("crawl", "--base-url", base_url, "--archive", archive, *options)


def observations(archive: Path) -> pd.DataFrame:
    """Every observation of the archive (committed runs only), oldest run first."""
    frame = pd.read_parquet(archive / "observations")
    return frame.sort_values(["run_id", "observed_at"]).reset_index(drop=True)


def last_run(archive: Path) -> pd.DataFrame:
    """The observations of the newest committed run."""
    frame = observations(archive)
    return frame[frame["run_id"] == frame["run_id"].max()].reset_index(drop=True)


def copy_archive(archive: Path, tmp_path: Path) -> Path:
    """A copy of `archive` under `tmp_path`, for a test that changes it."""
    return Path(shutil.copytree(archive, tmp_path / "archive"))
