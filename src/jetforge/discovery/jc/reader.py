"""jc package dicts: from a directory's files to normalised variant records.

These functions follow the documented behaviour of jetson-containers' package loader, with
its bugs left out where they would lose data silently (see docs/package-format.md, "Using
jetson-containers packages"). They work on plain dicts, because that is what jc's config
scripts read and write; :func:`normalise` turns each variant into a record of strings and
lists that crosses the process boundary as JSON. Raw dicts exist only here and in the worker.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jetforge.core.spec import read_text
from jetforge.core.yaml_text import key_lines, load_yaml
from jetforge.discovery.jc.checkout import CONFIG_SUFFIXES
from jetforge.errors import AliasBombError, DefinitionError

JC_KEYS = (
    "alias",
    "build_args",
    "build_flags",
    "buildkit_device",
    "config",
    "depends",
    "disabled",
    "dockerfile",
    "docs",
    "group",
    "name",
    "notes",
    "path",
    "prefix",
    "postfix",
    "requires",
    "test",
)
JC_ONLY_KEYS = ("buildkit_device", "path")
DEFAULT_REQUIRES = ">=32.6"
DEFAULT_BUILDKIT_DEVICE = "nvidia.com/gpu=all"
_LIST_KEYS = ("alias", "config", "depends", "test")

RunScript = Callable[[Path, object], object]
OFFLINE_NOTE = "tried the network, which config scripts do not get"


def is_package_dict(value: object) -> bool:
    """Whether ``value`` is a dict of jc package keys only (jc's test for a package)."""
    return isinstance(value, dict) and all(key in JC_KEYS for key in value)


def header_text(text: str) -> str | None:
    """The YAML of a jc Dockerfile header: the lines after ``#---`` up to the next ``#---``
    or the first line that is not a comment, each without its first character."""
    body: list[str] = []
    inside = False
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if inside:
            if line.startswith("#---"):
                break
            body.append(line[1:])
        elif line.startswith("#---"):
            inside = True
    return "\n".join(body) if body else None


def read_header(dockerfile: Path) -> dict[str, Any] | None:
    """The header of a jc Dockerfile; malformed YAML or unknown keys are errors that name
    the file (jc drops such a header with a warning, losing its depends)."""
    text = header_text(read_text(dockerfile))
    if text is None:
        return None
    data = load_yaml(dockerfile, text, 2)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise DefinitionError(dockerfile, "header is not a mapping of package keys", 2)
    _check_keys(data, dockerfile)
    return data


def _check_keys(data: Mapping[Any, object], source: Path) -> None:
    for key in data:
        if key not in JC_KEYS:
            close = difflib.get_close_matches(str(key), JC_KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "valid: " + ", ".join(JC_KEYS)
            line = key_lines(header_text(read_text(source)) or "", 2)
            raise DefinitionError(source, f"unknown key '{key}' ({hint})", line.get(str(key)))


def read_config_file(path: Path) -> dict[str, Any] | None:
    """A JSON/YAML file that is a jc package config, or None when it is not one.

    Like jc, a file is a config when it is a non-empty mapping of package keys, or of names
    to such mappings; anything else (compose files, app settings, files that are not
    valid) is not a package file. A YAML alias bomb is an error all the same.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = json.loads(text) if path.suffix == ".json" else load_yaml(path, text)
    except AliasBombError:
        raise
    except (OSError, ValueError, DefinitionError):
        return None
    if not isinstance(data, dict) or not data:
        return None
    if is_package_dict(data) or all(is_package_dict(value) for value in data.values()):
        return data
    return None


def _listify(package: dict[str, Any]) -> dict[str, Any]:
    for key in _LIST_KEYS:
        if isinstance(package.get(key), str):
            package[key] = [package[key]]
    return package


def apply_config(
    package: dict[str, Any], config: object, directory: Path, seen: set[str] | None = None
) -> None:
    """Merge a header or config file into ``package`` the way jc does.

    A flat mapping updates the package; a mapping with one name renames it; a mapping with
    several names adds sub-packages that inherit the package's keys. A ``dockerfile`` key
    pulls in that Dockerfile's header too (once: a header naming itself is not a loop).
    """
    if not isinstance(config, dict):
        return
    seen = set() if seen is None else seen
    if is_package_dict(config):
        package.update(_listify(dict(config)))
        _apply_header(package, config, directory, seen)
    elif len(config) == 1:
        ((name, keys),) = config.items()
        package["name"] = name
        package.update(_listify(dict(keys)))
        _apply_header(package, keys, directory, seen)
    else:
        for name, keys in config.items():
            sub = dict(keys)
            for key in JC_KEYS:
                if key in package:
                    sub.setdefault(key, package[key])
            _apply_header(sub, keys, directory, seen)
            package[name] = _listify(sub)


def _apply_header(
    package: dict[str, Any], config: Mapping[str, Any], directory: Path, seen: set[str]
) -> None:
    name = config.get("dockerfile")
    if isinstance(name, str) and name not in seen:
        seen.add(name)
        path = directory / name
        if path.is_file():
            apply_config(package, read_header(path), directory, seen)


def initial_package(directory: Path, files: frozenset[str]) -> dict[str, Any] | None:
    """The package dict jc starts from, or None when the directory is not a jc package.

    Files are taken in name order (jc takes them in directory order, which differs
    between machines): ``Dockerfile`` (any case), ``test.py``/``test.sh`` as tests,
    ``config.py`` and JSON/YAML package configs as config files.
    """
    package: dict[str, Any] = {
        "path": str(directory),
        "requires": DEFAULT_REQUIRES,
        "postfix": "",
        "config": [],
        "test": [],
    }
    for name in sorted(files):
        if name.lower() == "dockerfile":
            package["dockerfile"] = name
        elif name in ("test.py", "test.sh"):
            package["test"].append(name)
        elif name == "config.py":
            if is_config_script(directory / name):
                package["config"].append(name)
        elif name.endswith(CONFIG_SUFFIXES) and read_config_file(directory / name) is not None:
            package["config"].append(name)
    if "dockerfile" not in package and not package["config"]:
        return None
    package["name"] = directory.name
    return package


_USES_PACKAGE = re.compile(r"\bpackage\b")


def is_config_script(path: Path) -> bool:
    """A ``config.py`` that works on the injected ``package`` (an application's own
    settings module named config.py, which never mentions it, is not a package script)."""
    try:
        return _USES_PACKAGE.search(path.read_text(encoding="utf-8-sig")) is not None
    except (OSError, UnicodeDecodeError):
        return True


def read_package(
    directory: Path, files: frozenset[str], run_script: RunScript | None
) -> list[dict[str, Any]]:
    """Every variant dict of a jc package directory, before normalising.

    ``run_script(path, package)`` runs one ``config.py`` and returns the new ``package``
    value; it is None where the directory has no script (then nothing is executed).
    """
    package = initial_package(directory, files)
    if package is None:
        return []
    if "dockerfile" in package:
        seen = {package["dockerfile"]}
        apply_config(package, read_header(directory / package["dockerfile"]), directory, seen)
    value: object = package
    for name in list(package.get("config", [])):
        path = directory / str(name)
        if path.suffix == ".py":
            if run_script is None:
                raise DefinitionError(path, "config script found where none was expected")
            value = run_script(path, value)
            if value is None:
                return []
        elif isinstance(value, dict):
            apply_config(value, read_config_file(path), directory)
    return variant_dicts(value, directory / "config.py")


def variant_dicts(value: object, source: Path) -> list[dict[str, Any]]:
    """Flatten what a package or config script left into variant dicts, as jc does:
    a dict (with its sub-package values), or a list/tuple of those, nested at will.
    None entries are dropped; values under package keys are never sub-packages."""
    if value is None:
        return []
    if isinstance(value, tuple | list):
        found: list[dict[str, Any]] = []
        for item in value:
            if is_package_dict(item):
                assert isinstance(item, dict)
                found.append(item)
            else:
                found.extend(variant_dicts(item, source))
        return found
    if isinstance(value, dict):
        subs = []
        for key, sub in value.items():
            if key not in JC_KEYS and is_package_dict(sub):
                sub["name"] = key
                subs.append(sub)
        return subs or [value]
    raise DefinitionError(
        source,
        f"'package' holds a {type(value).__name__}; expected a dict, a list of dicts, or None",
    )


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _texts(value: object, key: str, source: Path) -> list[str]:
    items = [] if value is None else list(value) if isinstance(value, list | tuple) else [value]
    for item in items:
        if isinstance(item, dict | list | tuple | set):
            raise DefinitionError(
                source, f"key '{key}' must be a string or a list of strings, not {item!r}"
            )
    return [str(item) for item in items if item is not None]


def buildkit_device(value: object) -> str:
    """jc's reading of ``buildkit_device``: true means all GPUs, false-like words none."""
    if isinstance(value, bool):
        return DEFAULT_BUILDKIT_DEVICE if value else ""
    text = _text(value).strip()
    if text.lower() in ("", "0", "false", "no", "none", "off"):
        return ""
    return DEFAULT_BUILDKIT_DEVICE if text.lower() in ("1", "true", "yes", "on") else text


def normalise(package: Mapping[Any, Any], source: Path) -> dict[str, object]:
    """One variant dict as a record of strings and lists (JSON-ready).

    Build argument values become ``str(value)``, as jc renders them on the command line
    (``True``, ``None``, ``['a', 'b']``); unknown keys are dropped and listed in
    ``unknown`` so the caller can warn about them.
    """
    name = package.get("name")
    if not isinstance(name, str) or not name:
        raise DefinitionError(
            source, f"a variant has no name (keys: {', '.join(map(str, package))})"
        )
    args = package.get("build_args")
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise DefinitionError(source, f"{name}: build_args must be a mapping of names to values")
    dockerfile = package.get("dockerfile")
    return {
        "name": name,
        "path": _text(package.get("path")),
        "alias": _texts(package.get("alias"), "alias", source),
        "group": _text(package.get("group")),
        "depends": _texts(package.get("depends"), "depends", source),
        "requires": _texts(package.get("requires"), "requires", source),
        "build_args": [[str(key), str(arg)] for key, arg in args.items()],
        "build_flags": _text(package.get("build_flags")),
        "buildkit_device": buildkit_device(package.get("buildkit_device")),
        "dockerfile": None if dockerfile is None else str(dockerfile),
        "test": _texts(package.get("test"), "test", source),
        "docs": _text(package.get("docs")),
        "notes": _text(package.get("notes")),
        "disabled": bool(package.get("disabled", False)),
        "prefix": _text(package.get("prefix")),
        "postfix": _text(package.get("postfix")),
        "config": _texts(package.get("config"), "config", source),
        "unknown": sorted(str(key) for key in package if key not in JC_KEYS),
    }


def read_records(
    directory: Path, files: frozenset[str], run_script: RunScript | None
) -> list[dict[str, object]]:
    """:func:`read_package`, normalised."""
    source = directory / "config.py" if "config.py" in files else directory / "Dockerfile"
    return [normalise(package, source) for package in read_package(directory, files, run_script)]
