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


_FROM = re.compile(r"^[ \t]*FROM[ \t]", re.IGNORECASE)


def edit_dockerfile(text: str, edits: tuple[str, ...], pins: str = "") -> str:
    """``text`` with the named edits applied; ``no-github-api`` comments out the
    ``ADD https://api.github.com`` lines (``build --no-github-api``). ``pins``, a locked
    build's instructions (:mod:`jetforge.core.pins`), go right after the last ``FROM``."""
    if "no-github-api" in edits:
        text = _GITHUB_API_ADD.sub("# jetforge --no-github-api: ADD https://api.github.com", text)
    if pins:
        text = _after_last_from(text, pins)
    return text


def _after_last_from(text: str, instructions: str) -> str:
    lines = text.splitlines(keepends=True)
    starts = [number for number, line in enumerate(lines) if _FROM.match(line)]
    if not starts:
        return text + ("" if text.endswith("\n") or not text else "\n") + instructions
    end = starts[-1]
    while lines[end].rstrip("\r\n").endswith("\\") and end + 1 < len(lines):
        end += 1  # the FROM instruction goes on past a line continuation
    if not lines[end].endswith("\n"):
        lines[end] += "\n"
    return "".join([*lines[: end + 1], instructions, *lines[end + 1 :]])
