"""What the package cache's store holds, and bundles of it for machines without network.

A bundle is a tar file (gzip-compressed when its name ends in ``.gz`` or ``.tgz``) holding
``manifest.json`` and the store's files under their store paths
(``wheels/PLATFORM/FILE.whl``, ``tarballs/PLATFORM/NAME.tar.gz``). The manifest lists every
file with its size and sha256; ``import`` checks every file against it before anything
enters the store, and never overwrites a file that is already there.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jetforge.errors import FailureError, UsageError

FORMAT = "jetforge-cache-bundle"
_STORE_PATH = re.compile(
    r"(wheels|tarballs)/[A-Za-z0-9][A-Za-z0-9._-]{0,127}/[A-Za-z0-9][A-Za-z0-9._+!-]{0,254}"
)
CHUNK = 1 << 20


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
                and _STORE_PATH.fullmatch(relative)
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
    """The sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def export_bundle(store: Path, bundle: Path, platform: str = "*") -> Inventory:
    """Write the store's files (of the matching platforms) with a manifest into ``bundle``."""
    files = list(iter_store_files(store, platform))
    manifest = {
        "format": FORMAT,
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": [
            {"path": relative, "size": path.stat().st_size, "sha256": sha256_of(path)}
            for relative, path in files
        ],
    }
    data = (json.dumps(manifest, indent=2) + "\n").encode()
    partial = bundle.with_name(f".{bundle.name}.{os.getpid()}")
    compress = bundle.name.endswith((".gz", ".tgz"))
    try:
        with tarfile.open(partial, "w:gz") if compress else tarfile.open(partial, "w") as tar:
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(data))
            for relative, path in files:
                tar.add(path, arcname=relative, recursive=False)
        partial.replace(bundle)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise FailureError(f"cannot write the bundle {bundle}: {error.strerror or error}") from None
    return count_paths([relative for relative, _ in files])


@dataclass
class ImportResult:
    """What an import added, skipped as already present, or kept in conflict."""

    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def import_bundle(bundle: Path, store: Path) -> ImportResult:
    """Check every file of ``bundle`` against its manifest, then add the new ones to
    ``store``; a bundle with any bad, missing or unlisted file adds nothing."""
    if not bundle.is_file():
        raise UsageError(f"no such bundle: {bundle}")
    staging = store / f".import-{os.getpid()}"
    result = ImportResult()
    try:
        try:
            with tarfile.open(bundle) as tar:
                manifest = _stage(tar, bundle, staging)
        except tarfile.TarError as error:
            raise UsageError(f"{bundle} is not a jetforge cache bundle: {error}") from None
        for relative in sorted(manifest):
            target = store / relative
            if target.exists():
                same = sha256_of(target) == manifest[relative]["sha256"]
                (result.present if same else result.conflicts).append(relative)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            (staging / relative).replace(target)
            result.added.append(relative)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _stage(tar: tarfile.TarFile, bundle: Path, staging: Path) -> dict[str, dict[str, object]]:
    """Extract every file into ``staging``, checked against the manifest; the manifest."""
    manifest = _read_manifest(tar, bundle)
    staging.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for member in tar:
        if member.name == "manifest.json" or member.isdir():
            continue
        entry = manifest.get(member.name)
        if entry is None or not member.isfile():
            raise FailureError(f"{bundle}: '{member.name}' is not in its manifest")
        _extract_checked(tar, member, entry, staging / member.name, bundle)
        seen.add(member.name)
    missing = sorted(set(manifest) - seen)
    if missing:
        raise FailureError(f"{bundle}: {len(missing)} file(s) missing, e.g. {missing[0]}")
    return manifest


def _read_manifest(tar: tarfile.TarFile, bundle: Path) -> dict[str, dict[str, object]]:
    try:
        member = tar.getmember("manifest.json")
        stream = tar.extractfile(member)
        data = json.loads(stream.read() if stream else b"")
    except (KeyError, ValueError) as error:
        raise UsageError(f"{bundle} has no valid manifest.json: {error}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{bundle} is not a jetforge cache bundle (format: {FORMAT})")
    entries: dict[str, dict[str, object]] = {}
    for entry in data.get("files", []):
        path = str(entry.get("path", ""))
        if not _STORE_PATH.fullmatch(path) or ".." in path.split("/"):
            raise FailureError(f"{bundle}: manifest names a path outside the store: {path!r}")
        entries[path] = entry
    return entries


def _extract_checked(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    entry: dict[str, object],
    target: Path,
    bundle: Path,
) -> None:
    stream = tar.extractfile(member)
    if stream is None:
        raise FailureError(f"{bundle}: cannot read '{member.name}'")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with stream, target.open("wb") as out:
        while block := stream.read(CHUNK):
            digest.update(block)
            size += len(block)
            out.write(block)
    if digest.hexdigest() != entry.get("sha256") or size != entry.get("size"):
        raise FailureError(
            f"{bundle}: '{member.name}' does not match its manifest (sha256 or size); "
            "nothing was imported"
        )


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
