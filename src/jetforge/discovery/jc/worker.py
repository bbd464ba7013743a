"""The jc side of the script worker (:mod:`jetforge.discovery.script_worker`): jc's module-level
config scripts, run with an injected ``package``, the compatibility module as
``jetson_containers`` and ``packages.*`` imports resolved under the package roots.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jetforge.discovery.audit import RECORDER
from jetforge.discovery.configure import script_failure
from jetforge.discovery.jc.reader import read_records
from jetforge.errors import DefinitionError

COMPAT_DIR = Path(__file__).parent / "compat"


def compat() -> types.ModuleType:
    """The compatibility module, as config scripts import it (``jetson_containers``)."""
    return importlib.import_module("jetson_containers")


class PackagesFinder:
    """Resolves ``packages.a.b`` to ``<root>/a/b`` (a directory or ``b.py``) under the
    package roots, so config scripts can import each other's helpers as jc allows.

    Every place it looks is reported as read (:data:`jetforge.discovery.audit.RECORDER`),
    found or not: a script that imported a helper, or looked for one that is not there,
    runs again when the helper changes or appears. A meta path finder by protocol:
    ``importlib.abc`` costs 25 ms to import."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = tuple(roots)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,  # noqa: ARG002 - the finder protocol's signature
        target: types.ModuleType | None = None,  # noqa: ARG002
    ) -> importlib.machinery.ModuleSpec | None:
        parts = fullname.split(".")
        if parts[0] != "packages":
            return None
        if len(parts) == 1:
            return _namespace(fullname, [str(root) for root in self.roots])
        for root in self.roots:
            base = root.joinpath(*parts[1:])
            if base.is_dir():
                init = base / "__init__.py"
                if init.is_file():
                    return importlib.util.spec_from_file_location(
                        fullname, init, submodule_search_locations=[str(base)]
                    )
                RECORDER.path(base, reading=True)  # (its stamp tells of an __init__ added)
                return _namespace(fullname, [str(base)])
            RECORDER.path(base, reading=True)  # missing, or a file: a directory may come
            module = base.with_name(base.name + ".py")
            if module.is_file():
                return importlib.util.spec_from_file_location(fullname, module)
            RECORDER.path(module, reading=True)  # missing: it may come
        return None


def _namespace(name: str, locations: list[str]) -> importlib.machinery.ModuleSpec:
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = locations
    return spec


class ScriptRunner:
    """Runs one ``config.py`` as jc does: a module with ``package`` injected, whose
    relative imports resolve inside its own directory."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, path: Path, package: object) -> object:
        self.count += 1
        parent = f"_jetforge_jc_package_{self.count}"
        holder = types.ModuleType(parent)
        holder.__path__ = [str(path.parent)]
        sys.modules[parent] = holder
        spec = importlib.util.spec_from_file_location(f"{parent}.config", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        module.package = package  # type: ignore[attr-defined]
        sys.modules[spec.name] = module
        cwd = Path.cwd()
        try:
            spec.loader.exec_module(module)
        finally:
            os.chdir(cwd)
            # The script's own modules go: a runner whose scripts left none of theirs is as
            # it was (jetforge.discovery.audit.Baseline), and the next script may use it.
            for name in [name for name in sys.modules if name.partition(".")[0] == parent]:
                del sys.modules[name]
        return getattr(module, "package", None)


def read(request: dict[str, Any], run_script: ScriptRunner) -> dict[str, object]:
    """Answer one directory request: its records and warnings, or its error."""
    take_warnings = compat().take_warnings
    directory = Path(request["directory"])
    take_warnings()
    try:
        records = read_records(directory, frozenset(request["files"]), run_script)
    except DefinitionError as error:
        return {"error": [str(error.path), error.line, error.problem]}
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        return script_failure(error, directory)
    return {"records": records, "warnings": take_warnings()}
