"""Walking the search directories: which directories are packages, in which format.

The walk is sorted and follows no directory links; a file link counts only while it stays
inside the search directory. Nothing is parsed here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jetforge.core.formats import RootFormat
from jetforge.discovery.jc.checkout import CONFIG_SUFFIXES, is_jc_checkout
from jetforge.host.stash import FileStamp, file_stamp, stat_stamp

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


# A package directory's entries: each name with its file's stamp (None for a directory).
DirStamp = tuple[tuple[str, FileStamp | None], ...]
# The stamp of every file of a walk that keeps none (nothing will compare it): no stat.
UNSTAMPED: FileStamp = (-1, -1, -1, -1)


@dataclass(frozen=True, slots=True)
class PackageDir:
    """A package directory found by the walk: its package file names, the format of its
    search directory (``auto`` is decided per directory later) and its stamp."""

    path: Path
    files: frozenset[str]
    format: RootFormat
    stamp: DirStamp
    root: Path  # the real path of its search directory


@dataclass
class Walk:
    """What a walk collects besides the package directories: warnings about links it left
    out, and the stamp of every directory and file it looked at (while they hold, a walk
    would find the same). A walk without ``stamps`` (for a run that keeps no discovery
    index) collects no stamps and gives every file :data:`UNSTAMPED`."""

    warnings: list[str] = field(default_factory=list)
    seen: list[tuple[str, FileStamp | None]] = field(default_factory=list)
    stamps: bool = True


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
    walk = Walk(warnings if warnings is not None else [])
    for found in _walk(root, jc, Path(os.path.realpath(root)), walk):
        yield found.path, found.files


def _walk(directory: Path, jc: bool, root: Path, walk: Walk) -> Iterator[PackageDir]:
    listed = _list(directory, jc, root, walk)
    if listed is None:
        return
    entries, stamp, names = listed
    if names and (not jc or names - {"test.py", "test.sh"}):
        yield PackageDir(directory, names, "jc" if jc else "auto", stamp, root)
    for entry in entries:
        if entry.name.startswith((".", "__")) or entry.is_symlink() or not _is_dir(entry):
            continue
        yield from _walk(Path(entry.path), jc, root, walk)


def _list(
    directory: Path, jc: bool, root: Path, walk: Walk
) -> tuple[list[os.DirEntry[str]], DirStamp, frozenset[str]] | None:
    """A directory's entries, its stamp and its package file names (None: unreadable)."""
    if walk.stamps:
        walk.seen.append((str(directory), file_stamp(directory)))
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return None
    bad_links = {
        entry.name
        for entry in entries
        if entry.is_symlink() and not _link_ok(entry, root, walk.warnings)
    }
    stamp: list[tuple[str, FileStamp | None]] = []
    wanted = is_jc_file if jc else PACKAGE_FILES.__contains__
    files = []
    for entry in entries:
        if entry.name in bad_links:
            if walk.stamps:
                walk.seen.append((entry.path, file_stamp(entry.path)))
            continue
        if not _is_file(entry):
            stamp.append((entry.name, None))
            if wanted(entry.name) and not _is_dir(entry):
                # A FIFO, a device or a socket by a package file's name: the directory is
                # a package, a broken one (:func:`special_files`), not silently none.
                files.append(entry.name)
            continue
        entry_stamp = _file_stamp(entry, walk)
        if entry_stamp is None:  # gone since the listing
            continue
        stamp.append((entry.name, entry_stamp))
        if wanted(entry.name):
            files.append(entry.name)
    return entries, tuple(stamp), frozenset(files)


def _file_stamp(entry: os.DirEntry[str], walk: Walk) -> FileStamp | None:
    """A file's stamp, noted in the walk (UNSTAMPED when the walk keeps none); None when
    it cannot be stat'ed."""
    if not walk.stamps:
        return UNSTAMPED
    try:
        entry_stamp = stat_stamp(entry.stat())
    except OSError:
        walk.seen.append((entry.path, None))
        return None
    walk.seen.append((entry.path, entry_stamp))
    return entry_stamp


def special_files(found: PackageDir) -> list[str]:
    """The package files of ``found`` that the walk saw as neither regular files nor
    directories (their stamp is None): reading one would block or read garbage."""
    return sorted({name for name, stamp in found.stamp if stamp is None} & found.files)


def restamp(found: PackageDir) -> PackageDir:
    """``found`` with its directory's stamp as it is now (config scripts may write files
    into their own directory)."""
    listed = _list(found.path, found.format == "jc", found.root, Walk())
    return found if listed is None else dataclasses.replace(found, stamp=listed[1])


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


def iter_directories(roots: Iterable[PackageRoot], walk: Walk) -> Iterator[PackageDir]:
    """Every package directory of ``roots``, in order; a directory of an ``auto`` root
    keeps the format ``auto`` (:func:`is_jc_directory` decides it when it is read)."""
    for root in roots:
        kind = root.effective_format()
        for found in _walk(root.path, kind == "jc", Path(os.path.realpath(root.path)), walk):
            yield found if kind != "jetforge" else dataclasses.replace(found, format="jetforge")
