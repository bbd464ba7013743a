"""The catalog of the package directories read (:func:`assemble`): each name defined
once (a later definition is an error of its own), skipped patterns left out, and each
variant's availability on the platform decided, to a fixpoint over what it depends on.
Imported when a run has read the tree (start-up time)."""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from jetforge.core.catalog import Catalog, Variant, is_satisfied
from jetforge.core.names import base_name
from jetforge.errors import DefinitionError

if TYPE_CHECKING:
    from jetforge.core.platform import Platform
    from jetforge.core.requirement import Predicate, Requirement
    from jetforge.core.spec import PackageSpec
    from jetforge.discovery.records import Entry
    from jetforge.discovery.walk import Walk

    _Parsed = tuple[PackageSpec, tuple[Requirement, ...], tuple[Predicate, ...]]


def assemble(
    entries: Sequence[Entry], platform: Platform, skip: Sequence[str], walk: Walk
) -> Catalog:
    """The catalog of the directories' entries, in order: a name defined twice is an
    error of the later definition; availability is decided for ``platform``."""
    seen: dict[str, PackageSpec] = {}
    problems: list[DefinitionError] = []
    warnings = list(walk.warnings)
    parsed: list[_Parsed] = []
    for entry in entries:
        warnings += entry.warnings
        if entry.problem is not None:
            problems.append(DefinitionError(*entry.problem))
            continue
        checked = list(entry.parsed)
        if entry.is_jc:
            checked = _last_definitions(checked, platform)
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
        for name in names | {base_name(alias) for alias in aliases}:
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
