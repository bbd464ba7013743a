"""The standard streams as a command writes to them: every line a command prints goes
through one of these two, so that a reader that went away, a full device or a closed
descriptor is one error line and exit 1 (results), or silence (diagnostics), never a
traceback."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys

from jetforge.errors import OutputError

TYPE_CHECKING = False  # typing's own, without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import TextIO

_CLOSED = (errno.EBADF, errno.EINVAL)  # EINVAL: a descriptor opened for reading only


class _Guarded:
    """The part of :class:`typing.TextIO` a command uses (``write``, ``flush``,
    ``isatty``, ``fileno``, ``encoding``), over a stream that may be ``None`` (Python
    starts with ``sys.stdout`` None when descriptor 1 is closed) or may fail."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    @property
    def encoding(self) -> str:
        """The underlying stream's encoding (UTF-8 when there is none)."""
        return getattr(self.stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:
        """The underlying stream's error handler."""
        return getattr(self.stream, "errors", None) or "strict"

    def isatty(self) -> bool:
        """Whether it is a terminal (never, when it is closed or broken)."""
        try:
            return self.stream is not None and self.stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        """The underlying descriptor; OSError when there is none."""
        if self.stream is None:
            raise OSError(errno.EBADF, "closed")
        return self.stream.fileno()

    def writable(self) -> bool:
        """Always: a failed write is reported by the write."""
        return True

    def write(self, text: str) -> int:
        """Write ``text``; a failure is :meth:`failed`'s."""
        try:
            if self.stream is None:
                raise OSError(errno.EBADF, "closed")
            return self.stream.write(text)
        except (OSError, ValueError) as error:
            self.failed(error)
            return len(text)

    def flush(self) -> None:
        """Flush the underlying stream; a failure is :meth:`failed`'s."""
        try:
            if self.stream is not None:
                self.stream.flush()
        except (OSError, ValueError) as error:
            self.failed(error)

    def failed(self, error: OSError | ValueError) -> None:
        """What a failed write or flush does."""
        raise NotImplementedError

    def silence(self) -> None:
        """Point the descriptor at /dev/null, so that what is still buffered goes nowhere
        when Python flushes it at exit, instead of failing again there."""
        try:
            descriptor = self.fileno()
            os.fstat(descriptor)
        except (OSError, ValueError):
            return
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, descriptor)
        os.close(null)


# What a terminal would act on rather than show (C0 controls but tab and newline, DEL,
# C1 controls) and the bidirectional overrides and isolates, which reorder what follows:
# text from a package tree (a description, a name) carries them to no end.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with every control character a terminal acts on written as ``\\xNN``
    (``\\uNNNN`` beyond Latin-1)."""
    return _CONTROL.sub(_escaped, text)


def _escaped(found: re.Match[str]) -> str:
    code = ord(found[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class _Results(_Guarded):
    """Standard output: a command's results, never a terminal's control sequence."""

    def write(self, text: str) -> int:
        """Write ``text`` with its control characters escaped (:func:`escape_controls`)."""
        super().write(escape_controls(text))
        return len(text)

    def failed(self, error: OSError | ValueError) -> None:
        if isinstance(error, BrokenPipeError):
            raise error  # the reader went away (`jetforge list | head`): quietly exit 1
        if isinstance(error, ValueError) or error.errno in _CLOSED:
            raise OutputError("it is closed") from None
        raise OutputError(error.strerror or str(error)) from None


class _Diagnostics(_Guarded):
    def failed(self, error: OSError | ValueError) -> None:
        """Nothing: a diagnostic that cannot be written has nowhere else to go."""


def results(stream: TextIO | None) -> TextIO:
    """Standard output for a command's results: a write or flush that fails raises
    :class:`OutputError` (or :class:`BrokenPipeError` when the reader went away)."""
    return _Results(stream)  # type: ignore[return-value]  # a TextIO by what it does


def diagnostics(stream: TextIO | None) -> TextIO:
    """Standard error for a command's diagnostics: a write that fails is dropped."""
    return _Diagnostics(stream)  # type: ignore[return-value]  # a TextIO by what it does


def silence(stream: TextIO) -> None:
    """After a failed write: send what is still buffered in ``stream`` to /dev/null."""
    if isinstance(stream, _Guarded):
        stream.silence()
        return
    with contextlib.suppress(OSError, ValueError):
        _Results(stream).silence()


def reserve_standard_descriptors() -> None:
    """Open /dev/null on any of descriptors 0, 1 and 2 that is closed, so that no file
    or socket jetforge opens later takes its number (and a child process writes its
    output there). Python has already made the stream itself None: a result written to a
    closed standard output is still an error, while a closed standard input or error gets
    a stream of /dev/null, since ``print(file=sys.stderr)`` with ``sys.stderr`` None
    writes to standard output (a warning among the results)."""
    for number in (0, 1, 2):
        try:
            os.fstat(number)
        except OSError:
            null = os.open(os.devnull, os.O_RDONLY if number == 0 else os.O_WRONLY)
            if null != number:
                os.dup2(null, number)
                os.close(null)
    for name, number, mode in (("stdin", 0, "r"), ("stderr", 2, "w")):
        if getattr(sys, name) is None:
            stream = open(number, mode, encoding="utf-8", closefd=False)  # noqa: SIM115
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)
