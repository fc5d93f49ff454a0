"""bench/archive.py still builds through the writer and reports every figure (tiny run)."""

from __future__ import annotations

from pathlib import Path

from tests.bench_runner import run_bench

FIGURES = (
    "open",
    "topics_latest",
    "topics_as_of_date",
    "topics_as_of_run",
    "history",
    "verify",
    "unchanged_run",
)


def test_the_archive_benchmark_reports_every_figure(tmp_path: Path) -> None:
    arguments = ["--years", "0.05", "--topics", "40", "--repeat", "1"]
    report = run_bench("archive.py", *arguments, "--archive", str(tmp_path / "a"))
    assert report["build"]["runs"] == 18
    assert report["layout"]["compactions"] == 1
    for figure in FIGURES:
        assert report[figure]["ok"], (figure, report[figure])
    assert report["topics_latest"]["rows"] == 40
    assert report["verify"]["problems"] == 0
