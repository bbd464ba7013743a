"""A stage's Dockerfile and build context as values, and the edits a plan may make to the
Dockerfile (reading them from disk is :mod:`jetforge.context`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Context:
    """The Dockerfile used for a stage and a digest of every file in its build context."""

    dockerfile: Path
    dockerfile_text: str
    files: tuple[tuple[str, str], ...]


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
