"""URLs that users and files give jetforge (package indexes, mirrors, what pip got a file
from): parsed once with :mod:`urllib.parse`, whatever it raises turned into a sentence."""

from __future__ import annotations

import re
import urllib.parse

WEB = ("http", "https")


def url_problem(text: str, schemes: tuple[str, ...] = WEB) -> str:
    """Why ``text`` is not a URL of one of ``schemes`` with a host (a ``file:`` URL needs
    none), or "" when it is one: ASCII, no whitespace or control characters, a port (if
    any) that is a number up to 65535."""
    if not text.isascii() or not text.isprintable() or any(char.isspace() for char in text):
        return "holds whitespace, control or non-ASCII characters"
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - read for its check: a port that is no number raises
    except ValueError as error:
        return f"is not a URL ({error})"
    if parts.scheme not in schemes:
        return "does not start with " + " or ".join(f"{scheme}:" for scheme in schemes)
    if parts.scheme != "file" and not parts.hostname:
        return "has no host"
    return ""


def redact(url: str) -> str:
    """``url`` with any user and password replaced by ``***`` (also when it is no valid
    URL: it is said in a message then)."""
    return _USER_INFO.sub(r"\1***@", url, count=1)


_USER_INFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
