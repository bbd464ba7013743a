"""Read what a stage key is computed from: the Dockerfile text and the context's files."""

from __future__ import annotations

import hashlib
import os
import re
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


_GITHUB_API_ADD = re.compile(r"^ADD https://api\.github\.com", re.MULTILINE)


def has_github_api(context: Context) -> bool:
    """Whether the Dockerfile has ``ADD https://api.github.com/...`` lines (jc's packages
    use them so that a new commit upstream invalidates the build cache)."""
    return _GITHUB_API_ADD.search(context.dockerfile_text) is not None


def edit_dockerfile(text: str, edits: tuple[str, ...]) -> str:
    """``text`` with the named edits applied; ``no-github-api`` comments out the
    ``ADD https://api.github.com`` lines (``build --no-github-api``)."""
    if "no-github-api" in edits:
        text = _GITHUB_API_ADD.sub("# jetforge --no-github-api: ADD https://api.github.com", text)
    return text
