"""Importing a cache bundle (:mod:`jetforge.cache.bundle`) into a store, all or nothing.

Before a byte is written, every member is checked on its header against the manifest
(a regular file it lists, with its very size; nothing missing, nothing twice) and the new
files against the store's free space. The new files are then written into a staging
directory inside the store, each read with a bound and hashed, and moved in only when all
of them matched; a file the store has already is never overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from jetforge.cache.bundle import (
    CHUNK,
    FORMAT,
    MANIFEST,
    STORE_PATH,
    VERSION,
    Entry,
    format_size,
    sha256_of,
)
from jetforge.errors import FailureError, UsageError
from jetforge.host.files import MIB, UnreadableFileError, is_disk_full, open_regular

MANIFEST_LIMIT = 64 * MIB
MEMBER_LIMIT = 1_000_000
# A member's extended header (a GNU long name or link, a pax header) is read whole into
# memory by tarfile: a store path is a few hundred bytes, a pax header of one a little more.
HEADER_LIMIT = 64 * 1024
_EXTENDED = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
# a bundle cut short or damaged (a chain of extended headers too long: RecursionError)
_BROKEN = (tarfile.TarError, EOFError, zlib.error, OSError, RecursionError)


@dataclass
class ImportResult:
    """What an import added, skipped as already present, or kept in conflict."""

    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def import_bundle(bundle: Path, store: Path) -> ImportResult:
    """Check every member of ``bundle`` against its manifest and the store's free space,
    then add the new files to ``store``; a bundle with any bad, missing, unlisted,
    oversized or cut-short file, or one that does not fit, adds nothing."""
    with open_regular(bundle, "jetforge cache bundle") as handle, _open_tar(handle, bundle) as tar:
        members = _members(tar, bundle)
        entries = _read_manifest(tar, members.pop(MANIFEST, None), bundle)
        _check_members(members, entries, bundle)
        result = ImportResult()
        new = {}
        for path, entry in entries.items():
            if not os.path.lexists(store / path):
                new[path] = entry
            elif _same_file(store / path, entry):
                result.present.append(path)
            else:
                result.conflicts.append(path)
        _check_space(store, list(new.values()), bundle)
        staging = _staging_dir(store)
        try:
            for name, member in members.items():
                _copy_checked(tar, member, entries[name], staging / name, name in new, bundle)
            _move_in(staging, sorted(new), store, result)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return result


class _BoundedTarInfo(tarfile.TarInfo):
    """A member header whose extended header is refused before it is read when it is
    larger than :data:`HEADER_LIMIT`, so a hostile bundle cannot fill memory with a name."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED and self.size > HEADER_LIMIT:
            raise tarfile.HeaderError(
                f"a member's extended header (a long name or pax header) of {self.size} "
                f"bytes, larger than {format_size(HEADER_LIMIT)}"
            )
        return super()._proc_member(tar)  # type: ignore[misc,no-any-return]


def _open_tar(handle: IO[bytes], bundle: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=handle, mode="r:*", tarinfo=_BoundedTarInfo)
    except tarfile.ReadError:  # no method could open it: its message lists each one's
        raise UsageError(
            f"{bundle} is not a jetforge cache bundle (not a tar archive, plain or gzip, bzip2 "
            "or xz compressed)"
        ) from None
    except _BROKEN as error:
        raise UsageError(f"{bundle} is not a jetforge cache bundle ({error})") from None


def _members(tar: tarfile.TarFile, bundle: Path) -> dict[str, tarfile.TarInfo]:
    """The bundle's members by name (directories left out); a name twice is an error."""
    found: dict[str, tarfile.TarInfo] = {}
    try:
        for count, member in enumerate(tar, 1):
            if count > MEMBER_LIMIT:
                raise UsageError(f"{bundle} has more than {MEMBER_LIMIT} members")
            if member.isdir():
                continue
            if member.name in found:
                raise FailureError(f"{bundle}: '{member.name}' is in it twice")
            found[member.name] = member
    except _BROKEN as error:
        raise FailureError(
            f"{bundle} is cut short or damaged ({error}); nothing was imported"
        ) from None
    return found


def _read_manifest(
    tar: tarfile.TarFile, member: tarfile.TarInfo | None, bundle: Path
) -> dict[str, Entry]:
    """The manifest's entries by path, every field checked."""

    def bad(problem: str) -> UsageError:
        return UsageError(f"{bundle}: {MANIFEST} {problem}; it is not a jetforge cache bundle")

    if member is None:
        raise UsageError(
            f"{bundle} has no {MANIFEST}: it is not a jetforge cache bundle, or it was cut short"
        )
    if not member.isfile():
        raise bad("is not a regular file")
    if member.size > MANIFEST_LIMIT:
        raise bad(f"is larger than {format_size(MANIFEST_LIMIT)}")
    data = _load_json(tar, member, bundle, bad)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad(f"does not say format {FORMAT!r}")
    version = data.get("version")
    if type(version) is not int or version != VERSION:  # not true, not 1.0
        raise bad(f"has version {json.dumps(version)[:30]}; this jetforge reads version {VERSION}")
    files = data.get("files")
    if not isinstance(files, list):
        raise bad("has no list of 'files'")
    entries: dict[str, Entry] = {}
    for item in files:
        entry = _entry(item)
        if entry is None:
            raise bad(f"lists a file as {json.dumps(item)[:200]} (expected path, size, sha256)")
        if entry.path in entries:
            raise bad(f"lists {entry.path} twice")
        entries[entry.path] = entry
    return entries


def _load_json(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    bundle: Path,
    bad: Callable[[str], UsageError],
) -> object:
    try:
        stream = tar.extractfile(member)
        return json.loads(stream.read(MANIFEST_LIMIT) if stream else b"")
    except RecursionError:
        raise bad("nests deeper than Python's JSON reader goes") from None
    except ValueError as error:
        raise bad(f"is not JSON ({error})") from None
    except _BROKEN as error:
        raise FailureError(f"{bundle} is cut short or damaged ({error})") from None


def _entry(item: object) -> Entry | None:
    """A manifest entry: a store path, a size that is a whole number, a sha256."""
    if not isinstance(item, dict):
        return None
    path, size, sha256 = item.get("path"), item.get("size"), item.get("sha256")
    if (
        isinstance(path, str)
        and STORE_PATH.fullmatch(path)
        and isinstance(size, int)
        and not isinstance(size, bool)
        and size >= 0
        and isinstance(sha256, str)
        and _SHA256.fullmatch(sha256)
    ):
        return Entry(path, size, sha256)
    return None


def _check_members(
    members: dict[str, tarfile.TarInfo], entries: dict[str, Entry], bundle: Path
) -> None:
    """Every member a regular file the manifest lists with its very size, every entry a
    member: checked on the headers, before a byte is written."""
    for name, member in members.items():
        entry = entries.get(name)
        if entry is None:
            raise FailureError(f"{bundle}: '{name}' is not in its manifest; nothing was imported")
        if not member.isfile():
            raise FailureError(
                f"{bundle}: '{name}' is not a regular file member (a link or a device); "
                "nothing was imported"
            )
        if member.size != entry.size:
            larger = "larger" if member.size > entry.size else "smaller"
            raise FailureError(
                f"{bundle}: '{name}' holds {member.size} bytes, {larger} than its manifest "
                f"says ({entry.size}); nothing was imported"
            )
    missing = sorted(set(entries) - set(members))
    if missing:
        raise FailureError(f"{bundle}: {len(missing)} file(s) missing, e.g. {missing[0]}")


def _same_file(path: Path, entry: Entry) -> bool:
    try:
        return sha256_of(path) == entry.sha256
    except UnreadableFileError:
        return False


def _check_space(store: Path, new: list[Entry], bundle: Path) -> None:
    """One line when the new files do not fit on the store's device (counted in its
    blocks)."""
    existing = next(p for p in (store, *store.parents) if p.exists())
    try:
        found = os.statvfs(existing)
    except OSError as error:
        raise FailureError(f"cannot use the store {store}: {error.strerror or error}") from None
    block = found.f_frsize or 4096
    needed = sum(-(-entry.size // block) * block + block for entry in new)
    free = found.f_bavail * block
    if needed > free:
        raise FailureError(
            f"not enough space for {bundle} in {store}: its {len(new)} new file(s) need "
            f"{format_size(needed)}, the device has {format_size(free)} free; nothing was imported"
        )


def _staging_dir(store: Path) -> Path:
    """A new staging directory inside the store (so that moving in is a rename), after
    removing those of imports that were killed."""
    try:
        store.mkdir(parents=True, exist_ok=True)
        for stale in store.glob(".import-*"):
            pid = stale.name.split("-")[1]
            if pid.isdigit() and not _is_running(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=f".import-{os.getpid()}-", dir=store))
    except OSError as error:
        raise _write_error(store, error) from None


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _copy_checked(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    entry: Entry,
    target: Path,
    keep: bool,
    bundle: Path,
) -> None:
    """Read one member (never more than its manifest's size), hash it, and write it to
    ``target`` when ``keep``; a member that does not match is an error."""
    try:
        stream = tar.extractfile(member)
    except _BROKEN as error:
        raise FailureError(
            f"{bundle} is cut short or damaged ({error}); nothing was imported"
        ) from None
    if stream is None:
        raise FailureError(f"{bundle}: cannot read '{member.name}'; nothing was imported")
    digest = hashlib.sha256()
    size = 0
    with contextlib.ExitStack() as stack:
        out = None
        if keep:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                out = stack.enter_context(target.open("xb"))
            except OSError as error:
                raise _write_error(target.parent, error) from None
        while size <= entry.size:
            try:
                block = stream.read(min(CHUNK, entry.size + 1 - size))
            except _BROKEN as error:
                raise FailureError(
                    f"{bundle} is cut short or damaged at '{member.name}' ({error}); "
                    "nothing was imported"
                ) from None
            if not block:
                break
            digest.update(block)
            size += len(block)
            if out is not None:
                try:
                    out.write(block)
                except OSError as error:
                    raise _write_error(target.parent, error) from None
    if size != entry.size or digest.hexdigest() != entry.sha256:
        raise FailureError(
            f"{bundle}: '{member.name}' does not match its manifest (sha256 or size); "
            "nothing was imported"
        )


def _move_in(staging: Path, paths: list[str], store: Path, result: ImportResult) -> None:
    """Move every staged file into the store, or none: each is linked in (so that a file
    that appeared meanwhile is never replaced), and on a failure those linked so far are
    taken out again."""
    linked: list[Path] = []
    try:
        for relative in paths:
            (store / relative).parent.mkdir(parents=True, exist_ok=True)
        for relative in paths:
            source, target = staging / relative, store / relative
            try:
                os.link(source, target)
            except FileExistsError:
                same = _same_file(target, Entry(relative, 0, sha256_of(source)))
                (result.present if same else result.conflicts).append(relative)
                continue
            except OSError as error:
                if is_disk_full(error) or os.path.lexists(target):
                    raise
                source.replace(target)  # a file system without hard links
            linked.append(target)
            result.added.append(relative)
    except OSError as error:
        for target in linked:
            _remove(target)
        raise _write_error(store, error) from None


def _write_error(place: Path, error: OSError) -> FailureError:
    why = error.strerror or str(error)
    if is_disk_full(error):
        return FailureError(f"no space left in {place} ({why}); nothing was imported")
    return FailureError(f"cannot write {place} ({why}); nothing was imported")


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
