"""The README's examples, executed: the quick start, the offline crawl, the loading code."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from crawler.commands.cli import build_parser
from crawler.settings import MEDLINEPLUS_BASE_URL
from tests.crawl_runner import CrawlResult, run_cli, run_main

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


def _run_example(line: str, workdir: Path) -> CrawlResult:
    """One README command line, run as written, with the files it names (demo-archive,
    demo-2024.csv...) placed under `workdir`. A crawl runs in a child process (Scrapy's
    reactor starts once per process); every other command calls the console script's
    function, `crawler.commands.cli.main`, in this process (no interpreter start)."""
    arguments = shlex.split(line.replace("$PWD", str(ROOT)))
    assert arguments[0] == ".venv/bin/medlineplus-archive", line
    arguments = [
        str(workdir / argument) if argument.startswith("demo-") else argument
        for argument in arguments[1:]
    ]
    if arguments[0] == "crawl":
        return run_cli(*arguments, timeout=120)
    return run_main(*arguments)


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every shell example after the quick start, run in order; the directory holding the
    archive they built (also linked as `output`, the name the Python examples use)."""
    workdir = tmp_path_factory.mktemp("readme")
    for block in SHELL[2:]:
        for line in block.splitlines():
            completed = _run_example(line, workdir)
            assert completed.returncode == 0, f"{line}\n{completed.stderr[-3000:]}"
    (workdir / "output").symlink_to(workdir / "demo-archive")
    return workdir


def test_shell_examples_ran(demo_archive: Path) -> None:
    assert (demo_archive / "demo-2024.csv").stat().st_size > 0
    assert "</html>" in (demo_archive / "demo-changes.html").read_text(encoding="utf-8")
    served = (ROOT / "tests" / "fixtures" / "site" / "asthma.html").read_bytes()
    assert (demo_archive / "demo-asthma.html").read_bytes() == served
    listed = _run_example(
        ".venv/bin/medlineplus-archive runs --format json --archive demo-archive", demo_archive
    )
    assert [run["status"] for run in json.loads(listed.stdout)] == ["success", "success"]


@pytest.mark.parametrize(
    "code", [pytest.param(code, id=f"python-{n}") for n, code in enumerate(PYTHON)]
)
def test_loading_examples_run(
    demo_archive: Path,
    code: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each example as a script of its own, run in this process from the folder that holds
    `output` (a fresh namespace; the imports it names are loaded once for all of them)."""
    monkeypatch.chdir(demo_archive)
    exec(compile(code, "<README example>", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.strip()
