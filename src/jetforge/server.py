"""The command server: read-only commands answered by a resident process that has
jetforge imported already, so that a warm ``list`` costs little more than Python's start.

A read-only command (``list``, ``show``, ``graph``, ``explain``, ``platform``, ``build
--simulate``, ``--list-packages`` or ``--show-packages``) that finds no server starts one
in the background and runs as usual; later ones hand their arguments, working directory,
umask, environment and standard streams (the descriptors themselves) to it over a Unix
socket (:mod:`jetforge.server_client`). The server forks one process per command, which
runs it as a process of its own would: in the caller's directory, with its environment,
writing straight to its terminal or pipes. Nothing passes from one command to the next
but the imported modules and the index files read ahead (:func:`jetforge.index.read_ahead`):
every answer comes from the files, as in any run.

A server belongs to one user and one process context: the interpreter, jetforge's
directory, the user, group and supplementary groups, the namespaces, control groups,
security settings and resource limits, the root directory, and the interpreter's own
variables (``PYTHON*``, the locale's). A caller whose context differs reaches another
server (the context is part of the socket's name, and checked again by the server).
Each side checks the other's user id. A server exits when jetforge's files or the
directories of its dependencies changed (the command that notices runs on its own and
starts a new server), after ``IDLE_S`` seconds without a command, and on SIGTERM.
``JETFORGE_NO_SERVER=1`` runs every command in its own process.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import signal
import socket
import struct
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import IO

VARIABLE = "JETFORGE_NO_SERVER"
DIRECTORY_VARIABLE = "JETFORGE_SERVER_DIR"
IDLE_VARIABLE = "JETFORGE_SERVER_IDLE"
IDLE_S = 600.0
READ_ONLY = frozenset({"list", "show", "graph", "explain", "platform"})
BUILD_READ_ONLY = frozenset({"--simulate", "--dry-run", "--list-packages", "--show-packages"})
NOT_SERVED = -1  # what :func:`jetforge.cli.main.main` returns for a command it must not serve
LENGTH = struct.Struct("!I")
REPLY = struct.Struct("!ci")
# Replies: b"P" pid (the command's process is ready), b"X" code (it ended), b"R" (run it
# yourself), b"S" (a stale server: run it yourself and start a new one). The client
# answers b"P" with b"G" (go): a process whose client went away runs nothing.
SOCKET_PATH_MAX = 107
LOG_LIMIT = 1 << 20  # a server that starts with a longer log begins a new one
_NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")
_STATUS_FIELDS = ("NoNewPrivs:", "Seccomp:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:")
_UNSHARED_VARIABLES = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")  # applied per command


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
        with contextlib.suppress(OSError):
            parts.append(os.readlink(f"/proc/self/ns/{name}"))
    for path in ("/proc/self/cgroup", "/proc/self/attr/current"):
        with contextlib.suppress(OSError), open(path, encoding="ascii", errors="replace") as file:
            parts.append(file.read())
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        parts += [line for line in status if line.startswith(_STATUS_FIELDS)]
    with contextlib.suppress(OSError), open("/proc/self/limits", encoding="ascii") as limits:
        parts.append(limits.read())
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


def _dependency_stamp() -> list[object]:
    """jetforge's files, and the directories its dependencies are installed in (an
    install or removal changes them; the working directory the server started in, first
    on its path, is not one)."""
    from jetforge.index import code_stamp

    stamps: list[object] = list(code_stamp())
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")):
            with contextlib.suppress(OSError):
                found = os.stat(entry)
                stamps.append((entry, found.st_mtime_ns, found.st_ino))
    return stamps


def serve(path: str) -> None:
    """Serve commands on ``path``.sock until idle, stale or terminated."""
    import fcntl

    context = process_context(os.environ)
    if socket_path(os.path.dirname(path), context) != path:
        return  # started in another context than its client's (nothing to serve)

    os.closerange(3, 1 << 16)  # nothing of the process that started it stays open
    lock = open(path + ".lock", "a+", encoding="ascii")  # noqa: SIM115 - held while serving
    for _ in range(60):  # a stale server may be on its way out
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            time.sleep(0.05)
    else:
        return  # another server runs
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    with contextlib.suppress(OSError):
        if os.stat(path + ".log").st_size > LOG_LIMIT:
            os.truncate(path + ".log", 0)
    try:
        _serve(path, context, lock)
    finally:
        lock.truncate(0)
        lock.close()


def _serve(path: str, context: str, lock: IO[str]) -> None:
    stamp = _dependency_stamp()  # before importing: a change during the imports counts
    os.chdir("/")  # pins no directory
    _warm_up()
    try:
        idle = float(os.environ.get(IDLE_VARIABLE) or IDLE_S)
    except ValueError:
        idle = IDLE_S
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address = path + ".sock"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(address)
    listener.bind(address)
    listener.listen(64)
    bound = os.stat(address).st_ino
    reports, report = os.pipe()  # the command processes name the index files they read
    os.set_blocking(reports, False)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the command processes
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _log("serving")
    try:
        while True:
            ready, _, _ = select.select([listener.fileno(), reports], [], [], idle)
            if not ready:
                _log("idle; exiting")
                return
            if reports in ready:
                _read_ahead(reports)
            if listener.fileno() not in ready:
                continue
            connection, _ = listener.accept()
            if peer_uid(connection) != os.getuid():
                connection.close()
                continue
            if _dependency_stamp() != stamp:
                _reply(connection, b"S", 0)
                connection.close()
                _log("jetforge or its dependencies changed; exiting")
                return
            if os.fork() == 0:
                try:
                    listener.close()
                    lock.close()
                    os.close(reports)
                    _serve_one(connection, report, context)
                finally:
                    os._exit(1)
            connection.close()
    finally:
        if os.path.exists(address) and os.stat(address).st_ino == bound:
            os.unlink(address)


def _warm_up() -> None:
    """Import what the served commands use (and nothing that reads the user's files)."""
    import yaml

    import jetforge.reading
    from jetforge.cli.main import make_parser

    make_parser()
    del jetforge.reading, yaml


def _read_ahead(reports: int) -> None:
    """Read ahead the index files the command processes reported."""
    from jetforge.index import read_ahead

    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(reports, 65536):
            data += chunk
    for path in sorted(set(data.decode(errors="replace").split("\0")) - {""}):
        read_ahead(path)


def peer_uid(connection: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int(struct.unpack("3i", credentials)[1])


def _reply(connection: socket.socket, kind: bytes, value: int) -> None:
    with contextlib.suppress(OSError):  # the client is gone
        connection.sendall(REPLY.pack(kind, value))


def _log(message: str, log: int = 2) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    line = f"{stamp} jetforge server {os.getpid()}: {message}\n"
    with contextlib.suppress(OSError):
        os.write(log, line.encode(errors="replace"))


Request = tuple[list[str], str, int, dict[str, str], list[tuple[str, str] | None], str]


def _serve_one(connection: socket.socket, report: int, context: str) -> None:
    """In the forked process: become the client's command process, run it, report."""
    log = os.dup(2)  # the server's log, before the client's stderr takes descriptor 2
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        argv, cwd, umask, env, encodings, theirs = _receive_request(connection)
        if theirs != context:
            raise ValueError("a client of another context")
        os.chdir(cwd)
    except Exception as error:  # a request it cannot take: the client runs it
        _reply(connection, b"R", 0)
        _log(f"refused a request: {error}", log)
        return
    os.umask(umask)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["jetforge", *argv]
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        stream = _stream(number, encodings[number] or ("utf-8", "strict"), unbuffered)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    _reply(connection, b"P", os.getpid())
    if receive(connection, 1) != b"G":
        return  # the client went away before the command began
    _watch_client(connection)
    command = argv[next((i for i, word in enumerate(argv) if not word.startswith("-")), 0)]
    code = 1
    try:
        from jetforge.cli.main import main, served

        code = main(argv, env=dict(env), only=served)
        if code == NOT_SERVED:
            _log(f"not served: {command}", log)
            _reply(connection, b"R", 0)
            return
        code = _flush(code)
    except BaseException:
        import traceback

        _log(f"internal error in {command}:\n{traceback.format_exc()}", log)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _log(f"served: {command}: exit {code}, peak {peak:.1f} MB", log)  # before the client ends
    _reply(connection, b"X", code)
    _report(report)
    os._exit(code)


def _stream(number: int, encoding: tuple[str, str], unbuffered: bool) -> IO[str]:
    """Descriptor ``number`` as the text stream Python would have made of it."""
    import io

    if number == 0:
        return open(0, encoding=encoding[0], errors=encoding[1], closefd=False)
    raw = io.FileIO(number, "w", closefd=False)
    binary: IO[bytes] = raw if unbuffered else io.BufferedWriter(raw)
    return io.TextIOWrapper(
        binary,
        encoding=encoding[0],
        errors=encoding[1],
        line_buffering=number == 2 or os.isatty(number),
        write_through=unbuffered,
    )


def _watch_client(connection: socket.socket) -> None:
    """End the command (as SIGTERM would) when its client goes away."""
    import threading

    def watch() -> None:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLHUP)
        with contextlib.suppress(OSError):
            poller.poll()
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def _receive_request(connection: socket.socket) -> Request:
    """The client's request; its standard streams become this process's 0, 1 and 2."""
    data, fds, _flags, _address = socket.recv_fds(connection, 65536, 3)
    if len(fds) != 3:
        raise ValueError("a request without its three streams")
    for number, fd in enumerate(fds):
        os.dup2(fd, number)
        os.close(fd)
    data += receive(connection, max(0, LENGTH.size - len(data))) or b""
    (length,) = LENGTH.unpack(data[: LENGTH.size])
    body = data[LENGTH.size :]
    if len(body) < length:
        body += receive(connection, length - len(body)) or b""
    request: Request = marshal.loads(body)  # noqa: S302 - from this user's own client
    return request


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


def _flush(code: int) -> int:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or 1
    with contextlib.suppress(BrokenPipeError):
        sys.stderr.flush()
    return code


def _report(report: int) -> None:
    """Name the index files this process read from the disk or wrote, for the server."""
    from jetforge.index import READ_OR_WRITTEN

    data = b""
    for path in READ_OR_WRITTEN:  # one write of at most PIPE_BUF bytes is never split
        named = f"{path}\0".encode()
        if len(data) + len(named) <= 4096:
            data += named
    if data:
        with contextlib.suppress(OSError):
            os.write(report, data)


if __name__ == "__main__":
    serve(sys.argv[1])
