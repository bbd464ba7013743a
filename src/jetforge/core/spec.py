"""Package specs: the immutable value of one variant, and the parsers that produce it.

A package directory is read from three sources, in this order: the YAML header of its
Dockerfile, its ``package.yaml`` (flat, or a mapping of variant name to keys) and its
``config.py`` (run later by :mod:`jetforge.discovery.configure`). YAML is read through
:mod:`jetforge.core.yaml_text`.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

from jetforge.core.names import base_name, variant_tag
from jetforge.core.yaml_text import key_lines, load_yaml
from jetforge.errors import DefinitionError

PackageFormat = Literal["jetforge", "jc"]
# A search directory's format: one of those, or ``auto`` (decided per package directory).
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.\-]*(?::[A-Za-z0-9_][A-Za-z0-9_.\-]*)?$")


@dataclass(frozen=True)  # no slots: the discovery index fills thousands (discovery/records.py)
class PackageSpec:
    """One variant as its files define it (before platform checks).

    ``path`` is the package directory (the build context); ``source`` is the file the
    definition came from, used in error messages. ``format`` says which rules read it:
    jetforge's own, or jetson-containers' (see :mod:`jetforge.discovery.jc`); ``buildkit_device``
    is jc's request for a device in build steps. ``tier`` says how the variant is verified
    (``e2e``, ``manual`` or ``plan``, see docs/package-format.md).
    """

    name: str
    path: Path
    source: Path
    alias: tuple[str, ...] = ()
    group: str = ""
    depends: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    default: bool = False
    build_args: tuple[tuple[str, str], ...] = ()
    build_flags: str = ""
    dockerfile: str | None = None
    test: tuple[str, ...] = ()
    docs: str = ""
    notes: str = ""
    tier: str = ""
    disabled: bool = False
    prefix: str = ""
    postfix: str = ""
    config: tuple[str, ...] = ()
    format: PackageFormat = "jetforge"
    buildkit_device: str = ""

    @property
    def base_name(self) -> str:
        """The part of the name before ``:``."""
        return base_name(self.name)

    @property
    def tag(self) -> str:
        """The part of the name after ``:`` (empty when there is none)."""
        return variant_tag(self.name)

    @property
    def tier_name(self) -> str:
        """``manual`` for the tier ``manual (plan off x86_64)``; empty when not stated."""
        return self.tier.partition(" ")[0]

    @property
    def version(self) -> Version | None:
        """The tag as a version, when it parses as one."""
        return parse_version(self.tag)

    def replace(self, **changes: Any) -> PackageSpec:
        """Return a copy with ``changes`` applied, checked like the file keys.

        This is the method ``config.py`` scripts use to derive variants; lists and
        mappings are accepted where the file format accepts them.
        """
        fields = {key: value for key, value in changes.items() if key in _DERIVED_FIELDS}
        parsed = parse_keys(
            {k: v for k, v in changes.items() if k not in _DERIVED_FIELDS}, self.source
        )
        return _checked(dataclasses.replace(self, **parsed, **fields))


_DERIVED_FIELDS = frozenset({"path", "source"})


def parse_version(text: str) -> Version | None:
    """``Version(text)``, or None when the text is not a version."""
    if not text:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _as_str(key: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _TypeProblemError(key, "a string")
    raise _TypeProblemError(key, "a string (quote numbers, e.g. '22.04')")


def _as_str_tuple(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(_as_str(key, item) for item in value)
    raise _TypeProblemError(key, "a string or a list of strings")


def _as_bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise _TypeProblemError(key, "true or false")


def _as_arg_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _TypeProblemError("build_args", "a mapping of names to strings, numbers or booleans")


def _as_build_args(key: str, value: object) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):
        return tuple((str(name), _as_arg_text(arg)) for name, arg in value.items())
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return tuple((str(name), _as_arg_text(arg)) for name, arg in value)
    raise _TypeProblemError(key, "a mapping of names to strings, numbers or booleans")


TIERS = ("e2e", "manual", "plan")
_TIER = re.compile(r"(e2e|manual|plan)(?: \([^()]+\))?")


def _as_tier(key: str, value: object) -> str:
    if isinstance(value, str) and _TIER.fullmatch(value.strip()):
        return value.strip()
    raise _TypeProblemError(
        key, "e2e, manual or plan, optionally with a note: 'plan (manual on x86_64)'"
    )


class _TypeProblemError(Exception):
    def __init__(self, key: str, expected: str) -> None:
        super().__init__(key)
        self.key = key
        self.expected = expected


_KEY_PARSERS: dict[str, Callable[[str, object], object]] = {
    "name": _as_str,
    "alias": _as_str_tuple,
    "group": _as_str,
    "depends": _as_str_tuple,
    "requires": _as_str_tuple,
    "default": _as_bool,
    "build_args": _as_build_args,
    "build_flags": _as_str,
    "dockerfile": _as_str,
    "test": _as_str_tuple,
    "docs": _as_str,
    "notes": _as_str,
    "tier": _as_tier,
    "disabled": _as_bool,
    "prefix": _as_str,
    "postfix": _as_str,
    "config": _as_str_tuple,
}

PACKAGE_KEYS = tuple(_KEY_PARSERS)


def parse_keys(
    raw: Mapping[Any, object], source: Path, lines: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Check and convert raw package keys; unknown keys and wrong types name file and line."""
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        line = (lines or {}).get(str(key))
        parser = _KEY_PARSERS.get(str(key))
        if parser is None:
            import difflib  # here, not at the top: only a typo needs it

            close = difflib.get_close_matches(str(key), PACKAGE_KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "valid: " + ", ".join(PACKAGE_KEYS)
            raise DefinitionError(source, f"unknown key '{key}' ({hint})", line)
        if value is None:
            continue
        try:
            parsed[str(key)] = parser(str(key), value)
        except _TypeProblemError as problem:
            raise DefinitionError(
                source, f"key '{problem.key}' must be {problem.expected}", line
            ) from None
    return parsed


def _checked(spec: PackageSpec) -> PackageSpec:
    if not NAME_PATTERN.match(spec.name):
        raise DefinitionError(
            spec.source,
            f"invalid name '{spec.name}' (lowercase letters, digits, '_', '.', '-', "
            "optionally ':' and a tag)",
        )
    check_contents(spec)
    return spec


def is_inside(name: str) -> bool:
    """Whether a relative file name stays inside the directory it is relative to."""
    normal = posixpath.normpath(name)
    return not normal.startswith("/") and normal != ".." and not normal.startswith("../")


def check_contents(spec: PackageSpec, trees: Sequence[Path] = ()) -> None:
    """Files a spec names stay inside its package directory, and the words of its
    ``build_flags`` and ``test`` entries parse (balanced quotes).

    A jc variant's Dockerfile may also lie elsewhere in one of ``trees`` (jc's config
    scripts point variants at another package's Dockerfile, by absolute path)."""
    files = [("dockerfile", spec.dockerfile)] if spec.dockerfile else []
    files += [("config", name) for name in spec.config]
    for entry in spec.test:
        words = _words(spec, "test", entry)
        if words and words[0].endswith((".py", ".sh")):
            files.append(("test", words[0]))
    for key, name in files:
        if is_inside(name):
            continue
        if key == "dockerfile" and any(_within(spec.path / name, tree) for tree in trees):
            continue
        raise DefinitionError(
            spec.source,
            f"{spec.name}: {key} '{name}' is outside the package directory "
            "(name a file inside it, relative to it)",
        )
    _words(spec, "build_flags", spec.build_flags)


def _within(path: Path, tree: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(tree)


def _words(spec: PackageSpec, key: str, text: str) -> list[str]:
    if not any(char in text for char in "'\"\\"):
        return text.split()  # nothing to unquote (the common case, and much cheaper)
    try:
        return shlex.split(text)
    except ValueError as error:
        raise DefinitionError(spec.source, f"{spec.name}: {key} '{text}': {error}") from None


def read_header(dockerfile: Path, text: str) -> tuple[str, int] | None:
    """The YAML header of a Dockerfile and the file line it starts on, or None.

    The header is the text between the first two lines starting with ``#---``, each line
    with its first ``#`` removed; only comment lines may come before it.
    """
    lines = text.splitlines()
    start = None
    for number, line in enumerate(lines):
        if line.startswith("#---"):
            start = number
            break
        if line.strip() and not line.lstrip().startswith("#"):
            return None
    if start is None:
        return None
    for end in range(start + 1, len(lines)):
        if lines[end].startswith("#---"):
            body = [line.replace("#", "", 1) for line in lines[start + 1 : end]]
            return "\n".join(body), start + 2
    raise DefinitionError(dockerfile, "header has no closing '#---' line", start + 1)


def read_text(path: Path) -> str:
    """A definition file's text (UTF-8, a leading BOM dropped); a file that cannot be read
    or is not UTF-8 is an error naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        byte = error.object[error.start : error.start + 1].hex()
        line = error.object[: error.start].count(b"\n") + 1
        raise DefinitionError(path, f"is not UTF-8 text (byte 0x{byte})", line) from None
    except OSError as error:
        raise DefinitionError(path, f"cannot be read: {error.strerror or error}") from None


def _mapping(path: Path, data: object, first_line: int) -> dict[Any, object]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DefinitionError(path, "expected a mapping of package keys", first_line)
    return data


def _spec(directory: Path, source: Path, keys: Mapping[str, object]) -> PackageSpec:
    values = dict(keys)
    values.setdefault("name", directory.name)
    return _checked(PackageSpec(path=directory, source=source, **values))  # type: ignore[arg-type]


def parse_package_dir(
    directory: Path, files: frozenset[str], texts: Mapping[Path, str] | None = None
) -> Iterator[PackageSpec]:
    """Yield the variants that the header and ``package.yaml`` of ``directory`` define.

    ``files`` holds the names of the directory's files; ``texts`` may hold its Dockerfile's
    text, read already. ``config.py`` is not run here.
    """
    header: dict[str, object] = {}
    header_source = directory / "Dockerfile"
    if "Dockerfile" in files:
        known = texts.get(header_source) if texts is not None else None
        text = read_text(header_source) if known is None else known
        found = read_header(header_source, text)
        if found is not None:
            body, first = found
            raw = _mapping(header_source, load_yaml(header_source, body, first), first)
            header = _parse_with_lines(raw, header_source, body, first)
        header.setdefault("dockerfile", "Dockerfile")
    if "config.py" in files:
        header.setdefault("config", ("config.py",))
    if "package.yaml" not in files:
        yield _spec(directory, header_source, header)
        return
    source = directory / "package.yaml"
    text = read_text(source)
    raw = _mapping(source, load_yaml(source, text), 1)
    if _is_flat(raw):
        yield _spec(directory, source, {**header, **_parse_with_lines(raw, source, text, 1)})
        return
    for variant, keys in raw.items():
        name = str(variant)
        try:
            own = _parse_with_lines(_mapping(source, keys, 1), source, text, 1)
            if own.setdefault("name", name) != name:
                raise DefinitionError(source, f"variant '{name}' sets a different name")
        except DefinitionError as error:  # the variant's line, looked up for the message
            if error.line not in (None, 1) or error.path != source:
                raise
            line = key_lines(text).get(name) or error.line
            raise DefinitionError(source, error.problem, line) from None
        inherited = {key: value for key, value in header.items() if key != "name"}
        yield _spec(directory, source, {**inherited, **own})


def _is_flat(raw: Mapping[Any, object]) -> bool:
    if all(str(key) in _KEY_PARSERS for key in raw):
        return True
    # A file that mixes package keys with other keys, or whose values are not all
    # mappings, is a flat file with a misspelt key: report that key, not a variant.
    return not all(isinstance(value, dict | type(None)) for value in raw.values())


def _parse_with_lines(
    raw: Mapping[Any, object], source: Path, text: str, first_line: int
) -> dict[str, object]:
    try:
        return parse_keys(raw, source)
    except DefinitionError:
        parse_keys(raw, source, key_lines(text, first_line))
        raise
