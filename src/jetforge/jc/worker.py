"""The worker process that reads jc package directories: ``python -m jetforge.jc.worker``.

jc config scripts are module-level code: they may print, loop, exit, change directory or
reach for the network. They run here, not in the jetforge process. The worker answers
one JSON line per JSON request line on the descriptor that was its stdout; the scripts'
own output goes to /dev/null. The network is refused (so lookups fail at once and the
scripts' fallbacks apply) and ``time.sleep`` returns at once (so retry loops end). The
first request sets the platform constants and the roots of ``packages.*`` imports (it gets
no answer).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import os
import socket
import sys
import time
import traceback
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jetforge.errors import DefinitionError
from jetforge.jc.reader import OFFLINE_NOTE, read_records

COMPAT_DIR = Path(__file__).parent / "compat"


def compat() -> types.ModuleType:
    """The compatibility module, as config scripts import it (``jetson_containers``)."""
    return importlib.import_module("jetson_containers")


class PackagesFinder:
    """Resolves ``packages.a.b`` to ``<root>/a/b`` (a directory or ``b.py``) under the
    package roots, so config scripts can import each other's helpers as jc allows.

    A meta path finder by protocol: ``importlib.abc`` costs 25 ms to import."""

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
                return _namespace(fullname, [str(base)])
            module = base.with_name(base.name + ".py")
            if module.is_file():
                return importlib.util.spec_from_file_location(fullname, module)
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
        return getattr(module, "package", None)


def _refuse(*_args: object, **_options: object) -> Any:
    compat().log_warning(OFFLINE_NOTE)
    raise OSError("jetforge reads packages offline: config scripts get no network")


def go_offline() -> None:
    """Refuse every connection and name lookup; make sleeps return at once."""
    socket.socket.connect = _refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = _refuse  # type: ignore[method-assign]
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
    time.sleep = lambda _seconds: None


def _error_line(error: BaseException, directory: Path) -> tuple[str, int | None]:
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if Path(frame.filename).is_relative_to(directory)
    ]
    if frames:
        return frames[-1].filename, frames[-1].lineno
    if isinstance(error, SyntaxError) and error.filename:
        return error.filename, error.lineno
    return str(directory / "config.py"), None


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
        where, line = _error_line(error, directory)
        problem = f"config script raised {type(error).__name__}: {error}"
        if isinstance(error, SystemExit):
            problem = f"config script called exit({error.code})"
        return {"error": [where, line, problem]}
    return {"records": records, "warnings": take_warnings()}


def main() -> None:
    """Serve requests until stdin closes."""
    # The requests and answers keep descriptors of their own; a script that reads stdin
    # or writes stdout gets /dev/null.
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    sys.stdin = Path(os.devnull).open(encoding="utf-8")  # noqa: SIM115
    sys.stdout = sys.stderr = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(COMPAT_DIR))
    go_offline()
    run_script = ScriptRunner()
    for line in requests:
        request = json.loads(line)
        if "platform" in request:  # the first request: set up, answer nothing
            compat().configure(request["platform"])
            sys.meta_path.insert(0, PackagesFinder([Path(root) for root in request["roots"]]))
            continue
        answers.write(json.dumps(read(request, run_script)) + "\n")


if __name__ == "__main__":
    main()
