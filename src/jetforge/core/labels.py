"""Stage keys and image labels (docs/builds.md, "Reuse"): pure functions over values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from jetforge import __version__

STAGE_KEY = "jetforge.stage-key"
PARENT = "jetforge.parent"  # the id of the image a stage was built on (set by the build)
PACKAGE = "jetforge.package"
CHAIN = "jetforge.chain"
PLATFORM = "jetforge.platform"
VERSION = "jetforge.version"
CREATED = "org.opencontainers.image.created"
TITLE = "org.opencontainers.image.title"


def stage_key(
    *,
    parent: str,
    dockerfile_text: str,
    files: Sequence[tuple[str, str]],
    build_args: Sequence[tuple[str, str]],
    build_flags: Sequence[str],
    build_mode: str,
) -> str:
    """sha256 over everything that determines a stage's image.

    ``parent`` is the previous stage's key, or the base image's id (its reference when no
    engine is reachable). ``BASE_IMAGE`` is left out of the arguments: the parent already
    stands for the base's content, and leaving its name out lets chains with different
    image names share stages.
    """
    document = {
        "parent": parent,
        "dockerfile": dockerfile_text,
        "files": [list(item) for item in files],
        "build_args": [[k, v] for k, v in build_args if k != "BASE_IMAGE"],
        "build_flags": list(build_flags),
        "build_mode": build_mode,
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def stage_labels(
    *, key: str, package: str, chain: Sequence[str], platform: str, title: str, created: str
) -> tuple[tuple[str, str], ...]:
    """The labels every built image carries."""
    return (
        (STAGE_KEY, key),
        (PACKAGE, package),
        (CHAIN, ",".join(chain)),
        (PLATFORM, platform),
        (VERSION, __version__),
        (CREATED, created),
        (TITLE, title),
    )
