"""Bounded HTTP requests: each exchange within a deadline, each body within a size limit.

``requests`` bounds each read of a socket, not an exchange: a server that sends one header
line a second, or a body without end, holds its caller for ever or fills its memory.
:func:`fetch` bounds both, the one way jetforge talks HTTP to registries and token services:

- **Time.** The whole exchange (connecting, the headers, every redirect, the body) runs in
  a daemon thread that the caller waits for at most ``deadline`` seconds; past it the
  caller gets :class:`FetchError` (``no answer within N s``) and goes on. ``requests``
  cannot end a read that is under way, so the thread is left to end by itself: each read
  it makes waits at most ``deadline`` too and it reads no body past the deadline, so it
  ends once its server pauses or stops (at the latest with jetforge).
- **Size.** A body is read only for a 2xx answer, streamed, and refused past ``limit``
  bytes (at once when its ``Content-Length`` says so).
- **Redirects** are followed here, at most :data:`MAX_REDIRECTS`, only to ``http`` and
  ``https`` URLs (a redirect to ``file:`` and the like is refused, in those words), without
  the credentials when they lead to another host; their bodies are never read.
- **Unreadable answers** (headers without end: more than 100 lines, or a line over 64 KiB;
  a connection closed before the answer) are said as such, not as "cannot connect".

``requests`` is imported where a request is made (see :mod:`jetforge.host.registry`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from jetforge.host.files import MIB

if TYPE_CHECKING:
    import requests

MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SHOWN_URL = 100  # characters of a URL a message quotes


class FetchError(Exception):
    """An exchange that failed: ``problem`` says how, in a few words; ``tls``: in the TLS
    handshake (something answered, but this host's trust, or its scheme, disagrees)."""

    def __init__(self, problem: str, *, tls: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.tls = tls


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: its status, URL (after redirects), headers, ``Link`` entries and
    body (empty unless the status is 2xx and the body was asked for)."""

    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes = b""
    links: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the status is below 400, as ``requests`` has it."""
        return self.status < 400


def size_text(limit: int) -> str:
    """``8 MiB``, ``512 KiB`` or ``100 bytes``."""
    if limit >= MIB and limit % MIB == 0:
        return f"{limit // MIB} MiB"
    if limit >= 1024 and limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"


def describe_failure(error: requests.RequestException) -> str:
    """One short line for a connection problem (no pool or URL noise)."""
    import requests  # here, not at the top: see the module docstring

    if isinstance(error, requests.Timeout):
        return "timed out"
    unread = _unread_answer(error)
    if unread:
        return unread
    text = str(error)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return f"cannot connect ({errno[1].strip()})"
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS handshake failed (is it an http:// registry, or is its CA untrusted?)"
    if isinstance(error, requests.ConnectionError):
        return "cannot connect"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "the answer broke off"
    invalid = (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
    )
    if isinstance(error, invalid):
        return "invalid URL"
    return type(error).__name__


def _unread_answer(error: BaseException) -> str:
    """Why the server's answer could not be read, when it connected and answered with
    something ``http.client`` refuses (headers without end, no status line), or closed
    the connection instead; "" for any other error."""
    import http.client  # with requests: see the module docstring

    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, http.client.RemoteDisconnected):
            return "connected, but closed the connection without answering"
        if isinstance(current, http.client.HTTPException):
            return f"connected, but its answer cannot be read ({current})"
        links = (*current.args, current.__cause__, current.__context__)
        pending += [link for link in links if isinstance(link, BaseException)]
    return ""


def fetch(
    session: requests.Session,
    url: str,
    *,
    deadline: float,
    limit: int,
    what: str = "answer",
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    body: bool = True,
) -> Answer:
    """One exchange with ``url`` within ``deadline`` seconds, its body (``what``, for
    messages) within ``limit`` bytes; :class:`FetchError` otherwise (see the module's
    text). ``body``: whether to read the body of a 2xx answer at all."""
    import requests  # here, not at the top (and not first in the thread: the import lock)

    outcome: list[Answer | BaseException] = []
    stop = time.monotonic() + deadline

    def work() -> None:
        try:
            outcome.append(
                _exchange(
                    session,
                    url,
                    _Request(method, dict(headers or {}), params, data, auth),
                    deadline,
                    stop,
                    limit if body else -1,
                    what,
                )
            )
        except requests.RequestException as error:
            tls = isinstance(error, requests.exceptions.SSLError)
            outcome.append(FetchError(describe_failure(error), tls=tls))
        except Exception as error:  # raised again in the caller's thread
            outcome.append(error)

    thread = threading.Thread(target=work, name="jetforge-fetch", daemon=True)
    thread.start()
    thread.join(deadline)
    if not outcome:
        raise FetchError(f"no answer within {deadline:g} s")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


@dataclass(slots=True)
class _Request:
    method: str
    headers: dict[str, str]
    params: Mapping[str, str] | None
    data: Mapping[str, str] | None
    auth: tuple[str, str] | None


def _exchange(
    session: requests.Session,
    url: str,
    request: _Request,
    deadline: float,
    stop: float,
    limit: int,
    what: str,
) -> Answer:
    """The exchange, redirects followed (in the fetching thread); ``limit`` -1: no body."""
    for _ in range(MAX_REDIRECTS + 1):
        response = session.request(
            request.method,
            url,
            headers=request.headers,
            params=request.params,
            data=request.data,
            auth=request.auth,
            stream=True,
            allow_redirects=False,
            timeout=deadline,
        )
        with response:
            status = response.status_code
            if status in _REDIRECTS and "location" in response.headers:
                url = _follow(url, response.headers["location"], request, status)
                continue
            content = b""
            if 200 <= status < 300 and limit >= 0:
                content = _read(response, limit, stop, what, deadline)
            links: dict[str, Any] = response.links
            return Answer(status, response.url, response.headers, content, links)
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _follow(url: str, location: str, request: _Request, status: int) -> str:
    """Where a redirect leads; ``request`` changed for it (no credentials to another host,
    a GET after a 303, or a POST's 301 or 302, as browsers and ``requests`` do)."""
    try:
        target = urljoin(url, location)
        before, after = urlsplit(url), urlsplit(target)
        after.port  # noqa: B018 - a bad port raises here, not in the next request
    except ValueError:
        raise FetchError(f"redirected to an invalid URL ({_shown(location)})") from None
    if after.scheme not in ("http", "https"):
        raise FetchError(f"refused a redirect to a non-HTTP URL ({_shown(target)})")
    if after.hostname != before.hostname or (before.scheme, after.scheme) == ("https", "http"):
        request.headers.pop("Authorization", None)
        request.auth = None
    if status == 303 or (status in (301, 302) and request.method == "POST"):
        request.method, request.data = "GET", None
    request.params = None  # they are in the URL the server answered for
    return target


def _read(
    response: requests.Response, limit: int, stop: float, what: str, deadline: float
) -> bytes:
    """The body, streamed: at most ``limit`` bytes, and none read past ``stop``."""
    too_large = FetchError(f"{what} is larger than {size_text(limit)}")
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large
        if time.monotonic() > stop:
            raise FetchError(f"no answer within {deadline:g} s")
        parts.append(chunk)
    return b"".join(parts)


def _shown(url: str) -> str:
    return url if len(url) <= _SHOWN_URL else url[: _SHOWN_URL - 1] + "…"
