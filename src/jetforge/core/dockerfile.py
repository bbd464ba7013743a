"""A stage's Dockerfile and build context as values, and the edits a plan may make to the
Dockerfile (reading them from disk is :mod:`jetforge.host.context`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from jetforge.core.labels import PARENT, STAGE_KEY


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
_DIRECTIVE = re.compile(r"^#[ \t]*([a-z]+)[ \t]*=[ \t]*(\S+)[ \t]*$", re.IGNORECASE)

# Right after every FROM: an image made from a stage's image starts without its stage key,
# so only the stage's own completed build carries one (the engine adds it, with --label, as
# the build's last step). Without it an intermediate image that the legacy builder keeps
# after a failed build of the next stage would look like the parent stage and be reused.
RESET_STAGE_KEY = f'LABEL {STAGE_KEY}=""\n'


def identity_label(key: str, parent: str) -> str:
    """The instruction a stage's build ends with: its stage key, and the id of the image it
    is built on (``parent``; "" when unknown). Set by the last step, it is on the finished
    image only: no engine puts it on the images of the steps before (podman gives every
    step's image the ``--label`` values, and keeps them after a failed build)."""
    labels = f'{STAGE_KEY}="{key}"' + (f' {PARENT}="{parent}"' if parent else "")
    return f"# jetforge: this stage's identity, on its finished image only\nLABEL {labels}\n"


def edit_dockerfile(text: str, edits: tuple[str, ...], pins: str = "") -> str:
    """``text`` as a stage builds it: the stage key label reset after every ``FROM``
    (:data:`RESET_STAGE_KEY`), and the named edits applied: ``no-github-api`` comments out
    the ``ADD https://api.github.com`` lines (``build --no-github-api``). ``pins``, a
    locked build's instructions (:mod:`jetforge.core.pins`), go right after the last
    ``FROM``."""
    if "no-github-api" in edits:
        text = _GITHUB_API_ADD.sub("# jetforge --no-github-api: ADD https://api.github.com", text)
    lines = text.splitlines(keepends=True)
    ends = _from_ends(lines)
    if not ends:
        separator = "" if text.endswith("\n") or not text else "\n"
        return text + separator + pins
    if not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for number, end in enumerate(reversed(ends)):
        inserted = RESET_STAGE_KEY + (pins if number == 0 else "")
        lines.insert(end + 1, inserted)
    return "".join(lines)


def _from_ends(lines: list[str]) -> list[int]:
    """The index of the last line of every ``FROM`` instruction: instructions go on past
    a line that ends with the escape character (``\\``, or the ``# escape=`` directive's);
    comment lines are not instructions, inside one or between them."""
    escape = "\\"
    for line in lines:  # parser directives: only at the very top
        directive = _DIRECTIVE.match(line.strip())
        if directive is None:
            break
        if directive.group(1).lower() == "escape" and directive.group(2) in ("\\", "`"):
            escape = directive.group(2)
    ends: list[int] = []
    continued = False
    in_from = False
    for number, line in enumerate(lines):
        bare = line.rstrip("\r\n")
        if bare.lstrip().startswith("#"):
            continue  # a comment neither starts, ends nor continues an instruction
        if not continued:
            in_from = bool(_FROM.match(bare))
        continued = bare.rstrip().endswith(escape)
        if in_from and not continued:
            ends.append(number)
    return ends
