"""The command server: read-only commands answered by a resident process that has
jetforge imported already, so that a warm ``list`` costs little more than Python's start.

A read-only command (``list``, ``show``, ``graph``, ``explain``, ``platform``, ``build
--simulate``, ``--list-packages`` or ``--show-packages``) that finds no server starts one
in the background and runs as usual; later ones hand their arguments, working directory,
umask, environment and standard streams (the descriptors themselves) to it over a Unix
socket (:mod:`jetforge.server_client`). The server forks one process per command, which
runs it as a process of its own would: in the caller's directory, with its environment,
writing straight to its terminal or pipes. Nothing passes from one command to the next
but the imported modules and the index files read ahead
(:func:`jetforge.discovery.index.read_ahead`): every answer comes from the files, as in
any run.

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
import sys
import time
from typing import IO

from jetforge.server_client import (
    LENGTH,
    NOT_SERVED,
    REPLY,
    peer_uid,
    process_context,
    receive,
    socket_path,
)

IDLE_VARIABLE = "JETFORGE_SERVER_IDLE"
IDLE_S = 600.0
LOG_LIMIT = 1 << 20  # a server that starts with a longer log begins a new one
REQUEST_TIMEOUT_S = 10.0


def _dependency_stamp() -> list[object]:
    """jetforge's files, and the directories its dependencies are installed in (an
    install or removal changes them; the working directory the server started in, first
    on its path, is not one)."""
    from jetforge.discovery.index import code_stamp

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

    import jetforge.discovery.reading
    from jetforge.cli.main import make_parser

    make_parser()
    del jetforge.discovery.reading, yaml


def _read_ahead(reports: int) -> None:
    """Read ahead the index files the command processes reported."""
    from jetforge.discovery.index import read_ahead

    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(reports, 65536):
            data += chunk
    for path in sorted(set(data.decode(errors="replace").split("\0")) - {""}):
        read_ahead(path)


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
        connection.settimeout(REQUEST_TIMEOUT_S)  # a client that sends nothing is not waited for
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
    _log(f"served: {command}: exit {code}, peak {peak:.1f} MB", log)
    _report(report)  # before the reply: once the client is gone, so is this process
    _reply(connection, b"X", code)
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
    from jetforge.discovery.index import READ_OR_WRITTEN

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
