"""The import graph keeps the layers of ARCHITECTURE.md: every module of `crawler` and
`pipelines` is parsed (ast, nothing imported), and its imports, the lazy ones inside
functions too, must point down the layers, never up, and never round in a cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("crawler", "pipelines")

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("parsing", ("crawler.parsing",)),
    ("core", ("pipelines.core",)),
    ("archive", ("pipelines.archive",)),
    ("changes", ("pipelines.changes",)),
    ("item pipelines", ("pipelines",)),
    ("crawling", ("crawler", "crawler.spiders")),
    ("commands", ("crawler.commands",)),
)
"""Bottom to top: each layer's packages (or modules); a module belongs to the layer of its
longest matching prefix (`pipelines.core.store` to core, `pipelines.archiving` to the
item pipelines)."""

ALLOWED_UPWARD: frozenset[tuple[str, str]] = frozenset()
"""The imports that may point up a layer, each with why: none since store.py was split;
the list never grows (an entry whose import is gone fails the test below)."""

NOT_IN_PARSING = ("scrapy", "twisted", "pipelines")
"""Parsing is pure: HTML and XML in, items out, with no crawler framework and no archive."""
NOT_BELOW_ITEM_PIPELINES = ("scrapy", "twisted")
"""The archive (core, domain, changes) loads in a notebook without Scrapy or Twisted."""
FORBIDDEN_IMPORTS: dict[str, tuple[str, ...]] = {
    "parsing": NOT_IN_PARSING,
    "core": NOT_BELOW_ITEM_PIPELINES,
    "archive": NOT_BELOW_ITEM_PIPELINES,
    "changes": NOT_BELOW_ITEM_PIPELINES,
}
"""Top-level packages (or project packages) each layer must not import."""


@dataclass(frozen=True, slots=True)
class Import:
    source: str
    target: str
    """A module of the project, or the top-level name of another package (`scrapy`)."""
    typing_only: bool
    """Inside `if TYPE_CHECKING:`: never run, so no import cycle, but still a dependency."""
    line: int


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(node: ast.Import | ast.ImportFrom, module: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package.pop()
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([base] if base else [])])
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        yield candidate if candidate in MODULES else base


def _project_or_top(name: str) -> str:
    """`name`'s longest prefix that is a project module, else its top-level package."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in MODULES:
            return prefix
    return parts[0]


def _imports_of(module: str) -> Iterator[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))

    def visit(node: ast.AST, typing_only: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for name in _imported(child, module):
                    target = _project_or_top(name)
                    if target != module:
                        yield Import(module, target, typing_only, child.lineno)
            elif isinstance(child, ast.If) and _is_type_checking(child):
                yield from visit(ast.Module(body=child.body, type_ignores=[]), True)
                yield from visit(ast.Module(body=child.orelse, type_ignores=[]), typing_only)
            else:
                yield from visit(child, typing_only)

    yield from visit(tree, False)


IMPORTS = [found for module in MODULES for found in _imports_of(module)]
PROJECT_IMPORTS = [found for found in IMPORTS if found.target in MODULES]


def layer_of(module: str) -> int:
    matches = [
        (len(prefix), index)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer: add its package to LAYERS and ARCHITECTURE.md"
    return max(matches)[1]


def _cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for following in sorted(graph[node]):
            if following not in index:
                connect(following)
                low[node] = min(low[node], low[following])
            elif following in on_stack:
                low[node] = min(low[node], index[following])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def _where(found: Import) -> str:
    return f"{MODULES[found.source].relative_to(ROOT)}:{found.line}: {found.target}"


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_no_import_cycle_between_modules() -> None:
    edges = {(found.source, found.target) for found in PROJECT_IMPORTS if not found.typing_only}
    assert _cycles(edges) == []


def package_of(module: str) -> str:
    """The dotted name of the folder that holds `module` (`crawler.commands` for
    `crawler.commands.cli`, `crawler` for `crawler.settings` and for `crawler` itself)."""
    return ".".join(MODULES[module].parent.relative_to(ROOT).parts)


def test_no_import_cycle_between_packages() -> None:
    """A package's modules may import from another package, or be imported by it, not
    both: `crawler/cli.py` importing the commands, which import `crawler`, was a cycle.
    Only imports that run count (not those under TYPE_CHECKING)."""
    edges = {
        (package_of(found.source), package_of(found.target))
        for found in PROJECT_IMPORTS
        if not found.typing_only
    }
    assert _cycles({(source, target) for source, target in edges if source != target}) == []


def test_no_import_cycle_between_layers() -> None:
    edges = {
        (LAYERS[layer_of(found.source)][0], LAYERS[layer_of(found.target)][0])
        for found in PROJECT_IMPORTS
        if (found.source, found.target) not in ALLOWED_UPWARD
    }
    assert _cycles({(source, target) for source, target in edges if source != target}) == []


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{_where(found)} ({LAYERS[layer_of(found.source)][0]} -> "
        f"{LAYERS[layer_of(found.target)][0]})"
        for found in PROJECT_IMPORTS
        if layer_of(found.target) > layer_of(found.source)
        and (found.source, found.target) not in ALLOWED_UPWARD
    ]
    assert upward == []


def test_the_allowed_upward_imports_still_exist() -> None:
    """An allowance whose import is gone is removed, so the list only shrinks."""
    present = {(found.source, found.target) for found in PROJECT_IMPORTS}
    assert present >= ALLOWED_UPWARD


def test_the_core_imports_nothing_above_it() -> None:
    core = layer_of("pipelines.core")
    above = [
        _where(found)
        for found in PROJECT_IMPORTS
        if layer_of(found.source) == core
        and layer_of(found.target) > core
        and (found.source, found.target) not in ALLOWED_UPWARD
    ]
    assert above == []


@pytest.mark.parametrize("layer", list(FORBIDDEN_IMPORTS))
def test_layer_does_not_import(layer: str) -> None:
    forbidden = FORBIDDEN_IMPORTS[layer]
    wanted = [name for name, _ in LAYERS].index(layer)
    found = [
        _where(found)
        for found in IMPORTS
        if layer_of(found.source) == wanted and found.target.split(".")[0] in forbidden
    ]
    assert found == []


def test_the_graph_sees_lazy_and_typing_imports() -> None:
    """The parser finds imports inside functions and under TYPE_CHECKING, or the checks
    above would pass by seeing too little."""
    notify = {
        (found.target, found.typing_only) for found in IMPORTS if found.source == "crawler.notify"
    }
    assert ("pipelines.notebook", False) in notify  # inside a function
    assert ("pipelines.core.records", True) in notify


def test_architecture_names_every_layer_folder() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    folders = {prefix.replace(".", "/") for _, prefixes in LAYERS for prefix in prefixes}
    missing = sorted(folder for folder in folders if f"`{folder}" not in text)
    assert missing == []


# --- nothing above the core touches the archive's files ---------------------------------

FILE_LEVEL_MODULES = (
    "pipelines.core.layout",
    "pipelines.core.catalog",
    "pipelines.core.glob_view",
    "pipelines.core.recovery",
    "pipelines.core.lock",
)
"""The core's modules that know its files: the layout on disk and the manifests' files,
checkpoints, the glob readers' view, recovery and quarantine, the lock. The layers above
use the archive through `ArchiveStore` and the core's verbs (`verify`, `repair`, `vacuum`,
`publish`, `compact`), so that another table format can replace the core."""

ALLOWED_FILE_LEVEL: frozenset[tuple[str, str]] = frozenset(
    {
        # `fsync_dir` makes the files a user names (--out, --stats-json) durable: the
        # user's own files, never the archive's.
        ("crawler.commands.output", "pipelines.core.layout"),
    }
)
"""Imports of a file-level module from above the core, each with why; never grown."""

NO_FILE_SYSTEM = ("os", "shutil", "glob")
"""What the layers between the core and the crawler (the domain, change detection, the
item pipelines) do not import: they reach files only through the core."""


def _above_the_core(module: str) -> bool:
    return layer_of(module) > layer_of("pipelines.core")


def _defined_names(module: str) -> set[str]:
    """The public names `module` defines at its top level (not those it imports)."""
    names: set[str] = set()
    for node in ast.parse(MODULES[module].read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
    return {name for name in names if not name.startswith("_")}


def _names_from_the_core(module: str) -> Iterator[tuple[str, str, int]]:
    """(core module, name, line) of every `from pipelines.core... import name` in `module`,
    lazy and typing-only imports included."""
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipelines.core"):
            for alias in node.names:
                yield _project_or_top(f"{node.module}.{alias.name}"), alias.name, node.lineno


def test_nothing_above_the_core_imports_its_file_level_modules() -> None:
    found = [
        _where(found)
        for found in PROJECT_IMPORTS
        if _above_the_core(found.source)
        and found.target in FILE_LEVEL_MODULES
        and (found.source, found.target) not in ALLOWED_FILE_LEVEL
    ]
    assert found == []


def test_nothing_above_the_core_takes_file_level_names_through_another_core_module() -> None:
    """`from pipelines.core.store import load_manifest` is the layout all the same: a name
    a file-level module defines is not imported above the core from any core module."""
    file_level = {name: owner for owner in FILE_LEVEL_MODULES for name in _defined_names(owner)}
    found = [
        f"{MODULES[module].relative_to(ROOT)}:{line}: {name} ({file_level[name]}, via {source})"
        for module in MODULES
        if _above_the_core(module)
        for source, name, line in _names_from_the_core(module)
        if name in file_level
        and source not in FILE_LEVEL_MODULES
        and name not in _defined_names(source)
    ]
    assert found == []


def test_the_allowed_file_level_imports_still_exist() -> None:
    present = {(found.source, found.target) for found in PROJECT_IMPORTS}
    assert present >= ALLOWED_FILE_LEVEL


def test_the_layers_between_the_core_and_the_crawler_use_no_file_system() -> None:
    between = {"archive", "changes", "item pipelines"}
    found = [
        _where(found)
        for found in IMPORTS
        if LAYERS[layer_of(found.source)][0] in between and found.target in NO_FILE_SYSTEM
    ]
    assert found == []


COMMAND_HELPERS = ("crawler.commands.common", "crawler.commands.formats", "crawler.commands.output")
"""What several commands share; every other module of `crawler.commands` is one command."""


COMMAND_LINE = "crawler.commands.cli"
"""The entry point: it imports every command to dispatch to it."""


def test_a_command_imports_no_other_command() -> None:
    found = [
        _where(found)
        for found in PROJECT_IMPORTS
        if found.source.startswith("crawler.commands.")
        and found.source != COMMAND_LINE
        and found.target.startswith("crawler.commands.")
        and found.target not in COMMAND_HELPERS
    ]
    assert found == []
