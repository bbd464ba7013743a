"""The command server: read-only commands answered by a resident process that has
jetforge imported already, so that a warm ``list`` costs little more than Python's start.

A read-only command (``list``, ``show``, ``graph``, ``explain``, ``platform``, ``build
--simulate``, ``--list-packages`` or ``--show-packages``) that finds no server starts one
in the background and runs as usual; later ones hand their arguments, working directory,
environment and standard streams (the descriptors themselves) to it over a Unix socket.
The server forks one process per command, which runs it as a process of its own would: in
the client's directory, with its environment, writing straight to its terminal or pipes.
The client forwards Ctrl-C and termination signals to that process and exits with its
exit code. Nothing passes from one command to the next but the imported modules: every
answer comes from the files, as in any run (the discovery index included).

A server belongs to one user (its directory is private and a peer of another uid is
refused) and to one jetforge: it exits when any of jetforge's files changed (the command
that notices runs on its own and starts a new server), after ``IDLE_S`` seconds without a
command, and on SIGTERM. ``JETFORGE_NO_SERVER=1`` runs every command in its own process.

This module is what every ``jetforge`` process imports first: the client side imports
nothing heavy; the server side imports the rest when it starts.
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
import zlib
from collections.abc import Mapping, Sequence

VARIABLE = "JETFORGE_NO_SERVER"
DIRECTORY_VARIABLE = "JETFORGE_SERVER_DIR"
IDLE_VARIABLE = "JETFORGE_SERVER_IDLE"
IDLE_S = 600.0
READ_ONLY = frozenset({"list", "show", "graph", "explain", "platform"})
BUILD_READ_ONLY = frozenset({"--simulate", "--dry-run", "--list-packages", "--show-packages"})
NOT_SERVED = -1  # what :func:`jetforge.cli.main.main` returns for a command it must not serve
_LENGTH = struct.Struct("!I")
_REPLY = struct.Struct("!ci")  # b"P" pid (the command started), b"X" code (it ended), b"R"


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
    base = env.get(DIRECTORY_VARIABLE) or os.path.join(
        env.get("XDG_RUNTIME_DIR") or "/tmp",
        f"jetforge-{os.getuid()}",
    )
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
        found = os.lstat(base)
    except OSError:
        return None
    if found.st_uid != os.getuid() or found.st_mode & 0o077 or not os.path.isdir(base):
        return None
    return base


def socket_path(directory: str) -> str:
    """The socket of this jetforge's server (one per interpreter and installation)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(directory, f"s-{zlib.crc32(f'{sys.executable}|{here}'.encode()):08x}")


# The client.


def run_through_server(argv: Sequence[str]) -> int | None:
    """Run ``argv`` in the server and return its exit code; None when this process must
    run it itself (no server yet: one is started; a stale one; a command not served)."""
    env = os.environ
    if env.get(VARIABLE, "") not in ("", "0") or not is_read_only(argv):
        return None
    directory = server_directory(env)
    if directory is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    path = socket_path(directory)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path + ".sock")
    except OSError:
        client.close()
        _start_server(path)
        return None
    with client:
        return _converse(client, argv)


def _converse(client: socket.socket, argv: Sequence[str]) -> int | None:
    streams = (sys.stdin, sys.stdout, sys.stderr)
    request = marshal.dumps(
        (
            list(argv),
            os.getcwd(),
            dict(os.environ),
            [(stream.encoding, stream.errors) if stream else None for stream in streams],
        )
    )
    data = _LENGTH.pack(len(request)) + request
    try:
        sent = socket.send_fds(client, [data], [0, 1, 2])
        client.sendall(data[sent:])
    except OSError:  # a closed standard stream, or a server going away: run here
        return None
    child = 0
    while True:
        reply = _receive(client, _REPLY.size)
        if reply is None:
            if child:  # the command's process died without an exit code
                print("jetforge: internal error: the server's process died", file=sys.stderr)
                return 1
            return None
        kind, value = _REPLY.unpack(reply)
        if kind == b"P":
            child = value
            _forward_signals(child)
        elif kind == b"X":
            return int(value)
        else:
            return None


def _forward_signals(pid: int) -> None:
    def forward(number: int, _frame: object) -> None:
        with contextlib.suppress(OSError):  # it has ended already
            os.kill(pid, number)

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(number, forward)


def _receive(connection: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = connection.recv(size - len(data))
        except InterruptedError:
            continue
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def _start_server(path: str) -> None:
    """Start a server for ``path`` in the background (it gives way to one that runs)."""
    from pathlib import Path

    from jetforge._process import start_detached

    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    start_detached(
        [sys.executable, "-m", "jetforge.server", path], log=Path(path + ".log"), env=env
    )


def stop_server(path: str) -> bool:
    """Stop the server of ``path`` (SIGTERM); whether one was running."""
    try:
        with open(path + ".lock", encoding="ascii") as lock:
            pid = int(lock.read().strip() or 0)
        if pid > 0:
            os.kill(pid, signal.SIGTERM)
            return True
    except (OSError, ValueError):
        pass
    return False


# The server.


def serve(path: str) -> None:
    """Serve commands on ``path``.sock until idle, stale or terminated."""
    import fcntl

    lock = open(path + ".lock", "a+", encoding="ascii")  # noqa: SIM115 - held while serving
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server runs or starts
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    from jetforge.index import code_stamp

    stamp = code_stamp()  # before importing: a change during the imports counts
    os.chdir("/")  # pins no directory
    _warm_up()
    idle = float(os.environ.get(IDLE_VARIABLE) or IDLE_S)
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
            if not _same_user(connection):
                connection.close()
                continue
            if code_stamp() != stamp:
                _reply(connection, b"R", 0)
                connection.close()
                _log("jetforge's files changed; exiting")
                return
            if os.fork() == 0:
                listener.close()
                os.close(reports)
                _serve_one(connection, report)  # never returns
            connection.close()
    finally:
        if os.path.exists(address) and os.stat(address).st_ino == bound:
            os.unlink(address)


def _read_ahead(reports: int) -> None:
    """Read ahead the index files the command processes reported."""
    from jetforge.index import read_ahead

    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(reports, 65536):
            data += chunk
    for path in sorted(set(data.decode(errors="replace").split("\0")) - {""}):
        read_ahead(path)


def _warm_up() -> None:
    """Import what the served commands use (and nothing that reads the user's files)."""
    import jetforge.reading
    from jetforge.cli.main import make_parser

    make_parser()
    del jetforge.reading


def _same_user(connection: socket.socket) -> bool:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return bool(uid == os.getuid())


def _reply(connection: socket.socket, kind: bytes, value: int) -> None:
    with contextlib.suppress(OSError):  # the client is gone
        connection.sendall(_REPLY.pack(kind, value))


def _log(message: str) -> None:
    print(f"jetforge server {os.getpid()}: {message}", file=sys.stderr, flush=True)


def _serve_one(connection: socket.socket, report: int) -> None:
    """In the forked process: become the client's command process, run it, report."""
    code = 1
    log = os.dup(2)  # the server's log, before the client's stderr takes descriptor 2
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        request = _receive_request(connection)
        argv, cwd, env, encodings = request
        os.chdir(cwd)
    except BaseException:  # a request it cannot take: the client runs it
        _reply(connection, b"R", 0)
        os._exit(1)
    try:
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["jetforge", *argv]
        for number, name in enumerate(("stdin", "stdout", "stderr")):
            encoding, errors = encodings[number] or ("utf-8", "strict")
            stream = open(  # noqa: SIM115 - the process's own standard stream
                number,
                "r" if number == 0 else "w",
                encoding=encoding,
                errors=errors,
                buffering=1 if number == 1 and os.isatty(1) else -1,
                closefd=False,
            )
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)
        _reply(connection, b"P", os.getpid())
        from jetforge.cli.main import main, served

        code = main(argv, env=dict(env), only=served)
        if code == NOT_SERVED:
            _reply(connection, b"R", 0)
            _log_to(log, f"not served: {' '.join(argv)}")
            os._exit(0)
        code = _flush(code)
    except BaseException:  # whatever happened, the client gets a code
        code = 1
    _reply(connection, b"X", code)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _log_to(log, f"served: {' '.join(argv)}: exit {code}, peak {peak:.1f} MB")
    _report(report)
    os._exit(code)


def _log_to(log: int, message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(log, f"jetforge server {os.getpid()}: {message}\n".encode(errors="replace"))


def _report(report: int) -> None:
    """Name the index files this process read from the disk or wrote, for the server."""
    from jetforge.index import READ_OR_WRITTEN

    if READ_OR_WRITTEN:  # a write to a pipe of at most PIPE_BUF bytes is never split
        with contextlib.suppress(OSError):
            os.write(report, "".join(f"{path}\0" for path in READ_OR_WRITTEN).encode()[:4096])


Request = tuple[list[str], str, dict[str, str], list[tuple[str, str] | None]]


def _receive_request(connection: socket.socket) -> Request:
    """The client's request; its standard streams become this process's 0, 1 and 2."""
    data, fds, _flags, _address = socket.recv_fds(connection, 65536, 3)
    if len(fds) != 3:
        raise ValueError("a request without its three streams")
    for number, fd in enumerate(fds):
        os.dup2(fd, number)
        os.close(fd)
    data += _receive(connection, max(0, _LENGTH.size - len(data))) or b""
    (length,) = _LENGTH.unpack(data[: _LENGTH.size])
    body = data[_LENGTH.size :]
    if len(body) < length:
        body += _receive(connection, length - len(body)) or b""
    request: Request = marshal.loads(body)  # noqa: S302 - from this user's own client
    return request


def _flush(code: int) -> int:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or 1
    with contextlib.suppress(BrokenPipeError):
        sys.stderr.flush()
    return code


if __name__ == "__main__":
    serve(sys.argv[1])
