"""Run a package's ``config.py``: ``configure(package, platform)`` derives its variants.

The file is compiled and executed as an isolated module: no globals are injected, the
working directory and ``sys.path`` are left alone, no bytecode is written into the package
directory, and any exception becomes a :class:`DefinitionError` for that package only.
"""

from __future__ import annotations

import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.spec import PackageSpec, parse_package_dir
from jetforge.errors import DefinitionError

if TYPE_CHECKING:
    from jetforge.core.platform import Platform


def _error_line(error: BaseException, path: Path) -> int | None:
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if Path(frame.filename) == path:
            line = frame.lineno
    if line is None and isinstance(error, SyntaxError):
        line = error.lineno
    return line


def _load(path: Path) -> types.ModuleType:
    module = types.ModuleType(f"jetforge_config_{abs(hash(path))}")
    module.__file__ = str(path)
    source = path.read_text(encoding="utf-8")
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - package code
    return module


def run_config(script: Path, spec: PackageSpec, platform: Platform) -> Iterator[PackageSpec]:
    """Yield the variants ``configure`` in ``script`` returns for ``spec``."""
    try:
        module = _load(script)
        configure = getattr(module, "configure", None)
        if not callable(configure):
            raise DefinitionError(script, "defines no function configure(package, platform)")
        result = configure(spec, platform)
    except DefinitionError:
        raise
    except Exception as error:  # any failure of package code stays with that package
        problem = f"config script raised {type(error).__name__}: {error}"
        raise DefinitionError(script, problem, _error_line(error, script)) from None
    line = configure.__code__.co_firstlineno if hasattr(configure, "__code__") else None
    if result is None:
        return
    items = result if isinstance(result, list | tuple) else [result]
    for item in items:
        if not isinstance(item, PackageSpec):
            raise DefinitionError(
                script,
                f"configure() returned {type(item).__name__}; expected the package, "
                "a list of packages, or None",
                line,
            )
        yield item


def error_line(error: BaseException, directory: Path) -> tuple[str, int | None]:
    """Where in the package directory a script failed: the deepest frame there."""
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


def script_failure(error: BaseException, directory: Path) -> dict[str, object]:
    """The answer for a script that raised or exited."""
    where, line = error_line(error, directory)
    problem = f"config script raised {type(error).__name__}: {error}"
    if isinstance(error, SystemExit):
        problem = f"config script called exit({error.code})"
    return {"error": [where, line, problem]}


def read_configured(
    directory: Path, files: frozenset[str], platform: Platform
) -> Iterator[PackageSpec]:
    """The variants of a jetforge-format directory: its header and ``package.yaml``, each
    passed through its config scripts in order."""
    for spec in parse_package_dir(directory, files):
        if not spec.config:
            yield spec
            continue
        derived = [spec]
        for script in spec.config:
            derived = [
                result
                for current in derived
                for result in run_config(directory / script, current, platform)
            ]
        yield from derived
