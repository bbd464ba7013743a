"""The command server's client: hands a read-only command to the server of this process's
context (:mod:`jetforge.server`) and stands for the process that runs it: it forwards
Ctrl-C, termination, hang-up and job-control signals, dies by a signal that killed it,
and exits with its exit code. It also holds what both sides share (the protocol, the
process context, where sockets live). Every ``jetforge`` imports it first, so it imports
nothing heavy (no typing, contextlib or pathlib)."""

from __future__ import annotations

import marshal
import os
import signal
import socket
import struct
import sys
import zlib
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

VARIABLE = "JETFORGE_NO_SERVER"
DIRECTORY_VARIABLE = "JETFORGE_SERVER_DIR"
READ_ONLY = frozenset({"list", "show", "graph", "explain", "platform"})
BUILD_READ_ONLY = frozenset({"--simulate", "--dry-run", "--list-packages", "--show-packages"})
NOT_SERVED = -1  # what :func:`jetforge.cli.main.main` returns for a command it must not serve
LENGTH = struct.Struct("!I")
REPLY = struct.Struct("!ci")
# Replies: b"P" pid (the command's process is ready), b"X" code (it ended), b"R" (run it
# yourself), b"S" (a stale server: run it yourself and start a new one). The client
# answers b"P" with b"G" (go): a process whose client went away runs nothing.
SOCKET_PATH_MAX = 107
_NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")
_STATUS_FIELDS = ("NoNewPrivs:", "Seccomp:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:")
_UNSHARED_VARIABLES = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")  # applied per command
READY_TIMEOUT_S = 5.0  # a server that does not fork within this is not waited for
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
Handler = Callable[[int, FrameType | None], object] | int | None


def is_read_only(argv: Sequence[str]) -> bool:
    """Whether ``argv`` names a command the server may run (by its words; the server
    checks the parsed arguments again)."""
    command = next((word for word in argv if not word.startswith("-")), None)
    if command == "build":
        return any(word in BUILD_READ_ONLY for word in argv)
    return command in READ_ONLY


def server_directory(env: Mapping[str, str]) -> str | None:
    """The private directory of this user's server sockets, or None when there is none
    that is safe (it exists with another owner, or others may enter it)."""
    base = os.path.abspath(
        env.get(DIRECTORY_VARIABLE)
        or os.path.join(env.get("XDG_RUNTIME_DIR") or "/tmp", f"jetforge-{os.getuid()}")
    )
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
        found = os.lstat(base)
    except OSError:
        return None
    if found.st_uid != os.getuid() or found.st_mode & 0o077 or not os.path.isdir(base):
        return None
    return base


def process_context(env: Mapping[str, str]) -> str:
    """What a command's process inherits besides its arguments, streams, directory,
    umask and environment, and what the interpreter made of its own variables: two
    processes with the same context run a command alike."""
    parts = [
        sys.executable,
        os.path.dirname(os.path.abspath(__file__)),
        f"{os.getuid()}:{os.getgid()}:{sorted(os.getgroups())}",
        repr(os.stat("/")[1:3]),  # a chroot has another root
    ]
    for name in _NAMESPACES:
        try:
            parts.append(os.readlink(f"/proc/self/ns/{name}"))
        except OSError:
            parts.append("")
    parts += [_read(f"/proc/self/{name}") for name in ("cgroup", "attr/current", "limits")]
    status = _read("/proc/self/status").splitlines()
    parts += [line for line in status if line.startswith(_STATUS_FIELDS)]
    parts += sorted(
        f"{key}={value}"
        for key, value in env.items()
        if (key.startswith(("PYTHON", "LC_")) or key in ("LANG", "LANGUAGE"))
        and key not in _UNSHARED_VARIABLES
    )
    return "\n".join(parts)


def socket_path(directory: str, context: str) -> str:
    """The path (without suffix) of the server for ``context`` in ``directory``."""
    return os.path.join(directory, f"s-{zlib.crc32(context.encode()):08x}")


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read()
    except OSError:
        return ""


def peer_uid(connection: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int(struct.unpack("3i", credentials)[1])


def receive(connection: socket.socket, size: int) -> bytes | None:
    """Exactly ``size`` bytes, or None when the other side closed first."""
    data = b""
    while len(data) < size:
        try:
            chunk = connection.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


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
        try:  # the command ran: whatever happens now, it does not run here again
            print(
                "jetforge: internal error: the command's process ended unexpectedly",
                file=sys.stderr,
            )
        except OSError:
            pass
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
        try:
            os.kill(self.pid, number)
        except OSError:  # it has ended already
            pass


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
