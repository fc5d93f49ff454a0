"""Run one of the bench/ scripts as a user would, and read the JSON it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_bench(script: str, *arguments: str) -> dict[str, Any]:
    """`python bench/<script> <arguments>` from the checkout; its report."""
    result = subprocess.run(
        [sys.executable, f"bench/{script}", *arguments],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    return report
