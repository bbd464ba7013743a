"""The layers of docs/architecture.md, checked on the source: each layer is a folder and
imports only the layers below it, no module takes part in an import cycle, the command
line reaches the rest only through the orchestrators, command modules do not import each
other, and engine names are known only to the engine package."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import jetforge
from jetforge.cli.commands import COMMANDS
from jetforge.engine.table import ENGINES

SOURCE = Path(jetforge.__file__).parent
COMMAND_MODULES = {module for module, _ in COMMANDS.values()}


def imported_modules(path: Path, *, typing: bool = True) -> set[str]:
    """Every module a file imports, at its top or inside a function; with ``typing``
    false, not those imported only for type checking (``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if not typing:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
                node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


# The layers, lowest first: a module imports only from its own layer or lower ones.
# discovery/ and cache/ are one layer that does not mix (neither imports the other).
RANKS = {"core": 0, "host": 1, "engine": 2, "discovery": 3, "cache": 3, "ops": 4, "cli": 5}
SHARED = {"errors", "reporter"}  # values every layer may use; they import only the core
ENTRY = {"__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in SOURCE.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    """The jetforge modules ``path`` imports (type-only imports included), each the module
    itself, not a name in it."""
    found = set()
    for name in imported_modules(path):
        while name not in MODULES and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in MODULES and name != "jetforge":
            found.add(name)
    return found


def layer_of(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_the_package_holds_its_entry_point_and_shared_values_besides_the_layers():
    loose = sorted(path.name for path in SOURCE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "errors.py", "reporter.py"]
    folders = {path.name for path in SOURCE.iterdir() if (path / "__init__.py").is_file()}
    assert folders == set(RANKS)


def test_the_core_imports_only_the_core_and_the_errors():
    outside = {
        f"{module} imports {name}"
        for module, path in MODULES.items()
        if layer_of(module) == "core"
        for name in imports_of(path)
        if layer_of(name) != "core" and name != "jetforge.errors"
    }
    assert outside == set()


def is_upward(layer: str, other: str) -> bool:
    """Whether a module of ``layer`` importing one of ``other`` goes up (or across
    discovery/ and cache/). The entry point ``__main__`` may import anything."""
    if layer in SHARED or layer == "":
        return other not in ("core", *SHARED)
    if layer not in RANKS or other not in RANKS:
        return False
    return RANKS[other] > RANKS[layer] or (RANKS[other] == RANKS[layer] and other != layer)


def test_no_layer_imports_a_layer_above_it():
    upward = {
        f"{module} imports {name}"
        for module, path in MODULES.items()
        for name in imports_of(path)
        if is_upward(layer_of(module), layer_of(name))
    }
    assert upward == set()


def test_no_module_takes_part_in_an_import_cycle():
    graph = {module: imports_of(path) - {module} for module, path in MODULES.items()}
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        raise AssertionError(f"an import cycle: {' -> '.join(error.args[1])}") from None


def test_the_command_line_reaches_the_rest_only_through_the_orchestrators():
    reached = {
        f"{module} imports {name}"
        for module, path in MODULES.items()
        if layer_of(module) == "cli"
        for name in imports_of(path)
        if layer_of(name) not in ("cli", "ops", "core", *SHARED)
    }
    assert reached == set()


def test_no_command_module_imports_another():
    crossing = {
        f"{path.name} imports {name}"
        for path in (SOURCE / "cli").glob("*.py")
        for name in imported_modules(path) & COMMAND_MODULES
        if name != f"jetforge.cli.{path.stem}"
    }
    assert crossing == set()


def test_only_the_entry_points_outside_cli_import_it():
    importers = {
        str(path.relative_to(SOURCE))
        for path in SOURCE.rglob("*.py")
        if path.parent.name != "cli"
        and any(name.startswith("jetforge.cli") for name in imported_modules(path))
    }
    assert importers == {"__main__.py"}  # it runs the CLI


def test_engine_names_are_spelled_only_in_the_engine_package():
    spelled = {
        f"{path.relative_to(SOURCE)}: {name}"
        for path in SOURCE.rglob("*.py")
        if "engine" not in path.relative_to(SOURCE).parts[:1]
        for name in ENGINES
        if f'"{name}"' in path.read_text(encoding="utf-8")
    }
    assert spelled == set()
