"""Package discovery: walk the search directories into a :class:`Catalog`.

Discovery is deterministic (sorted walk, one thread) and fault-isolated: a broken package
becomes a problem in the catalog and never hides the others.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.configure import run_config
from jetforge.errors import DefinitionError
from jetforge.requirement import (
    Predicate,
    Requirement,
    RequirementSyntaxError,
    parse_predicate,
    parse_requirement,
)
from jetforge.spec import PackageSpec, parse_package_dir

if TYPE_CHECKING:
    from jetforge.platform import Platform

PACKAGE_FILES = frozenset({"Dockerfile", "package.yaml", "config.py"})


@dataclass(frozen=True, slots=True)
class Variant:
    """A spec with its requirements parsed and its availability on the platform decided."""

    spec: PackageSpec
    depends: tuple[Requirement, ...]
    requires: tuple[Predicate, ...]
    unavailable: str = ""

    @property
    def name(self) -> str:
        """The variant name."""
        return self.spec.name

    @property
    def is_available(self) -> bool:
        """Whether the variant can be built on this platform."""
        return not self.unavailable


@dataclass(frozen=True)
class Catalog:
    """Every variant found, in discovery order, and every definition problem."""

    variants: tuple[Variant, ...]
    problems: tuple[DefinitionError, ...] = ()
    _by_lookup: dict[str, tuple[Variant, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        lookup: dict[str, list[Variant]] = {}
        for variant in self.variants:
            names = {variant.name, variant.spec.base_name, *variant.spec.alias}
            names |= {alias.partition(":")[0] for alias in variant.spec.alias}
            for name in sorted(names):
                lookup.setdefault(name, []).append(variant)
        self._by_lookup.update({name: tuple(found) for name, found in lookup.items()})

    def lookup(self, name: str) -> tuple[Variant, ...]:
        """Variants answering to ``name``: a variant name, a base name or an alias."""
        return self._by_lookup.get(name, ())

    def get(self, name: str) -> Variant | None:
        """The variant called exactly ``name``."""
        return next((v for v in self.lookup(name) if v.name == name), None)

    def names(self) -> tuple[str, ...]:
        """Every name the catalog answers to, sorted."""
        return tuple(sorted(self._by_lookup))

    def match(self, patterns: Sequence[str], *, include_unavailable: bool = False) -> list[Variant]:
        """Variants whose name or an alias matches any shell-style pattern, in name order."""
        found = [
            variant
            for variant in self.variants
            if (include_unavailable or variant.is_available)
            and any(is_match(variant, pattern) for pattern in patterns)
        ]
        return sorted(found, key=lambda variant: variant.name)


def is_match(variant: Variant, pattern: str) -> bool:
    """Whether ``pattern`` (shell wildcards) matches the variant's name, base name or aliases."""
    names = (variant.name, variant.spec.base_name, *variant.spec.alias)
    return any(fnmatch.fnmatchcase(name, pattern) for name in names)


def iter_package_dirs(root: Path) -> Iterator[tuple[Path, frozenset[str]]]:
    """Yield every package directory under ``root`` with its file names, sorted, depth first.

    Names beginning with ``.`` or ``__`` are skipped.
    """
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    files = frozenset(
        entry.name for entry in entries if entry.name in PACKAGE_FILES and entry.is_file()
    )
    if files:
        yield root, files
    for entry in entries:
        if entry.name.startswith((".", "__")) or not entry.is_dir():
            continue
        yield from iter_package_dirs(Path(entry.path))


def _read_variants(
    directory: Path, files: frozenset[str], platform: Platform
) -> Iterator[PackageSpec]:
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


def _parse_requirements(spec: PackageSpec) -> tuple[tuple[Requirement, ...], tuple[Predicate, ...]]:
    try:
        depends = tuple(parse_requirement(text) for text in spec.depends)
        requires = tuple(parse_predicate(text) for text in spec.requires)
    except RequirementSyntaxError as error:
        raise DefinitionError(spec.source, f"{spec.name}: {error}") from None
    return depends, requires


def discover(roots: Iterable[Path], platform: Platform, *, skip: Sequence[str] = ()) -> Catalog:
    """Load every package under ``roots`` (in order) for ``platform``.

    ``skip`` holds shell patterns of variants to leave out (``--skip-packages``).
    """
    seen: dict[str, PackageSpec] = {}
    problems: list[DefinitionError] = []
    parsed: list[tuple[PackageSpec, tuple[Requirement, ...], tuple[Predicate, ...]]] = []
    for root in roots:
        for directory, files in iter_package_dirs(root):
            try:
                specs = list(_read_variants(directory, files, platform))
                checked = [(spec, *_parse_requirements(spec)) for spec in specs]
            except DefinitionError as error:
                problems.append(error)
                continue
            except (OSError, UnicodeDecodeError) as error:
                problems.append(DefinitionError(directory, f"cannot read package: {error}"))
                continue
            for spec, depends, requires in checked:
                if spec.name in seen:
                    problems.append(
                        DefinitionError(
                            spec.source,
                            f"variant '{spec.name}' is also defined in {seen[spec.name].source}",
                        )
                    )
                    continue
                seen[spec.name] = spec
                parsed.append((spec, depends, requires))
    variants = [
        Variant(spec, depends, requires, _platform_reason(spec, requires, platform))
        for spec, depends, requires in parsed
        if not any(fnmatch.fnmatchcase(spec.name, pattern) for pattern in skip)
    ]
    return Catalog(tuple(_mark_unsatisfiable(variants)), tuple(problems))


def _platform_reason(spec: PackageSpec, requires: tuple[Predicate, ...], platform: Platform) -> str:
    if spec.disabled:
        return "disabled"
    failed = [str(predicate) for predicate in requires if not predicate.holds(platform)]
    if failed:
        return f"requires {', '.join(failed)} (platform: {platform.label})"
    return ""


def _mark_unsatisfiable(variants: list[Variant]) -> list[Variant]:
    """Mark variants whose ``depends`` no available variant can satisfy, to a fixpoint."""
    reasons: dict[str, str] = {v.name: v.unavailable for v in variants}
    by_name: dict[str, list[Variant]] = {}
    for variant in variants:
        aliases = variant.spec.alias
        names = {variant.name, variant.spec.base_name, *aliases}
        for name in names | {alias.partition(":")[0] for alias in aliases}:
            by_name.setdefault(name, []).append(variant)
    changed = True
    while changed:
        changed = False
        for variant in variants:
            if reasons[variant.name]:
                continue
            for requirement in variant.depends:
                if not any(
                    not reasons[candidate.name] and is_satisfied(requirement, candidate.spec)
                    for candidate in by_name.get(requirement.name, ())
                ):
                    reasons[variant.name] = (
                        f"depends on '{requirement}', {_why_missing(requirement, by_name)}"
                    )
                    changed = True
                    break
    return [_with_reason(variant, reasons[variant.name]) for variant in variants]


def _why_missing(requirement: Requirement, by_name: Mapping[str, list[Variant]]) -> str:
    if requirement.name not in by_name:
        return "which no package provides"
    return "which is not available on this platform"


def _with_reason(variant: Variant, reason: str) -> Variant:
    if reason == variant.unavailable:
        return variant
    return Variant(variant.spec, variant.depends, variant.requires, reason)


def is_satisfied(requirement: Requirement, spec: PackageSpec) -> bool:
    """Whether ``spec`` is a variant that ``requirement`` accepts."""
    if requirement.tag:
        wanted = f"{requirement.name}:{requirement.tag}"
        return spec.name == wanted or wanted in spec.alias
    if requirement.specifier is not None:
        version = spec.version
        return version is not None and requirement.specifier.contains(version, prereleases=True)
    return True
