"""Read what a stage key is computed from: the Dockerfile text and the context's files."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.dockerfile import Context
from jetforge.errors import DefinitionError

if TYPE_CHECKING:
    pass

META_DOCKERFILE = Path(__file__).parents[1] / "data" / "meta.Dockerfile"


def read_context(
    directory: Path,
    dockerfile: str | None,
    *,
    exclude: Sequence[Path] = (),
    digest: Callable[[Path], str | None] | None = None,
) -> Context:
    """Hash every file under ``directory``; a variant with no Dockerfile uses the meta one.

    What the engine would not send, or what says nothing about the image, stays out of
    the key: names beginning with ``.`` or ``__`` (VCS data, bytecode caches), what the
    context's ``.dockerignore`` excludes, and the directories in ``exclude`` (jetforge's
    own logs and caches). Regular files are hashed by content, links by their target
    (the engine sends them as links), and anything else (FIFOs, devices) is left out, so
    nothing blocks. A file that cannot be read is a :class:`DefinitionError`. ``digest``
    hashes one file (default :func:`file_digest`; :class:`jetforge.host.digests.Digests`
    remembers them).
    """
    digest = digest or file_digest
    path = directory / dockerfile if dockerfile else META_DOCKERFILE
    ignore = read_dockerignore(directory)
    skip = {os.path.realpath(item) for item in exclude}
    files = []
    for current, dirs, names in os.walk(directory):
        relative_dir = Path(current).relative_to(directory).as_posix()
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith((".", "__"))
            and os.path.realpath(Path(current) / d) not in skip
            and (ignore.has_exceptions or not ignore.excludes(_join(relative_dir, d)))
        )
        for name in sorted(names):
            relative = _join(relative_dir, name)
            if name.startswith((".", "__")) or ignore.excludes(relative):
                continue
            found = digest(Path(current) / name)
            if found is not None:
                files.append((relative, found))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DefinitionError(path, f"cannot read the Dockerfile: {error}") from None
    return Context(path, text, tuple(sorted(files)))


def _join(directory: str, name: str) -> str:
    return name if directory == "." else f"{directory}/{name}"


def context_lstat(file: Path) -> os.stat_result:
    """A context file's ``lstat``; one that cannot be taken is a :class:`DefinitionError`."""
    try:
        return file.lstat()
    except OSError as error:
        raise DefinitionError(file, f"cannot read a file of the build context: {error}") from None


def file_digest(file: Path, info: os.stat_result | None = None) -> str | None:
    """A context file's digest: a regular file's content, a link's target, None for
    anything else. ``info`` is the file's ``lstat``, when it was taken already."""
    info = info or context_lstat(file)
    try:
        if stat.S_ISLNK(info.st_mode):
            return "link:" + str(file.readlink())
        if not stat.S_ISREG(info.st_mode):
            return None
        return hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError as error:
        raise DefinitionError(file, f"cannot read a file of the build context: {error}") from None


@dataclass(frozen=True, slots=True)
class IgnoreRules:
    """A ``.dockerignore``: (pattern, negated) in file order; the last match wins, and a
    pattern that matches a directory matches everything under it."""

    rules: tuple[tuple[re.Pattern[str], bool], ...] = ()

    @property
    def has_exceptions(self) -> bool:
        """Whether a ``!`` rule may bring back files under an excluded directory."""
        return any(negated for _, negated in self.rules)

    def excludes(self, relative: str) -> bool:
        """Whether the engine leaves ``relative`` (a posix path in the context) out."""
        excluded = False
        parts = relative.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        for pattern, negated in self.rules:
            if any(pattern.fullmatch(prefix) for prefix in prefixes):
                excluded = not negated
        return excluded


def read_dockerignore(directory: Path) -> IgnoreRules:
    """The ``.dockerignore`` of a build context (none: nothing is ignored)."""
    try:
        text = (directory / ".dockerignore").read_text(encoding="utf-8-sig")
    except OSError:
        return IgnoreRules()
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = posixpath.normpath(line.removeprefix("!").strip().lstrip("/"))
        if pattern in (".", ""):
            continue
        rules.append((re.compile(_pattern_regex(pattern)), negated))
    return IgnoreRules(tuple(rules))


def _pattern_regex(pattern: str) -> str:
    """Docker's reading of a pattern (Go's filepath.Match plus ``**``) as a regex."""
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                out.append("(?:.*/)?")
                index += 1
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            close = pattern.find("]", index + 1)
            if close < 0:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1 : close].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
                index = close
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)
