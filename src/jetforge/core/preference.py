"""The selection order between variants of one base name (docs/package-format.md), a pure
function of the variants and the environment; resolution offers candidates in this order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from packaging.version import Version

from jetforge.core.catalog import Variant
from jetforge.core.requirement import is_version_match
from jetforge.core.spec import parse_version


def version_env_name(base_name: str) -> str:
    """``pytorch`` → ``PYTORCH_VERSION``; ``build-essential`` → ``BUILD_ESSENTIAL_VERSION``."""
    return f"{base_name.upper().replace('-', '_').replace('.', '_')}_VERSION"


def order_by_preference(variants: Iterable[Variant], env: Mapping[str, str]) -> list[Variant]:
    """The variants, most preferred first (docs/package-format.md).

    ``<BASE>_VERSION`` first, then variants whose pinned dependencies agree with the
    ``<BASE>_VERSION`` of those dependencies (so ``PYTORCH_VERSION=2.6`` makes
    ``torchvision:0.21``, which depends on ``pytorch:2.6``, win over ``torchvision:0.23``),
    then ``default: true``, then the highest version, then variants whose tag is not a
    version, by name. Stable sorts keep ties in name order.
    """
    ordered = sorted(variants, key=lambda variant: variant.name)
    ordered.sort(
        key=lambda variant: (variant.spec.version is not None, variant.spec.version or _ZERO),
        reverse=True,
    )

    def is_env_choice(variant: Variant) -> bool:
        wanted = version_env(variant, env)
        return bool(wanted) and is_version_match(wanted, variant.spec.tag)

    ordered.sort(
        key=lambda variant: (
            not is_env_choice(variant),
            bool(env_pins(variant, env)[1]),
            not variant.spec.default,
        )
    )
    return ordered


def version_env(variant: Variant, env: Mapping[str, str]) -> str:
    """The ``<BASE>_VERSION`` setting that selects among a variant's base, if any.

    In a jc tree the config scripts read those settings themselves (and mark the variant
    they mean with the bare alias), so they do not select here.
    """
    if variant.spec.format == "jc":
        return ""
    return env.get(version_env_name(variant.spec.base_name), "")


def env_pins(variant: Variant, env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """The ``<BASE>_VERSION=…`` settings that the variant's pinned dependencies agree with,
    and those they contradict."""
    agreeing: list[str] = []
    contradicting: list[str] = []
    if variant.spec.format == "jc":
        return agreeing, contradicting
    for requirement in variant.depends:
        variable = version_env_name(requirement.name)
        wanted = env.get(variable, "")
        if not wanted:
            continue
        if requirement.tag:
            agrees = is_version_match(wanted, requirement.tag)
        elif requirement.specifier is not None:
            version = parse_version(wanted)
            agrees = version is not None and requirement.specifier.contains(
                version, prereleases=True
            )
        else:
            continue
        (agreeing if agrees else contradicting).append(f"{variable}={wanted}")
    return agreeing, contradicting


_ZERO = Version("0")
