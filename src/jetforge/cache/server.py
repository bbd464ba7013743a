"""The package cache server: a pypiserver index per platform plus a tarball store, one port.

``jetforge cache serve`` runs this module as its own process::

    python -m jetforge.cache.server --dir STORE --host 127.0.0.1 --port 7780 \\
        --state STATE.json --credentials CREDENTIALS

Layout of STORE and the URLs that serve it (``PLATFORM`` is a platform's tag postfix such
as ``x86_64-cu128-24.04``, so wheels built against one CUDA/L4T never reach another):

    wheels/PLATFORM/*.whl          /PLATFORM/simple/ (PEP 503, pypiserver); upload: POST /PLATFORM/
    tarballs/PLATFORM/NAME.tar.gz  GET, HEAD, PUT /PLATFORM/tarballs/NAME.tar.gz (folder: JSON)

Downloads are open; every upload needs HTTP basic auth with the user and password in the
credentials file (``user:password``): without it 401, with a wrong one 403. ``GET /health``
answers ``{"service": "jetforge-cache", ...}``. The process writes STATE.json (pid, address,
store) once it listens and marks it stopped when it exits.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import importlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from jetforge import __version__
from jetforge.cache.control import read_credentials
from jetforge.errors import UsageError
from jetforge.host.files import UnreadableFileError, read_regular_text, write_atomic

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

SERVICE = "jetforge-cache"
PLATFORM_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
TARBALL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}\.tar\.gz")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


class CacheApp:
    """The WSGI application: health, tarball store, and one pypiserver app per platform."""

    def __init__(
        self,
        store: Path,
        user: str,
        password: str,
        make_index: Callable[[Path, Callable[[str, str], bool]], WSGIApplication],
    ) -> None:
        self.store = store
        self.user = user
        self.password = password
        self.make_index = make_index
        self._indexes: dict[str, WSGIApplication] = {}
        self._lock = threading.Lock()

    def is_allowed(self, user: str, password: str) -> bool:
        """Whether an upload's credentials are the server's (constant-time comparison)."""
        expected = f"{self.user}:{self.password}".encode()
        return hmac.compare_digest(f"{user}:{password}".encode(), expected)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path.rstrip("/") in ("", "/health"):
            return _json(start_response, "200 OK", self.describe())
        platform, _, rest = path.lstrip("/").partition("/")
        if not PLATFORM_PATTERN.fullmatch(platform):
            return _text(start_response, "404 Not Found", "no such platform\n")
        if rest == "tarballs" or rest.startswith("tarballs/"):
            return self._tarballs(environ, start_response, platform, rest[len("tarballs/") :])
        if not (self.store / "wheels" / platform).is_dir():
            # Only an authenticated upload makes a platform; a read of one that does not
            # exist costs nothing (no folder, no index object): an empty index, or 404.
            if environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD"):
                if rest.rstrip("/") == "simple":
                    return _html(start_response, EMPTY_INDEX)
                return _text(start_response, "404 Not Found", "not in the store\n")
            refused = self._refuse_upload(environ, start_response)
            if refused is not None:
                return refused
        shifted = dict(environ)
        shifted["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "").rstrip("/") + "/" + platform
        shifted["PATH_INFO"] = "/" + rest
        return self._index(platform)(shifted, start_response)

    def describe(self) -> dict[str, object]:
        """What ``/health`` answers."""
        return {"service": SERVICE, "version": __version__, "pid": os.getpid()}

    def _index(self, platform: str) -> WSGIApplication:
        root = self.store / "wheels" / platform
        root.mkdir(parents=True, exist_ok=True)  # again each time: someone may clean up
        with self._lock:
            if platform not in self._indexes:
                self._indexes[platform] = self.make_index(root, self.is_allowed)
            return self._indexes[platform]

    def _tarballs(
        self, environ: WSGIEnvironment, start_response: StartResponse, platform: str, name: str
    ) -> Iterable[bytes]:
        folder = self.store / "tarballs" / platform
        method = environ.get("REQUEST_METHOD", "GET")
        if not name:
            if method not in ("GET", "HEAD"):
                return _text(start_response, "405 Method Not Allowed", "GET only\n")
            return _json(start_response, "200 OK", {"tarballs": _listing(folder)})
        if not TARBALL_PATTERN.fullmatch(name):
            return _text(start_response, "400 Bad Request", "a name is [A-Za-z0-9._+-].tar.gz\n")
        path = folder / name
        if method in ("GET", "HEAD"):
            if not path.is_file():
                return _text(start_response, "404 Not Found", f"{name} is not in the store\n")
            headers = [
                ("Content-Type", "application/gzip"),
                ("Content-Length", str(path.stat().st_size)),
                ("X-Checksum-Sha256", _checksum(path)),
            ]
            start_response("200 OK", headers)
            return [] if method == "HEAD" else _stream(path)
        if method != "PUT":
            return _text(start_response, "405 Method Not Allowed", "GET, HEAD or PUT\n")
        refused = self._refuse_upload(environ, start_response)
        if refused is not None:
            return refused
        if path.exists():
            return _text(start_response, "409 Conflict", f"{name} is already in the store\n")
        return self._receive(environ, start_response, path)

    def _refuse_upload(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> list[bytes] | None:
        """The refusal of an upload without the cache's credentials, or None."""
        denied = self._denied(environ)
        if not denied:
            return None
        status, headers = denied
        start_response(status, [("Content-Type", "text/plain"), *headers])
        return [b"uploads need the cache's credentials\n"]

    def _denied(self, environ: WSGIEnvironment) -> tuple[str, list[tuple[str, str]]] | None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return "401 Unauthorized", [("WWW-Authenticate", 'Basic realm="jetforge-cache"')]
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "401 Unauthorized", [("WWW-Authenticate", 'Basic realm="jetforge-cache"')]
        return None if self.is_allowed(user, password) else ("403 Forbidden", [])

    def _receive(
        self, environ: WSGIEnvironment, start_response: StartResponse, path: Path
    ) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return _text(start_response, "411 Length Required", "send a Content-Length\n")
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
        digest = hashlib.sha256()
        stream = environ["wsgi.input"]
        with partial.open("wb") as out:
            left = length
            while left > 0:
                block = stream.read(min(CHUNK, left))
                if not block:
                    break
                digest.update(block)
                out.write(block)
                left -= len(block)
        if left:
            partial.unlink()
            return _text(start_response, "400 Bad Request", "the upload was cut short\n")
        partial.with_name(path.name + ".sha256").write_text(digest.hexdigest() + "\n")
        partial.replace(path)
        return _json(start_response, "201 Created", {"name": path.name, "sha256": _checksum(path)})


def _checksum(path: Path) -> str:
    sidecar = path.with_name(path.name + ".sha256")
    with contextlib.suppress(UnreadableFileError, OSError):
        if sidecar.stat().st_mtime >= path.stat().st_mtime:
            kept = read_regular_text(sidecar, "checksum file", 128).strip()
            if SHA256_PATTERN.fullmatch(kept):
                return kept
    value = sha256_file(path)
    with contextlib.suppress(OSError):  # a cache of the checksum: computed again next time
        write_atomic(sidecar, (value + "\n").encode())
    return value


def _listing(folder: Path) -> list[dict[str, object]]:
    if not folder.is_dir():
        return []
    return [
        {"name": item.name, "size": item.stat().st_size, "sha256": _checksum(item)}
        for item in sorted(folder.glob("*.tar.gz"))
        if TARBALL_PATTERN.fullmatch(item.name)
    ]


def _stream(path: Path) -> Iterable[bytes]:
    with path.open("rb") as stream:
        while block := stream.read(CHUNK):
            yield block


EMPTY_INDEX = (
    "<!DOCTYPE html>\n<html><head><title>Simple index</title></head><body></body></html>\n"
)


def _html(start_response: StartResponse, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _text(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _json(start_response: StartResponse, status: str, data: object) -> list[bytes]:
    body = (json.dumps(data) + "\n").encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def pypiserver_index(root: Path, auther: Callable[[str, str], bool]) -> WSGIApplication:
    """A pypiserver app over ``root``: downloads open, uploads through ``auther``, and no
    redirect to PyPI for missing projects (the build's next source answers those)."""
    pypiserver: Any = importlib.import_module("pypiserver")
    app: WSGIApplication = pypiserver.app(
        roots=[root], authenticate=["update"], auther=auther, disable_fallback=True
    )
    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {format % args}\n")


def write_state(path: Path, data: dict[str, object]) -> None:
    """Replace the state file atomically."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m jetforge.cache.server")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--credentials", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        user, password = read_credentials(args.credentials)
    except UsageError as error:
        print(f"jetforge cache: error: {error}", file=sys.stderr, flush=True)
        return 2
    store: Path = args.dir.resolve()
    store.mkdir(parents=True, exist_ok=True)
    app = CacheApp(store, user, password, pypiserver_index)
    server = make_server(args.host, args.port, app, server_class=_Server, handler_class=_Handler)
    port = server.server_address[1]
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host  # noqa: S104 - a comparison
    state: dict[str, object] = {
        "pid": os.getpid(),
        "host": args.host,
        "port": port,
        "url": f"http://{shown}:{port}/",
        "dir": str(store),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "version": __version__,
    }

    def stop(_signal: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    write_state(args.state, state)
    print(f"jetforge cache serving {store} at {state['url']} (pid {os.getpid()})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        stopped = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_state(args.state, {**state, "pid": 0, "stopped": stopped})
        print("jetforge cache stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
