"""Package discovery: walk the search directories into a :class:`Catalog`.

Discovery is deterministic (sorted walk, one thread) and fault-isolated: a broken package
becomes a problem in the catalog and never hides the others.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.errors import DefinitionError
from jetforge.jc.scan import JcReader, jc_setup, needs_worker
from jetforge.platform_table import load_tables
from jetforge.requirement import (
    Predicate,
    Requirement,
    RequirementSyntaxError,
    parse_jc_predicate,
    parse_predicate,
    parse_requirement,
)
from jetforge.scripts import ScriptHost, decode
from jetforge.spec import PackageSpec, parse_package_dir
from jetforge.walk import PackageRoot, iter_directories

if TYPE_CHECKING:
    from jetforge.platform import Platform


@dataclass(frozen=True, slots=True)
class Variant:
    """A spec with its requirements parsed and its availability on the platform decided."""

    spec: PackageSpec
    depends: tuple[Requirement, ...]
    requires: tuple[Predicate, ...]
    unavailable: str = ""
    layered: bool = False

    @property
    def name(self) -> str:
        """The variant name."""
        return self.spec.name

    @property
    def identity(self) -> str:
        """What one chain holds at most one of: the base name, or for a jc variant layered
        on another variant of its base name (``cuda:12.8-samples`` on ``cuda:12.8``) its
        own name, so that both can be in one chain."""
        return self.spec.name if self.layered else self.spec.base_name

    @property
    def is_available(self) -> bool:
        """Whether the variant can be built on this platform."""
        return not self.unavailable


@dataclass(frozen=True)
class Catalog:
    """Every variant found, in discovery order, and every definition problem."""

    variants: tuple[Variant, ...]
    problems: tuple[DefinitionError, ...] = ()
    warnings: tuple[str, ...] = ()
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


def _has_script(_directory: Path, files: frozenset[str]) -> bool:
    return "config.py" in files


def _read_jetforge(host: ScriptHost, directory: Path, files: frozenset[str]) -> list[PackageSpec]:
    """A jetforge-format directory's variants: parsed here, or, when a config script
    derives them, from a script worker."""
    if not _has_script(directory, files):
        specs = list(parse_package_dir(directory, files))
        if not any(spec.config for spec in specs):
            return specs
    found: list[PackageSpec] = decode(host.ask("jetforge", directory, files)["specs"])
    return found


def _has_dockerfile(spec: PackageSpec) -> PackageSpec:
    if spec.dockerfile and not (spec.path / spec.dockerfile).is_file():
        raise DefinitionError(
            spec.source, f"{spec.name}: dockerfile '{spec.dockerfile}' not found in {spec.path}"
        )
    return spec


def _parse_requirements(spec: PackageSpec) -> tuple[tuple[Requirement, ...], tuple[Predicate, ...]]:
    try:
        depends = tuple(parse_requirement(text) for text in spec.depends)
        if spec.format == "jc":
            off_jetson = load_tables().jc_l4t
            requires = tuple(parse_jc_predicate(text, off_jetson) for text in spec.requires)
        else:
            requires = tuple(parse_predicate(text) for text in spec.requires)
    except RequirementSyntaxError as error:
        raise DefinitionError(spec.source, f"{spec.name}: {error}") from None
    return depends, requires


def discover(
    roots: Iterable[Path | PackageRoot],
    platform: Platform,
    *,
    skip: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Catalog:
    """Load every package under ``roots`` (in order) for ``platform``.

    ``skip`` holds shell patterns of variants to leave out (``--skip-packages``); ``env``
    is the environment jc config scripts see (default: none of it).
    """
    search = [root if isinstance(root, PackageRoot) else PackageRoot(root) for root in roots]
    seen: dict[str, PackageSpec] = {}
    problems: list[DefinitionError] = []
    warnings: list[str] = []
    parsed: list[_Parsed] = []
    env = env or {}
    setup = jc_setup(platform, env, [root.path for root in search])
    with ScriptHost(platform, env, setup) as host:
        # Most trees have config scripts: the worker loads while the tree is walked.
        host.start()
        directories = list(iter_directories(search, warnings))
        host.expect(
            [
                ("jc" if is_jc else "jetforge", directory, files)
                for directory, files, is_jc in directories
                if (needs_worker if is_jc else _has_script)(directory, files)
            ]
        )
        jc_reader = JcReader(host)
        for directory, files, is_jc in directories:
            try:
                if is_jc:
                    specs, notes = jc_reader.read(directory, files)
                    warnings += notes
                else:
                    specs = [_has_dockerfile(s) for s in _read_jetforge(host, directory, files)]
                checked = [(spec, *_parse_requirements(spec)) for spec in specs]
                if is_jc:
                    checked = _last_definitions(checked, platform)
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
    variants = _mark_layered(_mark_unsatisfiable(variants))
    return Catalog(tuple(variants), tuple(problems), tuple(warnings))


_Parsed = tuple[PackageSpec, tuple[Requirement, ...], tuple[Predicate, ...]]


def _last_definitions(checked: list[_Parsed], platform: Platform) -> list[_Parsed]:
    """jc's rule for a name defined twice in one package directory (a config script listing
    a version once per platform): the last definition available here wins, else the last."""
    chosen: dict[str, _Parsed] = {}
    for item in checked:
        spec, _, requires = item
        earlier = chosen.get(spec.name)
        if (
            earlier is None
            or _platform_reason(spec, requires, platform) == ""
            or (_platform_reason(earlier[0], earlier[2], platform) != "")
        ):
            chosen[spec.name] = item
    return list(chosen.values())


def _mark_layered(variants: list[Variant]) -> list[Variant]:
    """Mark jc variants that depend on another variant of their own base name."""
    by_name: dict[str, list[Variant]] = {}
    for variant in variants:
        for name in (variant.name, *variant.spec.alias):
            by_name.setdefault(name, []).append(variant)
    marked = []
    for variant in variants:
        base = variant.spec.base_name
        layered = variant.spec.format == "jc" and any(
            requirement.name == base
            if not requirement.tag
            else any(
                other is not variant and other.spec.base_name == base
                for other in by_name.get(f"{requirement.name}:{requirement.tag}", ())
            )
            for requirement in variant.depends
        )
        marked.append(dataclasses.replace(variant, layered=True) if layered else variant)
    return marked


def _platform_reason(spec: PackageSpec, requires: tuple[Predicate, ...], platform: Platform) -> str:
    if spec.disabled:
        return "disabled"
    failed = [str(predicate) for predicate in requires if not _holds(predicate, platform)]
    if failed:
        return f"requires {', '.join(failed)} (platform: {platform.label})"
    return ""


@functools.lru_cache(maxsize=4096)
def _holds(predicate: Predicate, platform: Platform) -> bool:
    # A tree repeats a few predicates hundreds of times (jc: '>=34.1.0' in 200 packages),
    # and a specifier check costs tens of microseconds.
    return predicate.holds(platform)


def _mark_unsatisfiable(variants: list[Variant]) -> list[Variant]:
    """Mark variants whose ``depends`` no available variant can satisfy, to a fixpoint."""
    reasons: dict[str, str] = {v.name: v.unavailable for v in variants}
    by_name: dict[str, list[Variant]] = {}
    for variant in variants:
        aliases = variant.spec.alias
        names = {variant.name, variant.spec.base_name, *aliases}
        for name in names | {alias.partition(":")[0] for alias in aliases}:
            by_name.setdefault(name, []).append(variant)
    candidates: dict[Requirement, list[str]] = {}
    for variant in variants:
        for requirement in variant.depends:
            if requirement not in candidates:
                candidates[requirement] = [
                    candidate.name
                    for candidate in by_name.get(requirement.name, ())
                    if is_satisfied(requirement, candidate.spec)
                ]
    changed = True
    while changed:
        changed = False
        for variant in variants:
            if reasons[variant.name]:
                continue
            for requirement in variant.depends:
                if not any(not reasons[name] for name in candidates[requirement]):
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
    return dataclasses.replace(variant, unavailable=reason)


def is_satisfied(requirement: Requirement, spec: PackageSpec) -> bool:
    """Whether ``spec`` is a variant that ``requirement`` accepts."""
    if requirement.tag:
        wanted = f"{requirement.name}:{requirement.tag}"
        return spec.name == wanted or wanted in spec.alias
    if requirement.specifier is not None:
        version = spec.version
        return version is not None and requirement.specifier.contains(version, prereleases=True)
    return True
