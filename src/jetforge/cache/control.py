"""The local package cache server seen from jetforge: where it keeps its state, how it is
started in the background, found, checked and stopped.

The server itself is :mod:`jetforge.cache.server`, run as its own process. It writes
``server.json`` (pid, address, store) once it listens and sets ``pid`` to 0 when it stops,
so builds still know a local cache exists while it is down (and say so).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jetforge.errors import FailureError, UsageError
from jetforge.host.files import (
    MIB,
    UnreadableFileError,
    check_regular_or_absent,
    open_regular,
    read_regular_text,
)
from jetforge.host.process import start_detached

DEFAULT_PORT = 7780
USER = "jetforge"
PROBE_SECONDS = 3.0
LOG_TAIL = 64 * 1024  # of the log, what is read for its last line


@dataclass(frozen=True, slots=True)
class CachePaths:
    """Where the local cache keeps its state, under the user's jetforge cache directory."""

    root: Path

    @classmethod
    def under(cls, cache_dir: Path) -> CachePaths:
        """The paths below ``cache_dir`` (``~/.cache/jetforge``)."""
        return cls(cache_dir / "package-cache")

    @property
    def state_file(self) -> Path:
        """``server.json``: written by the server; ``pid`` 0 once it stopped."""
        return self.root / "server.json"

    @property
    def log_file(self) -> Path:
        """The background server's log."""
        return self.root / "server.log"

    @property
    def credentials_file(self) -> Path:
        """``user:password`` for uploads (mode 0600)."""
        return self.root / "credentials"

    @property
    def secrets_dir(self) -> Path:
        """The build secrets' source files (mode 0600)."""
        return self.root / "secrets"

    @property
    def default_store(self) -> Path:
        """The store when ``--dir`` is not given."""
        return self.root / "store"


@dataclass(frozen=True, slots=True)
class ServerState:
    """What the server wrote about itself; ``pid`` is 0 when it stopped."""

    pid: int
    host: str
    port: int
    url: str
    store: Path

    def index_url(self, platform: str) -> str:
        """The PEP 503 index for one platform's wheels."""
        return f"{self.url}{platform}/simple/"

    def platform_url(self, platform: str) -> str:
        """Where wheels of one platform are uploaded (pypiserver's upload endpoint)."""
        return f"{self.url}{platform}/"


def read_state(paths: CachePaths) -> ServerState | None:
    """The local server's last state, or None when it was never started."""
    try:
        data = json.loads(read_regular_text(paths.state_file, "server state file", MIB))
        return ServerState(
            int(data["pid"]), str(data["host"]), int(data["port"]), str(data["url"]),
            Path(data["dir"]),
        )  # fmt: skip
    except (UnreadableFileError, ValueError, KeyError, TypeError):
        return None  # none, or not one the server wrote: as if it never ran


def is_alive(pid: int, *, spawned: bool = False) -> bool:
    """Whether ``pid`` is a live (not zombie) cache server process; with ``spawned`` (a
    process this one just started, which may not have replaced its program yet) any live
    process counts."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it when we started it and it ended
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    try:
        if proc.joinpath("stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
        return spawned or b"jetforge.cache.server" in proc.joinpath("cmdline").read_bytes()
    except (OSError, IndexError):
        return True  # no /proc: trust the signal


def ensure_credentials(paths: CachePaths) -> tuple[str, str]:
    """The upload user and password, created once (random, mode 0600)."""
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(paths.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        import secrets  # once per cache: start-up time

        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(f"{USER}:{secrets.token_hex(24)}\n")
    return read_credentials(paths.credentials_file)


def read_credentials(path: Path) -> tuple[str, str]:
    """The ``user:password`` of a credentials file; one that is not a regular file of
    one such line is a one-line error naming it."""
    text = read_regular_text(path, "credentials file (user:password)", 4096)
    user, colon, password = text.strip().partition(":")
    if not colon or not user or not password or "\n" in password:
        raise UsageError(f"{path}: not one 'user:password' line; remove it and a new one is made")
    return user, password


def fetch_health(url: str, timeout: float = PROBE_SECONDS) -> dict[str, object] | None:
    """The server's ``/health`` answer when it is a jetforge cache, else None."""
    import urllib.request  # here, not at the top: start-up time

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url.rstrip("/") + "/health", timeout=timeout) as response:
            data = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("service") == "jetforge-cache" else None


def stop_server(paths: CachePaths, wait: float = 10.0) -> int | None:
    """Stop the local server (SIGTERM, then SIGKILL after ``wait`` s); its pid, or None when
    it was not running."""
    state = read_state(paths)
    if state is None or not is_alive(state.pid):
        return None
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while is_alive(state.pid):
        if time.monotonic() > deadline:
            os.kill(state.pid, signal.SIGKILL)
            time.sleep(0.2)
            break
        time.sleep(0.1)
    return state.pid


def server_argv(
    python: str, paths: CachePaths, store: Path, host: str, port: int
) -> tuple[str, ...]:
    """The command that runs the server (credentials by file, never on the command line)."""
    return (
        python, "-m", "jetforge.cache.server", "--dir", str(store), "--host", host,
        "--port", str(port), "--state", str(paths.state_file),
        "--credentials", str(paths.credentials_file),
    )  # fmt: skip


def start_background(
    argv: Sequence[str], paths: CachePaths, env: Mapping[str, str], wait: float = 30.0
) -> ServerState:
    """Start the server detached (output to the log) and wait until it answers."""
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    check_regular_or_absent(paths.log_file, "server log")  # a FIFO would block the server
    pid = start_detached(argv, log=paths.log_file, env=env)
    if pid < 0:
        raise UsageError(f"cannot start {argv[0]}")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        state = read_state(paths)
        if state is not None and state.pid == pid and fetch_health(state.url) is not None:
            return state
        if not is_alive(pid, spawned=True):
            raise FailureError(f"the cache server exited: {_log_tail(paths.log_file)}")
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    raise FailureError(f"the cache server did not answer within {wait:g} s (log: {paths.log_file})")


def _log_tail(log: Path) -> str:
    try:
        with open_regular(log, "server log") as stream:
            stream.seek(max(0, os.fstat(stream.fileno()).st_size - LOG_TAIL))
            text = stream.read(LOG_TAIL).decode("utf-8", errors="replace")
    except (UnreadableFileError, OSError):
        return f"no log at {log}"
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "no output") + f" (log: {log})"
