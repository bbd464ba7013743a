"""Reading jc package directories from the jetforge process.

:class:`JcReader` turns one directory into :class:`~jetforge.core.spec.PackageSpec` values of
format ``jc``. Directories without a config script are read here; the others go to a
script worker (:mod:`jetforge.discovery.scripts`), set up with
:func:`jetforge.discovery.jc.checkout.jc_setup`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.names import base_name
from jetforge.core.spec import PackageSpec, check_contents
from jetforge.discovery.jc.reader import (
    JC_KEYS,
    JC_ONLY_KEYS,
    OFFLINE_NOTE,
    header_text,
    is_config_script,
    read_records,
)
from jetforge.errors import DefinitionError
from jetforge.host.files import file_kind

if TYPE_CHECKING:
    from jetforge.discovery.scripts import ScriptHost

JC_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(?::[A-Za-z0-9_][A-Za-z0-9_.:+\-]*)?$")
_DEFINES_CONFIGURE = re.compile(r"^def configure\(", re.MULTILINE)
_JC_HEADER_KEY = re.compile(rf"^\s*({'|'.join(JC_ONLY_KEYS)})\s*:", re.MULTILINE)


def is_jc_directory(
    directory: Path, files: frozenset[str], texts: dict[Path, str] | None = None
) -> bool:
    """Whether a package directory is in jc format: a ``config.py`` with no
    ``configure()``, or a Dockerfile header with a key only jc has. The Dockerfiles it
    reads are added to ``texts`` (for the parse that follows, not to read them twice)."""
    try:
        if "config.py" in files:
            script = (directory / "config.py").read_text(encoding="utf-8-sig")
            if not _DEFINES_CONFIGURE.search(script):
                return is_config_script(directory / "config.py")
        for name in files:
            if name.lower() == "dockerfile":
                path = directory / name
                whole = path.read_text(encoding="utf-8-sig")
                if texts is not None:
                    texts[path] = whole
                text = header_text(whole)
                if text is not None and _JC_HEADER_KEY.search(text):
                    return True
    except (OSError, UnicodeDecodeError):
        return False
    return False


def needs_worker(directory: Path, files: frozenset[str]) -> bool:
    """Whether reading a jc directory runs a config script (in the worker)."""
    return "config.py" in files and is_config_script(directory / "config.py")


class JcReader:
    """Reads jc package directories; their config scripts run on ``host``'s workers."""

    def __init__(self, host: ScriptHost, trees: Sequence[Path] = ()) -> None:
        self.host = host
        self.trees = tuple(trees)
        self._files: dict[Path, bool] = {}

    def _is_file(self, path: Path) -> bool:
        if path not in self._files:
            self._files[path] = path.is_file()
        return self._files[path]

    def read(self, directory: Path, files: frozenset[str]) -> tuple[list[PackageSpec], list[str]]:
        """The variants of one jc directory and the warnings reading it left."""
        directory = directory.absolute()  # scripts run elsewhere and read package['path']
        if needs_worker(directory, files):
            answer = self.host.ask("jc", directory, files)
            records, warnings = answer["records"], list(answer["warnings"])
        else:
            records, warnings = read_records(directory, files, None), []
        specs = []
        unknown: dict[str, list[str]] = {}
        source = directory / ("config.py" if "config.py" in files else "Dockerfile")
        for record in records:
            spec, keys = to_spec(record, directory, source, self._is_file, self.trees)
            specs.append(spec)
            for key in keys:
                unknown.setdefault(key, []).append(spec.name)
        for key, names in unknown.items():
            close = difflib.get_close_matches(key, JC_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            warnings.append(f"{', '.join(names)}: unknown key '{key}' ignored{hint}")
        return specs, _condensed(directory, warnings)


def _condensed(directory: Path, warnings: list[str]) -> list[str]:
    """One line for a directory's warnings: the last (a script's conclusion), and a count."""
    unique = list(dict.fromkeys(line.strip() for line in warnings if line.strip()))
    if not unique:
        return []
    source = directory / ("config.py" if (directory / "config.py").is_file() else "Dockerfile")
    offline = OFFLINE_NOTE in unique and unique[-1] != OFFLINE_NOTE
    more = len(unique) - 1 - offline
    text = unique[-1] + (f" (it {OFFLINE_NOTE})" if offline else "")
    return [f"{source}: {text}" + (f" (and {more} earlier message(s))" if more else "")]


def to_spec(
    record: Mapping[str, object],
    directory: Path,
    source: Path,
    is_file: Callable[[Path], bool] = Path.is_file,
    trees: Sequence[Path] = (),
) -> tuple[PackageSpec, list[str]]:
    """A normalised jc record of ``directory`` (defined in ``source``) as a spec of format
    ``jc``, and its unknown keys.

    jc's default for a bare base name is the variant that carries that name as an alias,
    so such a variant is marked ``default``. The ``dockerfile`` must exist (``is_file``
    tells, e.g. from a cache: a directory's variants mostly share one Dockerfile).
    """
    name = str(record["name"])
    path = Path(str(record["path"])) if record["path"] else directory
    if not JC_NAME_PATTERN.match(name):
        raise DefinitionError(source, f"invalid variant name '{name}'")
    alias = tuple(_strings(record["alias"]))
    dockerfile = record["dockerfile"]
    if isinstance(dockerfile, str) and not is_file(path / dockerfile):
        raise DefinitionError(source, f"{name}: {dockerfile_problem(path, dockerfile)}")
    base = base_name(name)
    build_args = record["build_args"]
    assert isinstance(build_args, list)
    spec = PackageSpec(
        name=name,
        path=path,
        source=source,
        alias=alias,
        group=str(record["group"]),
        depends=tuple(_strings(record["depends"])),
        requires=tuple(_strings(record["requires"])),
        default=base in alias,
        build_args=tuple((str(key), str(value)) for key, value in build_args),
        build_flags=str(record["build_flags"]),
        dockerfile=dockerfile if isinstance(dockerfile, str) else None,
        test=tuple(_strings(record["test"])),
        docs=str(record["docs"]),
        notes=str(record["notes"]),
        disabled=bool(record["disabled"]),
        prefix=str(record["prefix"]),
        postfix=str(record["postfix"]),
        config=tuple(_strings(record["config"])),
        format="jc",
        buildkit_device=str(record["buildkit_device"]),
    )
    check_contents(spec, trees)
    return spec, [key for key in _strings(record["unknown"]) if key not in JC_KEYS]


def dockerfile_problem(directory: Path, name: str) -> str:
    """Why the Dockerfile ``name`` of a variant in ``directory`` cannot be read: missing,
    or there but not a regular file (a FIFO, a device, a directory)."""
    try:
        mode = (directory / name).stat().st_mode
    except OSError:
        return f"dockerfile '{name}' not found in {directory}"
    return f"dockerfile '{name}' in {directory} is {file_kind(mode)}, not a regular file"


def _strings(value: object) -> list[str]:
    assert isinstance(value, list)
    return [str(item) for item in value]
