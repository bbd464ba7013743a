"""The catalog: every variant found with its requirements parsed and its availability on
the platform decided, looked up by name, base name or alias."""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from jetforge.core.listing import Listing
from jetforge.core.names import base_name, name_order
from jetforge.errors import DefinitionError

if TYPE_CHECKING:
    from jetforge.core.requirement import Predicate, Requirement
    from jetforge.core.spec import PackageSpec


@dataclass(frozen=True)  # no slots: the discovery index fills thousands (discovery/records.py)
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


class VariantSource(Protocol):
    """Where a catalog's variants come from when they are not given (the discovery
    index's answer): the names lookups answer to, the variants of one name (in discovery
    order) and all of them, each variant made once."""

    def lookup_names(self) -> Collection[str]: ...

    def lookup(self, name: str) -> tuple[Variant, ...]: ...

    def every(self) -> tuple[Variant, ...]: ...


class Catalog:
    """Every variant found, in discovery order, and every definition problem.

    Made from its variants, or from a :class:`VariantSource` (``source``), whose variants
    are made when a lookup asks for their name, and all of them when :attr:`variants` is
    first read: a warm ``build`` of a large tree makes only its chain's."""

    __slots__ = ("_by_lookup", "_source", "_variants", "problems", "warnings")

    def __init__(
        self,
        variants: tuple[Variant, ...] = (),
        problems: tuple[DefinitionError, ...] = (),
        warnings: tuple[str, ...] = (),
        *,
        source: VariantSource | None = None,
    ) -> None:
        self._variants = None if source is not None else variants
        self._source = source
        self.problems = problems
        self.warnings = warnings
        # Made on the first lookup (a warm ``list`` of a large tree needs none).
        self._by_lookup: dict[str, tuple[Variant, ...]] = {}

    @property
    def variants(self) -> tuple[Variant, ...]:
        """Every variant, in discovery order."""
        if self._variants is None:
            assert self._source is not None
            self._variants = self._source.every()
        return self._variants

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Catalog):
            return NotImplemented
        return (self.variants, self.problems, self.warnings) == (
            other.variants,
            other.problems,
            other.warnings,
        )

    def __hash__(self) -> int:
        return hash((self.variants, self.problems, self.warnings))

    def __repr__(self) -> str:
        return (
            f"Catalog(variants={self.variants!r}, problems={self.problems!r}, "
            f"warnings={self.warnings!r})"
        )

    def _lookups(self) -> dict[str, tuple[Variant, ...]]:
        if self.variants and not self._by_lookup:
            lookup: dict[str, list[Variant]] = {}
            for variant in self.variants:
                names = {variant.name, variant.spec.base_name, *variant.spec.alias}
                names |= {base_name(alias) for alias in variant.spec.alias}
                for name in sorted(names):
                    lookup.setdefault(name, []).append(variant)
            self._by_lookup.update({name: tuple(found) for name, found in lookup.items()})
        return self._by_lookup

    def lookup(self, name: str) -> tuple[Variant, ...]:
        """Variants answering to ``name``: a variant name, a base name or an alias."""
        if self._variants is None and self._source is not None:
            return self._source.lookup(name)
        return (self._by_lookup or self._lookups()).get(name, ())

    def get(self, name: str) -> Variant | None:
        """The variant called exactly ``name``."""
        return next((v for v in self.lookup(name) if v.name == name), None)

    def names(self) -> tuple[str, ...]:
        """Every name the catalog answers to, sorted."""
        if self._variants is None and self._source is not None:
            return tuple(sorted(self._source.lookup_names()))
        return tuple(sorted(self._lookups()))

    def match(self, patterns: Sequence[str], *, include_unavailable: bool = False) -> list[Variant]:
        """Variants whose name or an alias matches any shell-style pattern, in name order
        (versions as versions: ``cudnn:9.3`` before ``cudnn:9.12``)."""
        found = [
            variant
            for variant in self.variants
            if (include_unavailable or variant.is_available)
            and any(is_match(variant, pattern) for pattern in patterns)
        ]
        return sorted(found, key=lambda variant: name_order(variant.name))

    def listing(self) -> Listing:
        """What ``list`` shows of the catalog (:class:`~jetforge.core.listing.Listing`)."""
        ordered = sorted(self.variants, key=lambda variant: name_order(variant.name))
        return Listing(
            tuple((v.name, v.unavailable, (v.spec.base_name, *v.spec.alias)) for v in ordered),
            tuple(map(str, self.problems)),
            self.warnings,
        )

    def suggest(self, name: str, count: int = 3) -> tuple[str, ...]:
        """The names closest to ``name`` (what a typo likely meant): the closest base
        names first, the variants of each in version order."""
        import difflib  # here, not at the top: only a typo needs it

        close = difflib.get_close_matches(name, self.names(), n=count)
        bases = list(dict.fromkeys(base_name(found) for found in close))
        return tuple(
            sorted(close, key=lambda found: (bases.index(base_name(found)), name_order(found)))
        )


def is_match(variant: Variant, pattern: str) -> bool:
    """Whether ``pattern`` (shell wildcards) matches the variant's name, base name or aliases."""
    names = (variant.name, variant.spec.base_name, *variant.spec.alias)
    return any(fnmatch.fnmatchcase(name, pattern) for name in names)


def is_satisfied(requirement: Requirement, spec: PackageSpec) -> bool:
    """Whether ``spec`` is a variant that ``requirement`` accepts."""
    if requirement.tag:
        wanted = f"{requirement.name}:{requirement.tag}"
        return spec.name == wanted or wanted in spec.alias
    if requirement.specifier is not None:
        version = spec.version
        return version is not None and requirement.specifier.contains(version, prereleases=True)
    return True
