"""Resolve requested packages into one chain with resolvelib.

Identifiers are base names, candidates are available variants, requirements are
dependency entries bound to where they come from. Candidates are offered in selection
order (docs/package-format.md): ``<BASE>_VERSION`` from the environment, then ``default: true``,
then the highest version; explicit requests and dependency pins narrow the candidates
before that order applies, so a pin wins wherever it appears in the request.
The build order is a depth-first walk: requests in the order given, each variant's
dependencies in declared order, dependencies before dependants.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import resolvelib
from resolvelib.structs import RequirementInformation

from jetforge.core.catalog import Catalog, Variant, is_satisfied
from jetforge.core.names import in_version_order, name_order
from jetforge.core.preference import env_pins, order_by_preference, version_env, version_env_name
from jetforge.core.requirement import (
    Requirement,
    RequirementSyntaxError,
    is_version_match,
    parse_requirement,
)
from jetforge.errors import ResolutionError, UnknownPackageError

COMMAND_LINE = "the command line"


@dataclass(frozen=True, slots=True)
class Need:
    """A requirement bound to the base name it asks for and to who asked for it."""

    identifier: str
    requirement: Requirement
    origin: str

    def describe(self) -> str:
        """``'pytorch>=2.6' (from torchvision:0.21)``."""
        source = COMMAND_LINE if self.origin == COMMAND_LINE else self.origin
        return f"'{self.requirement}' (from {source})"


@dataclass(frozen=True, slots=True)
class Selection:
    """Why one variant was chosen, and why each alternative was not."""

    variant: Variant
    needs: tuple[Need, ...]
    reason: str
    rejected: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Resolution:
    """The chain in build order, the variant each request became, and the selections."""

    chain: tuple[Variant, ...]
    requested: tuple[Variant, ...]
    selections: tuple[Selection, ...]
    edges: tuple[tuple[str, str], ...]


def bind(catalog: Catalog, text: str, origin: str) -> Need:
    """Parse ``text`` and find the base name it asks for."""
    try:
        requirement = parse_requirement(text)
    except RequirementSyntaxError as error:
        raise ResolutionError(str(error)) from None
    found = catalog.lookup(requirement.name)
    if not found:
        if origin == COMMAND_LINE:
            close = catalog.suggest(requirement.name)
            broken = next(
                (str(p) for p in catalog.problems if requirement.name in p.path.parts[-2:]), ""
            )
            raise UnknownPackageError(requirement.name, close, broken)
        raise ResolutionError(f"{origin} depends on '{text}', which no package provides")
    others = [variant for variant in found if variant.name != origin] or list(found)
    identities = sorted(_identities(others, requirement))
    if len(identities) > 1:
        raise ResolutionError(
            f"'{text}' (from {origin}) is ambiguous: it names {', '.join(identities)}"
        )
    return Need(identities[0], requirement, origin)


def _identities(found: Sequence[Variant], requirement: Requirement) -> set[str]:
    """What a requirement asks for: the identity of the variants it accepts.

    A bare name or a version range means a base, never a variant layered on it; when it
    accepts nothing, it still names the base (and resolution explains what is missing).
    The variant that asks is not among ``found``: nothing depends on itself.
    """
    accepted = [variant for variant in found if is_satisfied(requirement, variant.spec)]
    if not requirement.tag:
        accepted = [variant for variant in accepted if not variant.layered] or accepted
    return {variant.identity for variant in accepted} or {v.spec.base_name for v in found}


def _accepts(catalog: Catalog, need: Need, variant: Variant) -> bool:
    return variant in catalog.lookup(need.requirement.name) and is_satisfied(
        need.requirement, variant.spec
    )


class _Provider(resolvelib.AbstractProvider):  # type: ignore[type-arg]
    def __init__(self, catalog: Catalog, env: Mapping[str, str]) -> None:
        self.catalog = catalog
        self.env = env

    def identify(self, requirement_or_candidate: Need | Variant) -> str:
        if isinstance(requirement_or_candidate, Need):
            return requirement_or_candidate.identifier
        return requirement_or_candidate.identity

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Variant],
        candidates: Mapping[str, Iterator[Variant]],
        information: Mapping[str, Iterator[RequirementInformation[Need, Variant]]],
        backtrack_causes: Sequence[RequirementInformation[Need, Variant]],
    ) -> tuple[bool, bool, str]:
        # Identifiers behind the last conflict first (so backtracking ends quickly), then
        # pinned ones (they constrain the most), then by name for determinism.
        causes = {cause.requirement.identifier for cause in backtrack_causes}
        causes |= {cause.parent.identity for cause in backtrack_causes if cause.parent}
        pinned = any(
            info.requirement.requirement.tag or info.requirement.requirement.specifier
            for info in information[identifier]
        )
        return (identifier not in causes, not pinned, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Need]],
        incompatibilities: Mapping[str, Iterator[Variant]],
    ) -> list[Variant]:
        needs = list(requirements[identifier])
        excluded = set(incompatibilities[identifier])
        matches = [
            variant
            for variant in self.catalog.lookup(identifier)
            if variant.identity == identifier
            and variant.is_available
            and variant not in excluded
            and all(_accepts(self.catalog, need, variant) for need in needs)
        ]
        ordered = order_by_preference(matches, self.env)
        # jc: a bare name means the variant of that very name first, then its alias.
        bare = {need.requirement.name for need in needs if not need.requirement.tag}
        return sorted(ordered, key=lambda v: not (v.spec.format == "jc" and v.name in bare))

    def is_satisfied_by(self, requirement: Need, candidate: Variant) -> bool:
        return _accepts(self.catalog, requirement, candidate)

    def get_dependencies(self, candidate: Variant) -> list[Need]:
        return [bind(self.catalog, str(req), candidate.name) for req in candidate.depends]


def resolve(catalog: Catalog, requests: Sequence[str], env: Mapping[str, str]) -> Resolution:
    """Resolve ``requests`` (dependency entries, in order) into one chain."""
    needs = [bind(catalog, text, COMMAND_LINE) for text in requests]
    _check_version_env(catalog, needs, env)
    resolver: resolvelib.Resolver[Need, Variant, str] = resolvelib.Resolver(
        _Provider(catalog, env), resolvelib.BaseReporter()
    )
    try:
        result = resolver.resolve(needs, max_rounds=10_000)
    except resolvelib.ResolutionImpossible as impossible:
        raise _conflict(catalog, impossible.causes) from None
    except resolvelib.ResolutionTooDeep:
        raise ResolutionError("the requirements are too entangled to resolve") from None
    mapping: Mapping[str, Variant] = result.mapping
    chain, edges = _build_order(catalog, [mapping[need.identifier] for need in needs], mapping)
    selections = tuple(
        _explain(
            catalog,
            variant,
            env,
            [info.requirement for info in result.criteria[variant.identity].information],
        )
        for variant in chain
    )
    requested = tuple(dict.fromkeys(mapping[need.identifier] for need in needs))
    return Resolution(chain, requested, selections, edges)


def _check_version_env(catalog: Catalog, needs: Iterable[Need], env: Mapping[str, str]) -> None:
    """A ``<BASE>_VERSION`` that names no variant is an error, not a silently lost pin."""
    for need in needs:
        wanted = env.get(version_env_name(need.identifier))
        variants = [v for v in catalog.lookup(need.identifier) if v.is_available]
        if any(variant.spec.format == "jc" for variant in variants):
            continue
        if wanted and not any(is_version_match(wanted, v.spec.tag) for v in variants):
            tags = ", ".join(in_version_order(v.name for v in variants)) or "none"
            raise ResolutionError(
                f"{version_env_name(need.identifier)}={wanted} names no available variant "
                f"of {need.identifier} (available: {tags})"
            )


def _build_order(
    catalog: Catalog, roots: Sequence[Variant], mapping: Mapping[str, Variant]
) -> tuple[tuple[Variant, ...], tuple[tuple[str, str], ...]]:
    """Depth-first order (dependencies first) and the dependency edges, in declared order.

    An explicit stack, so a chain thousands of stages deep is no recursion limit."""
    order: dict[str, Variant] = {}
    edges: dict[tuple[str, str], None] = {}
    # Each frame: a variant and its dependencies still to visit (the next one last).
    stack: list[tuple[Variant, list[Variant]]] = []

    def enter(variant: Variant) -> None:
        names = [frame.name for frame, _ in stack]
        if variant.name in names:
            cycle = [*names[names.index(variant.name) :], variant.name]
            raise ResolutionError(f"dependency cycle: {' → '.join(cycle)}")
        dependencies = [
            mapping[bind(catalog, str(requirement), variant.name).identifier]
            for requirement in variant.depends
        ]
        stack.append((variant, dependencies[::-1]))

    for root in roots:
        if root.name not in order:
            enter(root)
        while stack:
            variant, pending = stack[-1]
            if pending:
                dependency = pending.pop()
                edges[(variant.name, dependency.name)] = None
                if dependency.name not in order:
                    enter(dependency)
                continue
            stack.pop()
            order[variant.name] = variant
    return tuple(order.values()), tuple(edges)


def _explain(
    catalog: Catalog, chosen: Variant, env: Mapping[str, str], needs: Sequence[Need]
) -> Selection:
    base = chosen.identity
    alternatives = sorted(
        (v for v in catalog.lookup(base) if v.identity == base and v != chosen),
        key=lambda variant: name_order(variant.name),
    )
    rejected = []
    for variant in alternatives:
        if not variant.is_available:
            why = f"unavailable: {variant.unavailable}"
        else:
            refusing = [need for need in needs if not _accepts(catalog, need, variant)]
            if refusing:
                why = f"excluded by {refusing[0].describe()}"
            else:
                why = f"less preferred ({_reason(chosen, env)} wins)"
        rejected.append((variant.name, why))
    return Selection(chosen, tuple(needs), _reason(chosen, env, needs), tuple(rejected))


def _reason(chosen: Variant, env: Mapping[str, str], needs: Sequence[Need] = ()) -> str:
    pins = [n for n in needs if n.requirement.tag or n.requirement.specifier]
    if pins:
        return f"pinned by {' and '.join(need.describe() for need in pins)}"
    variable = version_env_name(chosen.spec.base_name)
    if version_env(chosen, env) and is_version_match(env[variable], chosen.spec.tag):
        return f"{variable}={env[variable]}"
    agreeing, contradicting = env_pins(chosen, env)
    if agreeing and not contradicting:
        return f"follows {' and '.join(agreeing)}"
    if chosen.spec.default:
        jc_default = f"carries the alias '{chosen.spec.base_name}'"
        return jc_default if chosen.spec.format == "jc" else "marked default"
    if chosen.spec.version is not None:
        return "highest version"
    return "first by name"


def _conflict(
    catalog: Catalog, causes: Iterable[RequirementInformation[Need, Variant]]
) -> ResolutionError:
    by_identifier: dict[str, list[Need]] = {}
    for cause in causes:
        by_identifier.setdefault(cause.requirement.identifier, []).append(cause.requirement)
    reasons = []
    for identifier, needs in by_identifier.items():
        unique = list(dict.fromkeys(needs))
        variants = sorted(
            (v for v in catalog.lookup(identifier) if v.identity == identifier),
            key=lambda variant: name_order(variant.name),
        )
        available = [v.name for v in variants if v.is_available]
        asked = " and ".join(need.describe() for need in unique)
        if not available:
            why = "; ".join(f"{v.name} {v.unavailable}" for v in variants)
            reasons.append(f"{asked}: no variant of {identifier} is available ({why})")
        elif len(unique) > 1:
            reasons.append(
                f"{asked}: no single variant of {identifier} satisfies both "
                f"(available: {', '.join(available)})"
            )
        else:
            # Say why the variants it names are out, when it names any (platform, disabled).
            out = [
                f"; {v.name} {v.unavailable}"
                for v in variants
                if not v.is_available and all(_accepts(catalog, need, v) for need in unique)
            ]
            reasons.append(
                f"{asked}: no available variant matches (available: {', '.join(available)})"
                + "".join(out)
            )
    return ResolutionError("cannot resolve the requested packages", tuple(reasons))


def expand_requests(catalog: Catalog, requests: Sequence[str]) -> list[str]:
    """Replace shell-pattern requests by the matching available packages.

    A pattern that matches every variant of a base name becomes the base name (so the
    usual selection applies); one that matches some variants names each of them.
    """
    expanded: list[str] = []
    for text in requests:
        if not any(char in text for char in "*?["):
            expanded.append(text)
            continue
        matches = catalog.match([text])
        if not matches:
            raise UnknownPackageError(text)
        by_base: dict[str, list[Variant]] = {}
        for variant in matches:
            by_base.setdefault(variant.spec.base_name, []).append(variant)
        for base, found in by_base.items():
            every = [v for v in catalog.lookup(base) if v.spec.base_name == base and v.is_available]
            expanded.extend([base] if len(found) == len(every) else [v.name for v in found])
    return list(dict.fromkeys(expanded))
