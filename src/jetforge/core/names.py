"""Variant names, ``BASE[:TAG]`` (``pytorch:2.8``, ``cmake``): split here and nowhere else."""

from __future__ import annotations

import re
from collections.abc import Iterable

from packaging.version import InvalidVersion, Version


def base_name(name: str) -> str:
    """``pytorch`` for ``pytorch:2.8`` and for ``pytorch``."""
    return name.partition(":")[0]


def variant_tag(name: str) -> str:
    """``2.8`` for ``pytorch:2.8``; empty for a bare base name."""
    return name.partition(":")[2]


def in_file_name(name: str) -> str:
    """The name as it goes into an image tag or a file name: ``pytorch_2.8``."""
    return name.replace(":", "_")


def name_order(name: str) -> tuple[str, bool, bool, Version, str]:
    """Sort key of variant names: by base name, the bare base name first, then by the
    version the tag starts with, as a version (``cudnn:9.3`` before ``cudnn:9.12``,
    ``torch:2.0-all`` between ``torch:2.0`` and ``torch:2.1``), then tags without one by
    text."""
    tag = variant_tag(name)
    version, rest = _leading_version(tag)
    return (base_name(name), bool(tag), version is None, version or _ZERO, rest)


def in_version_order(names: Iterable[str]) -> list[str]:
    """``names`` sorted by :func:`name_order`."""
    return sorted(names, key=name_order)


def _leading_version(tag: str) -> tuple[Version | None, str]:
    """The version a tag is or starts with, and what follows it."""
    try:
        return Version(tag), ""
    except InvalidVersion:
        pass
    found = _LEADING.match(tag)
    return (Version(found[0]), tag[found.end() :]) if found else (None, tag)


_LEADING = re.compile(r"\d+(?:\.\d+)*")
_ZERO = Version("0")


# The generated stage that adds the host's extra certificate authorities: index 0 of a
# plan and a lockfile when there is one, not part of the chain (jetforge.host.trust).
TRUST_STAGE = "ca-trust"
