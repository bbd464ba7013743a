"""Walking the search directories: which directories are packages, in which format.

The walk is sorted and follows no directory links; a file link counts only while it stays
inside the search directory. Nothing is parsed here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from jetforge.jc.reader import CONFIG_SUFFIXES
from jetforge.jc.scan import is_jc_checkout, is_jc_directory
from jetforge.spec import RootFormat

PACKAGE_FILES = frozenset({"Dockerfile", "package.yaml", "config.py"})


@dataclass(frozen=True, slots=True)
class PackageRoot:
    """A search directory and the format of its packages: ``auto`` decides per package
    directory (and reads a jetson-containers checkout's tree as jc)."""

    path: Path
    format: RootFormat = "auto"

    def effective_format(self) -> RootFormat:
        """``jc`` for a jetson-containers checkout searched in ``auto`` mode."""
        if self.format == "auto" and is_jc_checkout(self.path):
            return "jc"
        return self.format


def is_jc_file(name: str) -> bool:
    """A file name that may make a directory a jc package, or be one of its tests."""
    return (
        name.lower() == "dockerfile"
        or name in ("config.py", "test.py", "test.sh")
        or name.endswith(CONFIG_SUFFIXES)
    )


def iter_package_dirs(
    root: Path, *, jc: bool = False, warnings: list[str] | None = None
) -> Iterator[tuple[Path, frozenset[str]]]:
    """Yield every package directory under ``root`` with its file names, sorted, depth first.

    Names beginning with ``.`` or ``__`` are skipped. With ``jc`` the file names are those
    a jc package may use (any-case Dockerfile, config files, ``test.py``/``test.sh``).
    Links to directories are not followed (what they point to inside ``root`` is found
    under its own name); a file link counts while it stays inside ``root``. A link out of
    ``root``, a link loop and a dangling link are left out with a line in ``warnings``.
    """
    real = Path(os.path.realpath(root))
    yield from _walk(root, jc, real, warnings if warnings is not None else [])


def _walk(
    directory: Path, jc: bool, root: Path, warnings: list[str]
) -> Iterator[tuple[Path, frozenset[str]]]:
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return
    bad_links = {
        entry.name
        for entry in entries
        if entry.is_symlink() and not _link_ok(entry, root, warnings)
    }
    wanted = is_jc_file if jc else PACKAGE_FILES.__contains__
    files = frozenset(
        entry.name
        for entry in entries
        if wanted(entry.name) and entry.name not in bad_links and _is_file(entry)
    )
    if files and (not jc or files - {"test.py", "test.sh"}):
        yield directory, files
    for entry in entries:
        if entry.name.startswith((".", "__")) or entry.is_symlink() or not _is_dir(entry):
            continue
        yield from _walk(Path(entry.path), jc, root, warnings)


def _link_ok(entry: os.DirEntry[str], root: Path, warnings: list[str]) -> bool:
    """Whether a link may count as a file of its directory; warns about bad links."""
    target = Path(os.path.realpath(entry.path))
    if not target.exists():
        warnings.append(f"{entry.path}: dangling link (left out)")
        return False
    if not target.is_relative_to(root):
        warnings.append(f"{entry.path}: link to {target}, outside the search directory (left out)")
        return False
    if Path(os.path.realpath(Path(entry.path).parent)).is_relative_to(target):
        warnings.append(f"{entry.path}: link loop (left out)")
        return False
    return True


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:  # a link loop, for one
        return False


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def iter_directories(
    roots: Iterable[PackageRoot], warnings: list[str]
) -> Iterator[tuple[Path, frozenset[str], bool]]:
    """Every package directory with its files and whether it is read as jc."""
    for root in roots:
        kind = root.effective_format()
        for directory, files in iter_package_dirs(root.path, jc=kind == "jc", warnings=warnings):
            yield (
                directory,
                files,
                kind == "jc" or (kind == "auto" and is_jc_directory(directory, files)),
            )
