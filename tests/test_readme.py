"""The README's examples, executed: the quick start, the offline crawl, the loading code."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.cli import build_parser
from crawler.settings import MEDLINEPLUS_BASE_URL

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.DOTALL)
SHELL = [code.strip() for kind, code in BLOCKS if kind == "sh"]
PYTHON = [code for kind, code in BLOCKS if kind == "python"]


def test_quick_start_is_two_commands_and_ci_runs_the_test_one() -> None:
    install_and_crawl, install_and_test = SHELL[:2]
    assert install_and_crawl.endswith(".venv/bin/medlineplus-archive crawl")
    assert install_and_test.endswith(".venv/bin/pytest")
    assert install_and_test in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_quick_start_crawl_targets_the_live_site_politely() -> None:
    command = shlex.split(SHELL[0].rpartition("&&")[2])[1:]
    args = build_parser().parse_args(command)
    assert (args.command, args.base_url, args.delay) == ("crawl", None, 1.0)
    assert MEDLINEPLUS_BASE_URL == "https://medlineplus.gov"


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's offline crawl, run as written (from the repository root)."""
    (offline,) = [command for command in SHELL if "file://" in command]
    workdir = tmp_path_factory.mktemp("readme")
    arguments = shlex.split(offline.replace("$PWD", str(ROOT)))
    assert arguments[0] == ".venv/bin/medlineplus-archive"
    arguments[arguments.index("--archive") + 1] = str(workdir / "output")
    completed = subprocess.run(
        [sys.executable, "-m", "crawler.cli", *arguments[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return workdir


@pytest.mark.parametrize(
    "code", [pytest.param(code, id=f"python-{n}") for n, code in enumerate(PYTHON)]
)
def test_loading_examples_run(demo_archive: Path, code: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=demo_archive,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip()
