"""URLs that users and files give jetforge (package indexes, mirrors, what pip got a file
from): parsed once with :mod:`urllib.parse`, whatever it raises turned into a sentence."""

from __future__ import annotations

import re
import urllib.parse

WEB = ("http", "https")
MAX_PORT = 65535


def url_problem(text: str, schemes: tuple[str, ...] = WEB) -> str:
    """Why ``text`` is not a URL of one of ``schemes`` with a host (a ``file:`` URL needs
    none), or "" when it is one: ASCII, no whitespace or control characters, a port (if
    any) that is a number 1-65535."""
    if not text.isascii() or not text.isprintable() or any(char.isspace() for char in text):
        return "holds whitespace, control or non-ASCII characters"
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError as error:
        return f"is not a URL ({error})"
    if port := port_problem(parts.netloc):
        return f"is not a URL ({port})"
    if parts.scheme not in schemes:
        return "does not start with " + " or ".join(f"{scheme}:" for scheme in schemes)
    if parts.scheme != "file" and not parts.hostname:
        return "has no host"
    return ""


def port_problem(netloc: str) -> str:
    """Why the port of ``netloc`` (``host:port``, ``user@[::1]:port``, a registry's host)
    is not one a connection can be made to, or "" when it is one or there is none: a
    number 1-65535 (0 is no port to connect to)."""
    address = netloc.rpartition("@")[2].rpartition("]")[2]
    colon, port = address.partition(":")[1:]
    if not colon or not port:
        return ""
    if port.isascii() and port.isdigit() and 1 <= int(port) <= MAX_PORT:
        return ""
    return f"port {port} is not a number 1-{MAX_PORT}"


def redact(url: str) -> str:
    """``url`` with any user and password replaced by ``***`` (also when it is no valid
    URL: it is said in a message then)."""
    return _USER_INFO.sub(r"\1***@", url, count=1)


_USER_INFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
