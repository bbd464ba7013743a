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

from jetforge.errors import DefinitionError
from jetforge.spec import PackageSpec

if TYPE_CHECKING:
    from jetforge.platform import Platform


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
