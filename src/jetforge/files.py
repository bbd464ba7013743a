"""Reading and writing the files jetforge keeps or is given, safely.

Every file jetforge reads that a user, another machine or another process may have put
there (lockfiles, SBOMs, bundle manifests, index and cache files) is read with
:func:`read_regular`: only a regular file, never more than a bound, so a FIFO, a device or
a huge file is one clear error instead of a hang or an exhausted memory. Every file
jetforge writes as a whole goes through :func:`write_atomic`: a reader sees the old
content or the new, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from jetforge.errors import UsageError

MIB = 1024 * 1024


class UnreadableFileError(UsageError):
    """A file jetforge was asked to read is not a regular file, is too large, or cannot be
    read; ``what`` says what it should have been (``lockfile``, ``bundle manifest``)."""

    def __init__(self, path: Path | str, what: str, problem: str) -> None:
        super().__init__(problem)
        self.path = Path(path)
        self.what = what
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem} (expected a {self.what})"


def open_regular(path: Path | str, what: str) -> BinaryIO:
    """The regular file at ``path`` (a symlink to one is followed), open for reading in
    binary. A FIFO, a device, a directory or a file that cannot be opened raises
    :class:`UnreadableFileError` naming ``what`` it should be; for a file too large to
    read at once (a bundle), where :func:`read_regular` does not fit.

    The file is opened without blocking (a FIFO with no writer would block the open) and
    checked on the open descriptor, so it cannot be swapped between check and read."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise UnreadableFileError(path, what, error.strerror or str(error)) from None
    kind = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(kind):
        os.close(descriptor)
        raise UnreadableFileError(path, what, f"is {_kind(kind)}, not a regular file")
    return os.fdopen(descriptor, "rb")


def check_regular_or_absent(path: Path, what: str) -> None:
    """Nothing when ``path`` is a regular file (a link to one followed) or is not there
    (about to be created); else :class:`UnreadableFileError`. For a file jetforge
    appends to or hands to a child process, which would block on a FIFO."""
    try:
        kind = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise UnreadableFileError(path, what, error.strerror or str(error)) from None
    if not stat.S_ISREG(kind):
        raise UnreadableFileError(path, what, f"is {_kind(kind)}, not a regular file")


def read_regular(path: Path | str, what: str, limit: int = 64 * MIB) -> bytes:
    """The bytes of the regular file at ``path`` (a symlink to one is followed), at most
    ``limit`` of them. A FIFO, a device, a directory, a file larger than ``limit`` or one
    that cannot be opened raises :class:`UnreadableFileError` naming ``what`` it should be
    (see :func:`open_regular`)."""
    with open_regular(path, what) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as error:
            raise UnreadableFileError(path, what, error.strerror or str(error)) from None
    if len(data) > limit:
        raise UnreadableFileError(path, what, f"is larger than {_size(limit)}")
    return data


def read_regular_text(path: Path | str, what: str, limit: int = 64 * MIB) -> str:
    """:func:`read_regular` decoded as UTF-8; bytes that are not UTF-8 are one error."""
    data = read_regular(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        problem = f"is not UTF-8 text (byte {error.start})"
        raise UnreadableFileError(path, what, problem) from None


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` by a file holding ``data`` (with permission bits ``mode``) in one
    step: written to a temporary file beside it, flushed, then renamed over it. On any
    error the temporary file is removed and ``path`` is left as it was."""
    import tempfile  # here, not at the top: start-up time of the commands that only read

    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), mode)
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise


def writing_problem(directory: Path) -> OSError | None:
    """Why nothing can be written in ``directory`` (created, private to its owner, when
    missing): it cannot be created, is read-only or not ours, or its device is full; None
    when a small file can be written there. The probe is written and removed."""
    probe = directory / f".jetforge-probe-{os.getpid()}"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(descriptor, b"\n")
        finally:
            os.close(descriptor)
            probe.unlink()
    except OSError as error:
        return error
    return None


def is_disk_full(error: OSError) -> bool:
    """Whether ``error`` says the device has no space (or quota) left."""
    return error.errno in (errno.ENOSPC, errno.EDQUOT)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit >= MIB else f"{limit} bytes"
