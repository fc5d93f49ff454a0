"""bench/polite.py runs its quick history in well under 2 minutes and reports every figure;
its targets hold on that history (the planner's promises, see pipelines/archive/incremental.py)."""

from __future__ import annotations

from tests.bench_runner import run_bench

KEYS = (
    "days",
    "full_requests_per_day",
    "incremental_requests_per_day",
    "requests_share",
    "xml_part_requests_share",
    "changes",
    "detected_same_day",
    "max_detection_delay_days",
    "missed_at_end",
    "false_gone",
)


def test_the_polite_benchmark_reports_every_figure_and_meets_its_targets() -> None:
    report = run_bench("polite.py", "--quick")

    assert set(KEYS) <= set(report)
    assert report["days"] == 30
    assert report["seconds"] < 120
    assert report["changes"] > 0
    assert (
        report["detected_same_day"]
        + report["detected_later"]
        + report["pending_at_end"]
        + report["missed_at_end"]
        == report["changes"]
    )
    assert report["max_detection_delay_days"] < report["revalidate_days"]
    assert report["targets"] == dict.fromkeys(report["targets"], True)
