"""Read what a stage key is computed from: the Dockerfile text and the context's files."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

META_DOCKERFILE = Path(__file__).parent / "data" / "meta.Dockerfile"


@dataclass(frozen=True, slots=True)
class Context:
    """The Dockerfile used for a stage and a digest of every file in its build context."""

    dockerfile: Path
    dockerfile_text: str
    files: tuple[tuple[str, str], ...]


def read_context(directory: Path, dockerfile: str | None) -> Context:
    """Hash every file under ``directory``; a variant with no Dockerfile uses the meta one.

    Names beginning with ``.`` or ``__`` (VCS data, bytecode caches) are left out, as in
    discovery, so that they never change a stage key.
    """
    path = directory / dockerfile if dockerfile else META_DOCKERFILE
    files = []
    for current, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        for name in sorted(names):
            if name.startswith((".", "__")):
                continue
            file = Path(current) / name
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            files.append((file.relative_to(directory).as_posix(), digest))
    return Context(path, path.read_text(encoding="utf-8"), tuple(sorted(files)))
