"""How variants are shown: as JSON-ready data, with their docs and notes read from their
package directory (for list, show and docs; not a command)."""

from __future__ import annotations

from collections.abc import Sequence

from jetforge.core.catalog import Catalog, Variant
from jetforge.errors import NoMatchError, UnknownPackageError
from jetforge.host.files import MIB, UnreadableFileError, read_regular

DOC_LIMIT = MIB  # a package's docs or notes file

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


def read_doc(variant: Variant, text: str) -> str:
    """``docs``/``notes`` text, read from the package dir when it names a file there (and
    only there: a name that leads outside, also through a link, is shown as text)."""
    if not text or "\n" in text or len(text) >= 256:
        return text
    candidate = variant.spec.path / text
    try:
        inside = candidate.resolve().is_relative_to(variant.spec.path.resolve())
        if inside and candidate.is_file():
            data = read_regular(candidate, "documentation file", DOC_LIMIT)
            return data.decode("utf-8-sig", errors="replace").strip()
    except (OSError, UnreadableFileError):
        pass
    return text
