"""How variants are shown: as JSON-ready data, with their docs and notes read from their
package directory (for list, show and docs; not a command)."""

from __future__ import annotations

from collections.abc import Sequence

from jetforge.core.catalog import Catalog, Variant
from jetforge.errors import NoMatchError, UnknownPackageError
from jetforge.ops.docs import read_doc

WILDCARDS = "*?["


def suggestions(catalog: Catalog, pattern: str) -> tuple[str, ...]:
    """The names a pattern without wildcards was likely meant to be (none for one with)."""
    return () if any(char in pattern for char in WILDCARDS) else catalog.suggest(pattern)


def check_unknown(catalog: Catalog, patterns: Sequence[str]) -> None:
    """``show``: the first pattern that matches no variant is an unknown package."""
    for pattern in patterns:
        if not catalog.match([pattern], include_unavailable=True):
            raise UnknownPackageError(pattern, suggestions(catalog, pattern))


def check_matched(catalog: Catalog, patterns: Sequence[str], *, include_unavailable: bool) -> None:
    """``list``: the patterns that match no variant listed, in one error."""
    misses = []
    for pattern in patterns:
        if catalog.match([pattern], include_unavailable=include_unavailable):
            continue
        unavailable = len(catalog.match([pattern], include_unavailable=True))
        misses.append((pattern, () if unavailable else suggestions(catalog, pattern), unavailable))
    if misses:
        raise NoMatchError(tuple(misses))


def variant_json(variant: Variant) -> dict[str, object]:
    """A variant as JSON-ready data (used by ``list --json`` and ``show --json``)."""
    spec = variant.spec
    return {
        "name": spec.name,
        "base_name": spec.base_name,
        "tag": spec.tag,
        "alias": list(spec.alias),
        "group": spec.group,
        "path": str(spec.path),
        "source": str(spec.source),
        "depends": list(spec.depends),
        "requires": list(spec.requires),
        "default": spec.default,
        "build_args": dict(spec.build_args),
        "build_flags": spec.build_flags,
        "dockerfile": spec.dockerfile,
        "test": list(spec.test),
        "docs": read_doc(variant, spec.docs),
        "notes": read_doc(variant, spec.notes),
        "prefix": spec.prefix,
        "postfix": spec.postfix,
        "config": list(spec.config),
        "format": spec.format,
        "buildkit_device": spec.buildkit_device,
        "available": variant.is_available,
        "unavailable_reason": variant.unavailable,
    }
