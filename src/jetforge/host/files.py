"""Reading and writing the files jetforge keeps or is given, safely.

Every file jetforge reads that a user, another machine or another process may have put
there (lockfiles, SBOMs, bundle manifests, index and cache files) is read with
:func:`read_regular`: only a regular file, never more than a bound, so a FIFO, a device or
a huge file is one clear error instead of a hang or an exhausted memory. Every file
jetforge writes as a whole goes through :func:`write_atomic` (:func:`atomic_output` to
stream it): a reader sees the old content or the new, never half of one, and an error
names the file being written. Every path the user names for output (``--lock FILE``,
``cache export FILE``, what ``bake --output DIR`` and ``docs --output`` write) is written
with :func:`named_output` (:func:`write_named` for bytes), which checks it before any work
and never puts a file where a device node, a FIFO or a directory was.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from jetforge.errors import UsageError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

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
        raise UnreadableFileError(path, what, f"is {file_kind(kind)}, not a regular file")
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
        raise UnreadableFileError(path, what, f"is {file_kind(kind)}, not a regular file")


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
    error the temporary file is removed and ``path`` is left as it was; an
    :class:`OSError` names ``path`` (its ``filename``), whatever step failed."""
    with atomic_output(path, mode) as out:
        out.write(data)


@contextlib.contextmanager
def atomic_output(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file whose content replaces ``path`` (with permission bits ``mode``) in
    one step when the block ends without an error, as :func:`write_atomic` does: until
    then it is a temporary file beside ``path``, removed on any error. An
    :class:`OSError` of creating, writing, flushing or renaming it names ``path``, so a
    full device is reported for the file being written, not for whatever the caller was
    doing."""
    import tempfile  # here, not at the top: start-up time of the commands that only read

    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise _naming(error, path) from None
    try:
        with _writer(handle, path) as out:
            yield out
            out.flush()
            try:
                os.fchmod(handle, mode)
            except OSError as error:
                raise _naming(error, path) from None
        try:
            Path(temporary).replace(path)
        except OSError as error:
            raise _naming(error, path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise


class _NamedFile(io.FileIO):
    """A file descriptor whose write errors name the file jetforge means to write (the
    temporary file it writes is an implementation detail)."""

    def __init__(self, descriptor: int, shown: Path) -> None:
        super().__init__(descriptor, "wb", closefd=True)
        self.shown = shown

    def write(self, data: ReadableBuffer) -> int:
        try:
            return super().write(data)
        except OSError as error:
            raise _naming(error, self.shown) from None

    def close(self) -> None:
        try:
            super().close()
        except OSError as error:
            raise _naming(error, self.shown) from None


def _writer(descriptor: int, shown: Path) -> BinaryIO:
    """A buffered binary file over ``descriptor`` whose errors name ``shown``."""
    return io.BufferedWriter(_NamedFile(descriptor, shown))


def _naming(error: OSError, path: Path) -> OSError:
    """``error`` naming ``path`` (a new error of the same class, errno and text)."""
    if error.errno is None:
        return error
    return type(error)(error.errno, error.strerror, str(path))


@contextlib.contextmanager
def held(path: Path, on_wait: Callable[[str], None], poll: float = 0.2) -> Iterator[None]:
    """Hold the lock file ``path`` (``flock``, so it is let go however the process ends)
    while the block runs. When another process holds it, ``on_wait`` is told once (with
    that process's id) and the lock is tried again every ``poll`` seconds, so Ctrl-C stops
    the wait.

    The lock file is jetforge's own, under its cache directory: only a regular file is
    held, opened without following a link and without blocking; anything else there (a
    FIFO, a device, a directory, a symlink) is an :class:`UnwritableFileError` naming it
    and the fix, and is left as it is."""
    descriptor = _open_lock(path)
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


def _open_lock(path: Path) -> int:
    """The descriptor of the regular lock file ``path`` (made when missing)."""
    fix = "remove it and run again: jetforge makes a new one"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        found = path.lstat()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise UnwritableFileError(path, "build lock", f"{error.strerror or error}") from None
    else:
        if not stat.S_ISREG(found.st_mode):
            link = stat.S_ISLNK(found.st_mode)
            kind = "a symbolic link" if link else file_kind(found.st_mode)
            problem = f"is {kind}, not a regular file (jetforge's build lock; {fix})"
            raise UnwritableFileError(path, "build lock", problem)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags, 0o600)
    except OSError as error:  # swapped since the look: a link, a directory
        problem = f"cannot open it ({error.strerror or error}; jetforge's build lock; {fix})"
        raise UnwritableFileError(path, "build lock", problem) from None
    opened = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(opened):
        os.close(descriptor)
        problem = f"is {file_kind(opened)}, not a regular file (jetforge's build lock; {fix})"
        raise UnwritableFileError(path, "build lock", problem)
    return descriptor


class UnwritableFileError(UsageError):
    """A path jetforge was asked to write ``what`` to (``--lock FILE``) cannot take it."""

    def __init__(self, path: Path | str, what: str, problem: str) -> None:
        super().__init__(problem)
        self.path = Path(path)
        self.what = what
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def check_writable(path: Path, what: str, *, through: bool = True, parents: bool = False) -> None:
    """Refuse, before any work, a ``path`` that :func:`named_output` cannot write ``what``
    to: a directory, a device other than ``/dev/null``, a socket, a file in a missing or
    read-only directory (without ``through``: anything but a regular file or none).

    With ``parents``, its missing directories are to be made first (``mkdir -p``): the
    nearest one above it that exists must be a directory jetforge can write in."""
    if parents and not os.path.lexists(path.parent):
        _check_ancestor(path, what)
        return
    _destination(path, what, through)


def _check_ancestor(path: Path, what: str) -> None:
    """Refuse ``path`` when the nearest entry above it that exists is not a directory, or
    one that jetforge cannot make directories in."""
    ancestor = path.parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        problem = f"cannot make its directory ({ancestor} is not a directory)"
        raise UnwritableFileError(path, what, problem)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        problem = f"cannot make its directory ({ancestor} is read-only)"
        raise UnwritableFileError(path, what, problem)


def write_named(path: Path, data: bytes, what: str, *, through: bool = True) -> None:
    """Write ``data`` to ``path``, a file the user named (:func:`named_output`)."""
    with named_output(path, what, through=through) as out:
        out.write(data)


@contextlib.contextmanager
def named_output(
    path: Path, what: str, *, through: bool = True, mode: int | None = None
) -> Iterator[BinaryIO]:
    """A binary file to write ``what`` into at ``path``, a path the user named (``--lock
    FILE``, ``cache export FILE``, ``--output``): the one way jetforge writes there.

    A regular file (or none yet) is replaced whole when the block ends without an error
    (:func:`atomic_output`: until then a temporary file beside it; it keeps its
    permission bits, or takes ``mode``), through a symlink its target, so the link stays.
    With ``through``, ``/dev/null`` and a FIFO that someone reads are written through.
    Anything else is an :class:`UnwritableFileError` raised on entering, before the
    block does any work, and is left as it is: a device node is never replaced by a
    file, a FIFO nobody reads never blocks. An :class:`OSError` while writing names
    ``path``."""
    target, existing = _destination(path, what, through)
    if existing is None or stat.S_ISREG(existing.st_mode):
        kept = stat.S_IMODE(existing.st_mode) if existing is not None else 0o644
        with atomic_output(target, kept if mode is None else mode) as out:
            yield out
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
        raise UnwritableFileError(path, what, f"is {file_kind(opened.st_mode)}{_VALID}")
    os.set_blocking(descriptor, True)
    with _writer(descriptor, path) as out:
        yield out


_VALID = " (name a regular file, a symlink to one, a FIFO or /dev/null)"
_REGULAR = " (name a regular file, a symlink to one, or a new file)"


def _destination(path: Path, what: str, through: bool) -> tuple[Path, os.stat_result | None]:
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
    if not through:
        raise UnwritableFileError(path, what, f"is {file_kind(existing.st_mode)}{_REGULAR}")
    if not (stat.S_ISFIFO(existing.st_mode) or _is_null(existing)):
        raise UnwritableFileError(path, what, f"is {file_kind(existing.st_mode)}{_VALID}")
    if not os.access(path, os.W_OK):
        raise UnwritableFileError(path, what, "cannot write it (permission denied)")
    return path, existing


def check_only_files(directory: Path, what: str, depth: int = 2) -> None:
    """Refuse a ``directory`` the user named, that jetforge writes files of its own into
    (``--logs DIR``), when an entry down to ``depth`` levels is neither a regular file nor
    a directory (a link is followed): writing there would block on a FIFO, fill a device
    or replace it. :class:`UnwritableFileError` names the first such entry."""
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as error:
        raise UnwritableFileError(directory, what, error.strerror or str(error)) from None
    for entry in entries:
        path = Path(entry.path)
        try:
            kind = path.stat().st_mode
        except OSError as error:
            raise UnwritableFileError(path, what, error.strerror or str(error)) from None
        if stat.S_ISDIR(kind) and depth > 1 and not entry.is_symlink():
            check_only_files(path, what, depth - 1)
        elif not (stat.S_ISREG(kind) or stat.S_ISDIR(kind)):
            problem = (
                f"is {file_kind(kind)}, not a regular file (remove it, or name another {what})"
            )
            raise UnwritableFileError(path, what, problem)


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


def file_kind(mode: int) -> str:
    """What a file of ``mode`` is, for messages: ``a FIFO``, ``a character device`` …"""
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
