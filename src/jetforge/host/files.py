"""Reading and writing the files jetforge keeps or is given, safely.

Every file jetforge reads that a user, another machine or another process may have put
there (lockfiles, SBOMs, bundle manifests, index and cache files) is read with
:func:`read_regular`: only a regular file, never more than a bound, so a FIFO, a device or
a huge file is one clear error instead of a hang or an exhausted memory. Every file
jetforge writes as a whole goes through :func:`write_atomic`: a reader sees the old
content or the new, never half of one. A path the user names for output (``--lock FILE``)
is written with :func:`write_named`, which never puts a file where a device node was.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def held(path: Path, on_wait: Callable[[str], None], poll: float = 0.2) -> Iterator[None]:
    """Hold the lock file ``path`` (``flock``, so it is let go however the process ends)
    while the block runs. When another process holds it, ``on_wait`` is told once (with
    that process's id) and the lock is tried again every ``poll`` seconds, so Ctrl-C stops
    the wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        told = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
                    on_wait(holder or "another process")
                    told = True
                time.sleep(poll)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)


class UnwritableFileError(UsageError):
    """A path jetforge was asked to write ``what`` to (``--lock FILE``) cannot take it."""

    def __init__(self, path: Path | str, what: str, problem: str) -> None:
        super().__init__(problem)
        self.path = Path(path)
        self.what = what
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def check_writable(path: Path, what: str) -> None:
    """Refuse, before any work, a ``path`` that :func:`write_named` cannot write ``what``
    to: a directory, a device other than ``/dev/null``, a socket, a file in a missing or
    read-only directory."""
    _destination(path, what)


def write_named(path: Path, data: bytes, what: str) -> None:
    """Write ``data`` to ``path``, a file the user named: a regular file (or none yet) is
    replaced whole (:func:`write_atomic`, keeping its permission bits), through a symlink
    its target, so the link stays; ``/dev/null`` and a FIFO that someone reads are written
    through; anything else is an :class:`UnwritableFileError` and is left as it is (a
    device node is never replaced by a file)."""
    target, existing = _destination(path, what)
    if existing is None or stat.S_ISREG(existing.st_mode):
        kept = stat.S_IMODE(existing.st_mode) if existing is not None else 0o644
        write_atomic(target, data, kept)
        return
    try:  # without O_NONBLOCK, opening a FIFO that nobody reads would wait forever
        descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        nobody = error.errno == errno.ENXIO
        raise UnwritableFileError(
            path, what, "is a FIFO that nobody reads" if nobody else error.strerror or str(error)
        ) from None
    opened = os.fstat(descriptor)
    if not (stat.S_ISFIFO(opened.st_mode) or _is_null(opened)):  # swapped since the check
        os.close(descriptor)
        raise UnwritableFileError(path, what, f"is {_kind(opened.st_mode)}{_VALID}")
    os.set_blocking(descriptor, True)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)


_VALID = " (name a regular file, a symlink to one, a FIFO or /dev/null)"


def _destination(path: Path, what: str) -> tuple[Path, os.stat_result | None]:
    """Where writing ``path`` goes (a symlink's target for a regular file or a new one,
    else ``path``) and what is there now (None: nothing)."""
    try:
        existing: os.stat_result | None = path.stat()
    except FileNotFoundError:
        existing = None
    except OSError as error:
        raise UnwritableFileError(path, what, error.strerror or str(error)) from None
    if existing is None or stat.S_ISREG(existing.st_mode):
        target = Path(os.path.realpath(path))
        if (
            not target.parent.is_dir()
            or not os.access(target.parent, os.W_OK | os.X_OK)
            or (existing is not None and not os.access(target, os.W_OK))
        ):
            problem = "cannot write it (its directory is missing or read-only)"
            raise UnwritableFileError(path, what, problem)
        return target, existing
    if stat.S_ISDIR(existing.st_mode):
        raise UnwritableFileError(path, what, "is a directory (name a file)")
    if not (stat.S_ISFIFO(existing.st_mode) or _is_null(existing)):
        raise UnwritableFileError(path, what, f"is {_kind(existing.st_mode)}{_VALID}")
    if not os.access(path, os.W_OK):
        raise UnwritableFileError(path, what, "cannot write it (permission denied)")
    return path, existing


def _is_null(found: os.stat_result) -> bool:
    """Whether ``found`` is the null device (``/dev/null`` or a node of the same device)."""
    return stat.S_ISCHR(found.st_mode) and found.st_rdev == Path(os.devnull).stat().st_rdev


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
