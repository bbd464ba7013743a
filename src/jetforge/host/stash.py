"""The stash: what jetforge remembers between runs to spare work, kept as plain data.

Five private caches live here: the discovery index, context file digests, host probe
answers, the CA trust answer and the parsed platform table. (The package cache of
:mod:`jetforge.cache` is another thing: wheels and tarballs that builds use.) They share
four rules, defined once in this module:

- **Plain data.** A stash file is JSON text, one document per line (its parts: a reader
  decodes only the parts it needs): objects, arrays, strings, numbers, booleans and null.
  Reading one never runs code (no pickle, no marshal); each cache turns its plain data
  into its own values with explicit functions.
- **Stamps.** An answer is kept with the stamps of the files it was computed from (size,
  modification and change times, inode: :func:`file_stamp`) and holds while they are
  as they were.
- **Settled.** A file whose modification or change time lies less than
  :data:`SETTLED_NS` before the work that read it began is not trusted to a stash
  (:func:`is_settled`): a second change within the file system's time resolution could
  leave its stamp as it was.
- **Private.** A stash file is read only when it is a regular file owned by the user
  jetforge runs as and not writable by group or others, in a directory of which the same
  holds; otherwise it counts as absent, as a damaged one does. So a file another user
  left (under ``sudo -E``, the invoking user's cache) is never read, and never
  overwritten: writes go only into such a directory (missing ones are made with mode
  0700, and an own directory that group or others may write is made private first), as
  mode 0600 files replaced atomically (:func:`jetforge.host.files.write_atomic`). A stash that
  cannot be written is left as it was: the next run does the work again, slower, never
  wrong.

jetforge's own records (the state directory: inventories and SBOMs, see
:mod:`jetforge.ops.lockstep`) are read and written with the same private rule
(:func:`read_private`, :func:`write_private`).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# What a file was when it was read: size, modification and change times, inode. A file
# changed since has another (its change time moves on whatever the edit).
FileStamp = tuple[int, int, int, int]
SETTLED_NS = 1_000_000_000  # how long a file must be unchanged before a stash trusts it
LIMIT = 256 * 1024 * 1024  # a stash file larger than this is not read
_SHARED = stat.S_IWGRP | stat.S_IWOTH


def file_stamp(path: str | os.PathLike[str]) -> FileStamp | None:
    """``path``'s stamp, following links; None when it does not exist."""
    try:
        return stat_stamp(os.stat(path))  # noqa: PTH116 - once per file of a tree: no Path objects
    except OSError:
        return None


def stat_stamp(found: os.stat_result) -> FileStamp:
    """The stamp of a file whose ``stat`` (or ``lstat``) is ``found``."""
    return (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino)


def is_settled(stamp: Sequence[int] | None, since: int) -> bool:
    """Whether a file with ``stamp`` (None: missing) may be trusted to a stash by work
    that began at ``since`` (``time.time_ns()``): unchanged for :data:`SETTLED_NS` then."""
    return stamp is None or max(stamp[1], stamp[2]) < since - SETTLED_NS


def is_private(found: os.stat_result) -> bool:
    """Whether a file or directory with ``stat`` ``found`` belongs to this process's user
    and no one else may write it."""
    return found.st_uid == os.geteuid() and not found.st_mode & _SHARED


def read_private(path: Path, limit: int = LIMIT) -> bytes | None:
    """The bytes of the private regular file ``path`` in a private directory (see the
    module's rules), at most ``limit`` of them; None when it is missing, not private, not
    a regular file (a link included), larger than ``limit`` or unreadable."""
    try:
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not is_private(os.fstat(directory)):
            return None
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
        descriptor = os.open(path.name, flags, dir_fd=directory)
    except OSError:
        return None
    finally:
        os.close(directory)
    found = os.fstat(descriptor)
    if not stat.S_ISREG(found.st_mode) or not is_private(found) or found.st_size > limit:
        os.close(descriptor)
        return None
    with os.fdopen(descriptor, "rb") as handle:
        try:
            # as much as fstat said, and one byte more: a read of the whole limit would
            # make a buffer of that size first (a millisecond for a warm run's index)
            wanted = found.st_size + 1
            data = handle.read(wanted)
            if len(data) == wanted:  # it grew since: read on, to the limit
                data += handle.read(max(0, limit + 1 - wanted))
        except OSError:
            return None
    return data if len(data) <= limit else None


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` atomically by a file holding ``data``, mode 0600 unless ``mode``
    says otherwise (0644 for a file an image must let every user read), in a private
    directory (made when missing); raises :class:`OSError` when it cannot, a directory
    that is not this user's included (:class:`PermissionError`)."""
    from jetforge.host.files import write_atomic  # here, not at the top: start-up time

    make_private_dir(path.parent)
    write_atomic(path, data, mode=mode)


def make_private_dir(directory: Path) -> None:
    """Make ``directory`` (and its missing parents) with mode 0700, or make an existing
    one of this user's private; :class:`PermissionError` when it is another user's.

    Root makes none inside another user's directory (``sudo -E`` keeps the invoking
    user's ``HOME``: a directory of root's there would lock that user out of it)."""
    missing: list[Path] = []
    for parent in (directory, *directory.parents):
        if parent.is_dir():
            if missing and os.geteuid() == 0 and parent.stat().st_uid != 0:
                raise PermissionError(f"{parent} belongs to another user")
            break
        missing.append(parent)
    for parent in reversed(missing):
        with contextlib.suppress(FileExistsError):
            parent.mkdir(mode=0o700)
    found = directory.stat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid():
        raise PermissionError(f"{directory} is not a directory of this user's")
    if found.st_mode & _SHARED:
        directory.chmod(stat.S_IMODE(found.st_mode) & ~_SHARED)


def read_stash_parts(path: Path | None) -> list[bytes] | None:
    """The parts of the stash file ``path`` (None: none kept), each the JSON text of one
    value (:func:`load` decodes it); None when it is missing or not private."""
    if path is None:
        return None
    data = read_private(path)
    return None if data is None else data.split(b"\n")


def read_stash_views(path: Path | None, first: int) -> list[memoryview] | None:
    """The first ``first`` parts of the stash file ``path`` and, when there is more, the
    rest of it (parts joined by newlines) as one: views of the file's bytes, so that a
    part is copied only when it is decoded (a warm run decodes a tenth of its index).
    None as :func:`read_stash_parts`."""
    data = None if path is None else read_private(path)
    if data is None:
        return None
    view, start = memoryview(data), 0
    parts: list[memoryview] = []
    while len(parts) < first:
        end = data.find(b"\n", start)
        if end < 0:
            break
        parts.append(view[start:end])
        start = end + 1
    parts.append(view[start:])
    return parts


def read_stash(path: Path | None) -> Any:
    """The value of the one-part stash file ``path`` (None: none kept); None when it is
    missing, damaged, not private or not JSON."""
    parts = read_stash_parts(path)
    if parts is None or len(parts) != 1:
        return None
    try:
        return load(parts[0])
    except ValueError:
        return None


def dump(value: object) -> bytes:
    """``value`` (plain data) as one part: JSON text on one line. Raises
    :class:`ValueError` or :class:`TypeError` for anything else."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")


def load(part: bytes | memoryview) -> Any:
    """The value of one part (:func:`dump`); :class:`ValueError` when it is damaged."""
    return json.loads(part if isinstance(part, bytes) else bytes(part))


def write_stash_parts(path: Path | None, parts: Sequence[bytes | memoryview]) -> bool:
    """Keep ``parts`` (each made by :func:`dump`) in the stash file ``path``; whether it
    was written (a failure keeps the old file)."""
    if path is None:
        return False
    try:
        write_private(path, b"\n".join(parts))
    except OSError:
        return False
    return True


def write_stash(path: Path | None, value: object) -> bool:
    """Keep ``value`` (plain data) as the one part of the stash file ``path``; whether it
    was written (a failure keeps the old file)."""
    try:
        part = dump(value)
    except (ValueError, TypeError):
        return False
    return write_stash_parts(path, [part])


def key_text(value: object) -> str:
    """The text a stash compares a question by (the search directories, the platform …):
    the canonical JSON of ``value``, with values that are not plain data (the platform) by
    their ``repr``, which their frozen dataclasses make exact."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
