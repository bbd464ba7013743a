"""The command server's client: hands a read-only command to the server of this process's
context (:mod:`jetforge.server`) and stands for the process that runs it: it forwards
Ctrl-C, termination, hang-up and job-control signals, dies by a signal that killed it,
and exits with its exit code. Imports nothing heavy: every ``jetforge`` runs it first."""

from __future__ import annotations

import contextlib
import marshal
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

from jetforge.server import (
    LENGTH,
    REPLY,
    SOCKET_PATH_MAX,
    VARIABLE,
    is_read_only,
    peer_uid,
    process_context,
    receive,
    server_directory,
    socket_path,
)

READY_TIMEOUT_S = 5.0  # a server that does not fork within this is not waited for
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
Handler = Callable[[int, FrameType | None], object] | int | None


def run_through_server(argv: Sequence[str]) -> int | None:
    """Run ``argv`` in the server and return its exit code; None when this process must
    run it itself (no server yet: one is started; a stale one; a command not served)."""
    env = os.environ
    if env.get(VARIABLE, "") not in ("", "0") or not is_read_only(argv) or not _plain():
        return None
    found = server_path(env)
    if found is None or not _streams_open():
        return None
    path, context = found
    try:
        cwd = os.getcwd()
    except OSError:  # a deleted working directory: run here, and fail as such
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with client:
        try:
            client.connect(path + ".sock")
            if peer_uid(client) != os.getuid():  # someone else's socket: not ours to use
                return None
        except OSError:
            _start_server(path)
            return None
        return _converse(client, argv, cwd, context, path)


def server_path(env: Mapping[str, str]) -> tuple[str, str] | None:
    """The path (without suffix) of the server for this process and ``env``, and its
    context; None where there can be none (no safe directory, or too long a path)."""
    directory = server_directory(env)
    if directory is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    context = process_context(env)
    path = socket_path(directory, context)
    return None if len(path) + len(".sock") > SOCKET_PATH_MAX else (path, context)


def _plain() -> bool:
    """Whether the interpreter runs with no options of its own (a server has none)."""
    given = getattr(sys, "orig_argv", [])[1:]
    return bool(given) and (given[0] == "-m" or not given[0].startswith("-"))


def _streams_open() -> bool:
    """Whether descriptors 0, 1 and 2 are open (else a socket could take their number)."""
    try:
        for number in (0, 1, 2):
            os.fstat(number)
    except OSError:
        return False
    return True


def _converse(
    client: socket.socket, argv: Sequence[str], cwd: str, context: str, path: str
) -> int | None:
    umask = os.umask(0)
    os.umask(umask)
    streams = (sys.stdin, sys.stdout, sys.stderr)
    encodings = [(s.encoding, s.errors) if s is not None else None for s in streams]
    request = marshal.dumps((list(argv), cwd, umask, dict(os.environ), encodings, context))
    data = LENGTH.pack(len(request)) + request
    forwarder = _Forwarder()
    try:
        client.settimeout(READY_TIMEOUT_S)
        sent = socket.send_fds(client, [data], [0, 1, 2])
        client.sendall(data[sent:])
        ready = receive(client, REPLY.size)
        if ready is None:
            return None
        kind, pid = REPLY.unpack(ready)
        if kind == b"S":
            _start_server(path)
        if kind != b"P":
            return None
        forwarder.start(pid)
        client.settimeout(None)
        client.sendall(b"G")
        ended = receive(client, REPLY.size)
    except KeyboardInterrupt:
        print("jetforge: interrupted; nothing that was built is lost", file=sys.stderr)
        return 130
    except OSError:  # the server went away before the command began: run it here
        return None
    finally:
        forwarder.stop()
    if ended is None:  # the command's process died: by a signal this one forwarded?
        if forwarder.last is not None:
            signal.signal(forwarder.last, signal.SIG_DFL)
            os.kill(os.getpid(), forwarder.last)
        print("jetforge: internal error: the command's process ended unexpectedly", file=sys.stderr)
        return 1
    kind, value = REPLY.unpack(ended)
    return int(value) if kind == b"X" else None


class _Forwarder:
    """Sends the command's process the signals this one receives (what this one ignores
    stays ignored); Ctrl-Z stops both, and continuing continues both."""

    def __init__(self) -> None:
        self.pid = 0
        self.last: int | None = None
        self.previous: dict[int, Handler] = {}

    def start(self, pid: int) -> None:
        self.pid = pid
        for number in _FORWARDED:
            if signal.getsignal(number) != signal.SIG_IGN:
                self.previous[number] = signal.signal(number, self.forward)
        if signal.getsignal(signal.SIGTSTP) != signal.SIG_IGN:
            self.previous[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, self.suspend)

    def stop(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    def forward(self, number: int, _frame: FrameType | None) -> None:
        self.last = number
        self._send(number)

    def suspend(self, _number: int, _frame: FrameType | None) -> None:
        self._send(signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stopped here until continued
        signal.signal(signal.SIGTSTP, self.suspend)
        self._send(signal.SIGCONT)

    def _send(self, number: int) -> None:
        with contextlib.suppress(OSError):  # it has ended already
            os.kill(self.pid, number)


def _start_server(path: str) -> None:
    """Start a server for ``path`` in the background (it gives way to one that runs)."""
    from pathlib import Path

    from jetforge._process import start_detached

    argv = [sys.executable, "-m", "jetforge.server", path]
    start_detached(argv, log=Path(path + ".log"), env=dict(os.environ))


def stop_server(path: str) -> bool:
    """Stop the server of ``path`` (SIGTERM); whether one was running. Only a server that
    holds its lock is signalled (a process id left in the file may be another's now)."""
    import fcntl

    try:
        with open(path + ".lock", encoding="ascii") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: a server runs, and its id is in the file
                lock.seek(0)
                os.kill(int(lock.read().strip()), signal.SIGTERM)
                return True
    except (OSError, ValueError):
        pass
    return False
