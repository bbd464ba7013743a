"""The layers of docs/architecture.md, checked on the source: the core imports nothing
above it, command modules do not import each other, and engine names are known only to
the engine package."""

from __future__ import annotations

import ast
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


def test_the_core_imports_only_the_core_and_the_errors_at_run_time():
    outside = {
        f"{path.name} imports {name}"
        for path in (SOURCE / "core").glob("*.py")
        for name in imported_modules(path, typing=False)
        if name.startswith("jetforge")
        and not name.startswith(("jetforge.core", "jetforge.errors"))
        and name != "jetforge.__version__"
        and name != "jetforge"
    }
    assert outside == set()


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
