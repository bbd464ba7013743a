"""What the package cache's store holds, and bundles of it for machines without network.

A bundle is a tar file (gzip-compressed when its name ends in ``.gz`` or ``.tgz``) holding
the store's files under their store paths (``wheels/PLATFORM/FILE.whl``,
``tarballs/PLATFORM/NAME.tar.gz``), every one a regular file member, and ``manifest.json``
listing each with its size and sha256. The manifest is the last member: export reads each
file once, hashes what it read and writes those very bytes, so a file rewritten meanwhile
cannot make the bundle disagree with itself. Import is
:mod:`jetforge.cache.bundle_import`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from jetforge.errors import FailureError, UsageError
from jetforge.host.files import (
    MIB,
    UnreadableFileError,
    UnwritableFileError,
    named_output,
    open_regular,
)

FORMAT = "jetforge-cache-bundle"
VERSION = 1
MANIFEST = "manifest.json"
STORE_PATH = re.compile(
    r"(wheels|tarballs)/[A-Za-z0-9][A-Za-z0-9._-]{0,127}/[A-Za-z0-9][A-Za-z0-9._+!-]{0,254}"
)
CHUNK = 1 << 20
SPOOL_IN_MEMORY = 64 * MIB  # a larger store file is copied beside the bundle first
ATTEMPTS = 3  # reads of a store file that keeps changing, before export gives up


@dataclass(frozen=True, slots=True)
class Inventory:
    """Counts and sizes of what a store holds."""

    wheels: int = 0
    tarballs: int = 0
    other: int = 0
    size: int = 0
    platforms: tuple[tuple[str, int, int], ...] = ()  # (platform, wheels, tarballs)

    def to_json(self) -> dict[str, object]:
        """JSON-ready data."""
        return {
            "wheels": self.wheels,
            "tarballs": self.tarballs,
            "other_files": self.other,
            "bytes": self.size,
            "platforms": {name: {"wheels": w, "tarballs": t} for name, w, t in self.platforms},
        }


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of a bundle as its manifest lists it."""

    path: str
    size: int
    sha256: str


def iter_store_files(store: Path, platform: str = "*") -> Iterator[tuple[str, Path]]:
    """``(store path, file)`` of every wheel, package and tarball, sorted; platforms
    matching the shell pattern ``platform``."""
    for kind in ("wheels", "tarballs"):
        folder = store / kind
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*/*")):
            relative = path.relative_to(store).as_posix()
            if (
                path.is_file()
                and STORE_PATH.fullmatch(relative)
                and not path.name.endswith(".sha256")
                and fnmatch.fnmatchcase(path.parent.name, platform)
            ):
                yield relative, path


def take_inventory(store: Path) -> Inventory:
    """Count the store's wheels, tarballs and other packages, and their bytes."""
    counts: dict[str, list[int]] = {}
    wheels = tarballs = other = size = 0
    for relative, path in iter_store_files(store):
        kind, platform, name = relative.split("/")
        with contextlib.suppress(OSError):  # removed meanwhile
            size += path.stat().st_size
        row = counts.setdefault(platform, [0, 0])
        if kind == "wheels" and name.endswith(".whl"):
            wheels += 1
            row[0] += 1
        elif kind == "tarballs" and name.endswith(".tar.gz"):
            tarballs += 1
            row[1] += 1
        else:
            other += 1
    platforms = tuple((name, w, t) for name, (w, t) in sorted(counts.items()))
    return Inventory(wheels, tarballs, other, size, platforms)


def sha256_of(path: Path) -> str:
    """The sha256 of a regular file (a link to one is followed)."""
    digest = hashlib.sha256()
    with open_regular(path, "store file") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


# --- export ------------------------------------------------------------------------------


def export_bundle(store: Path, bundle: Path, platform: str = "*") -> Inventory:
    """Write the store's files (of the matching platforms) with a manifest into ``bundle``:
    each file's contents (a link is followed, so every member is a regular file), read
    once and hashed as read. ``bundle`` is a path the user named
    (:func:`jetforge.host.files.named_output`): checked before any file is read, and
    replaced only when complete (``/dev/null`` and a FIFO with a reader are written
    through)."""
    files = list(iter_store_files(store, platform))
    compress = bundle.name.endswith((".gz", ".tgz"))
    entries: list[Entry] = []
    try:
        with named_output(bundle, "cache bundle") as out:
            # A large store file is copied beside the bundle first (never into /dev).
            spool = Path(os.path.realpath(bundle)).parent if _is_regular_or_new(bundle) else None
            with tarfile.open(fileobj=out, mode="w|gz" if compress else "w|") as tar:
                for relative, path in files:
                    with _snapshot(path, relative, spool) as (copy, entry):
                        tar.addfile(_member(relative, entry.size), copy)
                    entries.append(entry)
                data = _manifest_bytes(entries)
                tar.addfile(_member(MANIFEST, len(data)), io.BytesIO(data))
    except UnwritableFileError as error:
        raise UsageError(f"cannot write the bundle {bundle}: {error.problem}") from None
    except OSError as error:
        where = "" if error.filename in (None, str(bundle)) else f" ({error.filename})"
        raise FailureError(
            f"cannot write the bundle {bundle}: {error.strerror or error}{where}"
        ) from None
    return count_paths([entry.path for entry in entries])


def _is_regular_or_new(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return True


@contextlib.contextmanager
def _snapshot(
    path: Path, relative: str, spool_dir: Path | None
) -> Iterator[tuple[IO[bytes], Entry]]:
    """One consistent copy of a store file and its entry: read once (in memory, or in a
    file beside the bundle when large), hashed as read, and read again when the file
    changed while it was read."""
    for _ in range(ATTEMPTS):
        place = None if spool_dir is None else str(spool_dir)
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY, "w+b", dir=place) as copy:
            digest = hashlib.sha256()
            size = 0
            with open_regular(path, "store file") as source:
                before = os.fstat(source.fileno())
                while block := _read(source, path):
                    digest.update(block)
                    copy.write(block)
                    size += len(block)
                after = os.fstat(source.fileno())
            if _stamp(before) == _stamp(after):
                copy.seek(0)
                yield copy, Entry(relative, size, digest.hexdigest())
                return
    raise FailureError(
        f"{path} changed each time it was read ({ATTEMPTS} times); export again when "
        "nothing writes to the store"
    )


def _read(source: IO[bytes], path: Path) -> bytes:
    try:
        return source.read(CHUNK)
    except OSError as error:
        raise UnreadableFileError(path, "store file", error.strerror or str(error)) from None


def _stamp(found: os.stat_result) -> tuple[int, int, int]:
    return found.st_ino, found.st_size, found.st_mtime_ns


def _member(name: str, size: int) -> tarfile.TarInfo:
    """A regular file member owned by nobody in particular."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, int(time.time()), 0o644, tarfile.REGTYPE
    return info


def _manifest_bytes(entries: list[Entry]) -> bytes:
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in entries],
    }
    return (json.dumps(manifest, indent=2) + "\n").encode()


def count_paths(relatives: list[str]) -> Inventory:
    """Wheels, tarballs and other files among store paths."""
    wheels = tarballs = other = 0
    for relative in relatives:
        if relative.startswith("wheels/") and relative.endswith(".whl"):
            wheels += 1
        elif relative.startswith("tarballs/"):
            tarballs += 1
        else:
            other += 1
    return Inventory(wheels, tarballs, other)


def format_size(count: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
