"""Image queries through an engine's HTTP API on a local unix socket.

Docker's daemon serves the Docker Engine API on its socket, podman's service
(``podman system service``) the same API and its own (libpod) one. An inspect through the
socket costs about a millisecond, against tens of milliseconds for a ``docker image
inspect`` process, so :class:`~jetforge.engine.cli_engine.CliEngine` asks the API for
images, their labels and tags when one answers on the engine's local socket, and its
program otherwise: a remote endpoint (``tcp://``, ``ssh://``), no socket, one this user may
not open, or an answer that is not what it should be. Builds, runs, pushes and pulls
always go through the program.

The answers are the JSON the programs print: ``docker image inspect`` prints the Engine
API's, and podman's libpod API answers what ``podman image inspect`` prints, so either
way gives the same :class:`~jetforge.engine.base.ImageInfo`. Only the standard library is
used: HTTP/1.1 on an ``AF_UNIX`` socket, one connection per request (nothing stays open
between requests, nothing to close). Not ``http.client``: importing it (with the
``email`` package it parses headers with) costs a no-op build more than all its queries.
"""

from __future__ import annotations

import hashlib
import json
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENGINE_API = "engine"  # the Docker Engine API (docker's daemon)
LIBPOD_API = "libpod"  # podman's own API (its service)
OLDEST_ENGINE_API = (1, 25)  # filters as lists, RootFS in inspect: Docker 1.13 on
PING_TIMEOUT = 5.0  # seconds for a socket to answer its first request
TIMEOUT = 120.0  # seconds for any answer: a listing on a loaded daemon takes seconds


class ApiError(Exception):
    """An API request failed: ``status`` is the HTTP status, 0 when no answer came (the
    socket refused, closed or timed out)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"{self.status or 'no answer'}: {self.message}"


@dataclass(frozen=True, slots=True)
class EngineApi:
    """The API of one engine on one unix socket: ``path``, and ``prefix``, the versioned
    path every request starts with (``/v1.41``, ``/v4.3.1/libpod``); made by
    :func:`open_api`."""

    path: str
    prefix: str
    timeout: float = TIMEOUT

    def inspect_image(self, reference: str) -> dict[str, Any] | None:
        """What ``image inspect`` prints for one image, or None when there is none of
        that name or id."""
        status, data = self._request("GET", f"/images/{_quoted(reference)}/json")
        if status == 404:
            return None
        found = self._answer(status, data)
        if not isinstance(found, dict) or not isinstance(found.get("Id"), str):
            raise ApiError(status, "an image inspection without an id")
        return found

    def image_ids(self, filters: Sequence[str] = ()) -> list[str]:
        """The ids of the images ``images --filter`` lists for ``filters`` (``label=K``,
        ``label=K=V``, ``reference=PATTERN``), newest first, each once."""
        query = {"filters": json.dumps(filter_map(filters))} if filters else {}
        found = self._answer(*self._request("GET", "/images/json", query))
        if not isinstance(found, list):
            raise ApiError(200, "an image list that is no list")
        summaries = [item for item in found if isinstance(item, dict) and item.get("Id")]
        summaries.sort(key=lambda item: _number(item.get("Created")), reverse=True)
        return list(dict.fromkeys(str(item["Id"]) for item in summaries))

    def tag_image(self, source: str, repository: str, tag: str) -> None:
        """Give the image ``source`` the name ``repository:tag``."""
        query = {"repo": repository, "tag": tag}
        self._answer(*self._request("POST", f"/images/{_quoted(source)}/tag", query))

    def remove_name(self, reference: str) -> None:
        """What ``rmi`` does with ``reference``: the name goes, and the image with it when
        that was its last name."""
        self._answer(*self._request("DELETE", f"/images/{_quoted(reference)}"))

    def version(self) -> dict[str, Any]:
        """The engine's ``/version`` answer."""
        found = self._answer(*self._request("GET", "/version"))
        return found if isinstance(found, dict) else {}

    def _request(
        self, method: str, path: str, query: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        target = self.prefix + path
        if query:
            target += "?" + urllib.parse.urlencode(query)
        return request(self.path, method, target, self.timeout)[:2]

    @staticmethod
    def _answer(status: int, data: bytes) -> Any:
        """The JSON of a successful answer; any other raises :class:`ApiError`."""
        try:
            found = json.loads(data) if data.strip() else None
        except ValueError:
            found = None
            if 200 <= status < 300:
                raise ApiError(status, "an answer that is not JSON") from None
        if not 200 <= status < 300:
            message = found.get("message") if isinstance(found, dict) else None
            raise ApiError(status, str(message or data[:200].decode(errors="replace")))
        return found


def request(
    path: str, method: str, target: str, timeout: float = TIMEOUT
) -> tuple[int, bytes, Mapping[str, str]]:
    """One HTTP/1.1 request on the unix socket ``path``: status, body and headers (names
    in lower case) of the answer; :class:`ApiError` with status 0 when none came."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        sock.sendall(f"{head}Content-Length: 0\r\n\r\n".encode("ascii"))
        return _Answer(sock).read()
    except (OSError, ValueError, UnicodeError) as error:
        raise ApiError(0, f"{path}: {error or type(error).__name__}") from None
    finally:
        sock.close()


class _Answer:
    """An HTTP/1.1 answer read from a socket: status line, headers, then a body of its
    ``Content-Length``, in chunks, or up to the end (the request asked to close)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def read(self) -> tuple[int, bytes, Mapping[str, str]]:
        status_line = self._line()
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/") or not rest[:3].isdigit():
            raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunks()
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        else:
            body = self._rest()
        return int(rest[:3]), body, headers

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def _line(self) -> str:
        while b"\r\n" not in self.buffer:
            if len(self.buffer) > 65536 or not self._fill():
                raise ValueError("the answer ended inside its head")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line.decode("latin-1")

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ValueError("the answer ended early")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _chunks(self) -> bytes:
        parts = []
        while size := int(self._line().partition(";")[0].strip(), 16):
            parts.append(self._exactly(size))
            self._exactly(2)  # the CRLF after each chunk
        while self._line():  # trailers, up to an empty line
            pass
        return b"".join(parts)

    def _rest(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data


def open_api(path: str | None, flavour: str, timeout: float = PING_TIMEOUT) -> EngineApi | None:
    """The API on the unix socket ``path`` when an engine answers there, at the version
    it speaks (``flavour``: :data:`ENGINE_API` or :data:`LIBPOD_API`); None when there is
    no socket, it may not be opened, nothing answers, or not that API."""
    if not path or not Path(path).exists():
        return None
    try:
        status, _, headers = request(path, "GET", "/_ping", timeout)
    except ApiError:
        return None
    if status != 200:
        return None
    if flavour == LIBPOD_API:
        version = headers.get("libpod-api-version", "")
        return EngineApi(path, f"/v{version}/libpod") if _version(version) else None
    version = headers.get("api-version", "")
    if not _version(version):
        try:
            found = EngineApi(path, "", timeout).version()
        except ApiError:
            return None
        version = str(found.get("ApiVersion") or "")
    numbers = _version(version)
    if not numbers or numbers < OLDEST_ENGINE_API:
        return None
    return EngineApi(path, f"/v{version}")


def filter_map(filters: Sequence[str]) -> dict[str, list[str]]:
    """Command-line filters (``label=K=V``) as the API's ``filters`` parameter."""
    found: dict[str, list[str]] = {}
    for item in filters:
        kind, _, value = item.partition("=")
        found.setdefault(kind, []).append(value)
    return found


def docker_socket(env: Mapping[str, str]) -> str | None:
    """The local unix socket the docker program talks to with ``env``, or None when it
    talks to another kind of endpoint, or it cannot be told without asking the program.

    ``DOCKER_HOST`` first, then the context ``DOCKER_CONTEXT`` or the config file's
    ``currentContext`` names (``$DOCKER_CONFIG``, default ``~/.docker``), then the
    daemon's default socket."""
    host = env.get("DOCKER_HOST", "")
    if not host:
        config = Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME", "/root"), ".docker"))
        context = env.get("DOCKER_CONTEXT") or _current_context(config)
        if context is None:
            return None
        if context in ("", "default"):
            return "/var/run/docker.sock"
        host = _context_host(config, context)
    return _unix_path(host)


def podman_socket(env: Mapping[str, str], user: int) -> str | None:
    """The local unix socket of the podman service that works on the storage the podman
    program uses with ``env`` (run by user id ``user``), or None: ``CONTAINER_HOST`` when
    it names a unix socket (``CONTAINER_CONNECTION``: none, the program is remote), else
    root's ``/run/podman/podman.sock`` or a user's ``$XDG_RUNTIME_DIR/podman/podman.sock``."""
    if env.get("CONTAINER_CONNECTION"):
        return None
    host = env.get("CONTAINER_HOST", "")
    if host:
        return _unix_path(host)
    if user == 0:
        return "/run/podman/podman.sock"
    runtime = env.get("XDG_RUNTIME_DIR", "")
    return str(Path(runtime, "podman", "podman.sock")) if runtime else None


def _unix_path(host: str) -> str | None:
    scheme, _, rest = host.partition("://")
    return rest if scheme == "unix" and rest else None


def _current_context(config: Path) -> str | None:
    """The config file's ``currentContext`` ("" when there is no file or none is set);
    None when the file cannot be read."""
    try:
        data = json.loads((config / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ""
    except (OSError, ValueError):
        return None
    return str(data.get("currentContext") or "") if isinstance(data, dict) else None


def _context_host(config: Path, context: str) -> str:
    """The docker endpoint of the context called ``context`` ("" when unknown)."""
    digest = hashlib.sha256(context.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest / "meta.json"
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        return str(data["Endpoints"]["docker"]["Host"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _quoted(name: str) -> str:
    """An image name or id in a request path (its ``/`` stay: the API's routes take them)."""
    return urllib.parse.quote(name, safe="/:@")


def _version(text: str) -> tuple[int, ...]:
    """``1.41`` as (1, 41); () when it is not a version."""
    parts = text.split(".")
    return tuple(int(part) for part in parts) if all(p.isdigit() for p in parts) else ()


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
