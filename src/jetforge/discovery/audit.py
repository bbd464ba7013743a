"""The script worker's audit hook (:func:`sys.addaudithook`) and environment watch: what
config scripts read, noted as they read it, and the network, refused to them.

In the process forked for a directory (:class:`Recorder`, once started), every environment
variable looked up (``os.environ``, ``os.environb``, ``os.getenv``), every file opened for
reading and every directory listed is sent at once, with the file's stamp taken before it
is read, to the serving worker (:class:`Seen`), which adds them to the directory's answer:
the discovery index keeps that answer while they are what they were. A script that starts
another program has handed it every variable, so it read them all. Files of the package
directory itself (the index stamps them anyway), jetforge's own files and the worker's
scratch directory are left out, as are files the script wrote before reading them (its
own output). A SQLite database a script opens (``sqlite3.connect``, a ``file:`` URI
included) is read like a file, its write-ahead log (``-wal``) too. A file a script only
tests for (``os.path.exists``) is not seen, nor one that C code opens by itself (libc's
``fopen`` through ``ctypes``, a C extension's own reads): no audit event tells of it.

Every connection, datagram and name lookup of Python code (``socket``, ``_socket``,
``ctypes``' ``connect``) raises :class:`OSError` at once, in every process of the worker.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit

from jetforge.discovery.jc.reader import OFFLINE_NOTE
from jetforge.discovery.time_limit import TIMEOUT_VARIABLE
from jetforge.host.stash import FileStamp, file_stamp

_NETWORK_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
    }
)
_NETWORK_FUNCTIONS = frozenset(
    {
        "connect",
        "sendto",
        "sendmsg",
        "sendmmsg",
        "getaddrinfo",
        "gethostbyname",
        "gethostbyname2",
        "gethostbyaddr",
        "getnameinfo",
    }
)
_WRITING = os.O_TRUNC | os.O_EXCL  # the content read back is what the script wrote
# What starts a process or a thread, or calls C code directly.
_PROCESS_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "_thread.start_new_thread",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
    }
)


class Recorder:
    """What the scripts of this (forked) process read, sent to the serving worker as they
    read it; inert until :meth:`start`."""

    def __init__(self) -> None:
        self.sink: int | None = None
        self.directory = ""
        self.exclude: tuple[str, ...] = ()
        self.names: set[str] = set()
        self.whole_env = False
        self.paths: set[str] = set()
        self.written: set[str] = set()
        self.changed_process = False

    def start(self, sink: int, directory: Path) -> None:
        """Report to descriptor ``sink``, for the package directory ``directory`` (what
        was reported for the one before counts as new again)."""
        self.sink = sink
        self.directory = str(directory)
        self.names, self.paths, self.written = set(), set(), set()
        self.whole_env = False
        self.changed_process = False

    def started_process(self) -> None:
        """A script started a process or a thread, or called C code: what it leaves
        running, or changed, is beyond :class:`Baseline`'s view."""
        self.changed_process = True

    def send(self, item: list[object]) -> None:
        """One line to the serving worker; a sink the script closed ends the reports (and
        the process will end without an answer: its script's doing)."""
        if self.sink is None:
            return
        try:
            line = memoryview(json.dumps(item).encode() + b"\n")
            while line:  # a long answer may go in several writes
                line = line[os.write(self.sink, line) :]
        except (OSError, ValueError, TypeError):
            self.sink = None

    def variable(self, name: object) -> None:
        """A variable looked up (its name as text, also when asked for as bytes)."""
        if self.sink is None:
            return
        text = os.fsdecode(name) if isinstance(name, str | bytes) else str(name)
        if text not in self.names:
            self.names.add(text)
            self.send(["env", text])

    def every_variable(self) -> None:
        """Every variable was looked at (listed, copied or handed to another program)."""
        if self.sink is not None and not self.whole_env:
            self.whole_env = True
            self.send(["whole_env"])

    def path(self, given: object, *, reading: bool) -> None:
        """A file opened (``reading`` it) or a directory listed."""
        if self.sink is None or not isinstance(given, str | bytes | os.PathLike):
            return
        try:
            # the working directory of now; no Path objects: this runs at every open
            path = os.path.abspath(os.fsdecode(given))  # noqa: PTH100
        except (OSError, TypeError, ValueError):
            return
        if path in self.paths or path in self.written:
            return
        if not reading:
            self.written.add(path)
            return
        if path == self.directory or os.path.dirname(path) == self.directory:  # noqa: PTH120
            return  # the directory's own entries: the index stamps them
        if any(path == top or path.startswith(top + os.sep) for top in self.exclude):
            return
        self.paths.add(path)
        self.send(["file", path, file_stamp(path)])


RECORDER = Recorder()


class Seen:
    """In the serving worker: what one directory's process reported."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.whole_env = False
        self.files: dict[str, FileStamp | None] = {}
        self.timed_out = False
        self.too_large = False  # its report or answer was over the limit

    def take(self, line: bytes) -> tuple[dict[str, Any], bool] | None:
        """Note one reported line; for the answer, the answer and whether its runner ends
        after it (a line that is not a report, which only a script could have written,
        is passed over)."""
        try:
            kind, *rest = json.loads(line)
        except (ValueError, TypeError):
            return None
        if kind == "answer" and len(rest) == 2 and isinstance(rest[0], dict):
            answer: dict[str, Any] = rest[0]
            return answer, bool(rest[1])
        if kind == "env" and rest:
            self.names.add(str(rest[0]))
        elif kind == "whole_env":
            self.whole_env = True
        elif kind == "file" and len(rest) == 2:  # its path and stamp
            path, stamp = rest
            self.files.setdefault(str(path), None if stamp is None else tuple(stamp))
        return None

    def inputs(self) -> dict[str, object]:
        """What the answer carries about what its scripts read. A timeout depends on the
        time limit, so it read :data:`TIMEOUT_VARIABLE` too."""
        names = self.names | ({TIMEOUT_VARIABLE} if self.timed_out else set())
        return {
            "env": sorted(names),
            "whole_env": self.whole_env,
            "files": [[path, stamp] for path, stamp in sorted(self.files.items())],
        }


class Baseline:
    """The state of the serving worker's process that a script could change for the next
    script in the same runner: the modules (which module each name is, and no module
    added but jetforge's own), the values of ``builtins`` and of the jc compatibility
    module (constants scripts read), the environment, the working directory, the import
    machinery, the standard streams, signal handlers, a pending alarm and threads. A
    runner whose state is no longer this after a script is replaced before the next one.
    (A change elsewhere, say a function of ``os`` replaced, shows when the next script
    fails: a failure after other scripts is judged again in a new runner.)

    A module a script imported is a module added: the next script, in a new runner,
    imports it again, and so reads (and is seen to read) its files itself. What each
    script read is its own, and the discovery index runs it again only when that
    changes."""

    WATCHED = ("builtins", "jetson_containers", "jetson_containers.pypi_utils")

    def __init__(self, scratch: Path) -> None:
        self.scratch = str(scratch)
        self.environ = os.environ
        self.names = list(sys.modules)
        self.modules = list(sys.modules.values())
        self.state = self._state()

    def _state(self) -> tuple[object, ...]:
        real = getattr(os.environ, "real", os.environ)
        watched = [sys.modules.get(name) for name in self.WATCHED]
        return (
            dict(getattr(real, "_data", real)),  # os.environ's own (encoded) copy: fast
            tuple(sys.path),
            tuple(map(id, sys.meta_path)),
            tuple(map(id, sys.path_hooks)),
            tuple(map(id, (sys.stdin, sys.stdout, sys.stderr, os.environ))),
            tuple(tuple(map(id, vars(module).values())) for module in watched if module),
            tuple(map(signal.getsignal, _SIGNALS)),
            sys.getrecursionlimit(),
            threading.active_count(),
        )

    def holds(self) -> bool:
        """Whether the process is as it was (back in the scratch directory first)."""
        try:
            os.chdir(self.scratch)
        except OSError:
            return False
        if signal.alarm(0) or os.environ is not self.environ:
            return False
        # modules compare by identity: each name is still the module it was
        if list(map(sys.modules.get, self.names)) != self.modules:
            return False
        if len(sys.modules) != len(self.names) and any(
            not name.startswith("jetforge.") for name in set(sys.modules) - set(self.names)
        ):
            return False
        return self._state() == self.state


_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGALRM", "SIGCHLD", "SIGHUP", "SIGINT", "SIGPIPE", "SIGTERM", "SIGUSR1")
)


Key = TypeVar("Key", str, bytes)


class WatchedEnviron(MutableMapping[Key, Key], Generic[Key]):
    """``os.environ`` (or ``os.environb``) as scripts see it, noting each variable they
    look up, or that they looked at all of them. Lookups behave as the real mapping's
    (a bytes key in ``os.environ`` is a ``TypeError``, as ``subprocess`` expects)."""

    def __init__(self, real: MutableMapping[Key, Key], recorder: Recorder) -> None:
        self.real: MutableMapping[Key, Key] = real
        self.recorder = recorder

    def __getitem__(self, name: Key) -> Key:
        self.recorder.variable(name)
        return self.real[name]

    def __contains__(self, name: object) -> bool:
        self.recorder.variable(name)
        return name in self.real

    def __setitem__(self, name: Key, value: Key) -> None:
        self.real[name] = value

    def __delitem__(self, name: Key) -> None:
        del self.real[name]

    def __iter__(self) -> Iterator[Key]:
        self.recorder.every_variable()
        return iter(self.real)

    def __len__(self) -> int:
        self.recorder.every_variable()
        return len(self.real)

    def copy(self) -> dict[Key, Key]:
        """All variables, as ``os.environ.copy()`` gives them."""
        self.recorder.every_variable()
        return dict(self.real)


def _refuse_network() -> None:
    if RECORDER.sink is not None:
        with contextlib.suppress(Exception):
            # the jc compatibility module, as config scripts import it (a script asked)
            importlib.import_module("jetson_containers").log_warning(OFFLINE_NOTE)
    raise OSError("jetforge reads packages offline: config scripts get no network")


def _hook(event: str, arguments: tuple[Any, ...]) -> None:
    """The audit hook: notes reads, refuses the network."""
    if event == "open":
        path, _mode, flags = arguments
        if not isinstance(flags, int):
            flags = 0
        reading = flags & os.O_ACCMODE != os.O_WRONLY and not flags & _WRITING
        RECORDER.path(path, reading=reading)
    elif event in ("os.listdir", "os.scandir"):
        RECORDER.path("." if arguments[0] is None else arguments[0], reading=True)
    elif event == "sqlite3.connect" and arguments:
        for path in database_files(arguments[0]):
            RECORDER.path(path, reading=True)
    elif event in _NETWORK_EVENTS or (
        event == "ctypes.dlsym" and _symbol(arguments) in _NETWORK_FUNCTIONS
    ):
        _refuse_network()
    elif event in _PROCESS_EVENTS:
        RECORDER.started_process()
        if event == "os.system" or (
            event in ("subprocess.Popen", "os.exec") and arguments[-1] is None
        ):
            RECORDER.every_variable()  # the program gets the whole environment


def database_files(database: object) -> list[str]:
    """The files SQLite reads for ``sqlite3.connect(database)``: the database and its
    write-ahead log (where a database in WAL mode keeps what was written since its last
    checkpoint); none for one in memory. The event does not tell whether ``uri=True`` was
    given: a ``file:`` name is taken as the URI it then is (without it, it names a file in
    the worker's scratch directory, which is never reported anyway)."""
    try:
        name = os.fsdecode(database)  # type: ignore[arg-type]
    except TypeError:
        return []
    if name.startswith("file:"):
        parts = urlsplit(name)
        if "mode=memory" in parts.query.split("&"):
            return []
        name = unquote(parts.path)
    if name in ("", ":memory:"):
        return []
    return [name, name + "-wal"]


def _symbol(arguments: tuple[Any, ...]) -> str:
    name = arguments[-1] if arguments else ""
    return name.decode(errors="replace") if isinstance(name, bytes) else str(name)


def watch(exclude: tuple[str, ...]) -> None:
    """Install the hook and the environment watch in this process (for good: an audit
    hook cannot be removed). Files under ``exclude`` are never reported."""
    RECORDER.exclude = exclude
    note: Callable[[str, tuple[Any, ...]], None] = _hook
    sys.addaudithook(note)
    os.environ = WatchedEnviron(os.environ, RECORDER)  # type: ignore[assignment]  # noqa: B003
    if hasattr(os, "environb"):
        os.environb = WatchedEnviron(os.environb, RECORDER)  # type: ignore[assignment]
