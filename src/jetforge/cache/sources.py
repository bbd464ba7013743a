"""Package sources of builds: which indexes, in which order, and which of them answer.

A build gets an ordered list: the local cache (``jetforge cache serve``), the configured
mirrors (``cache_urls`` in the config file or ``JETFORGE_CACHE_URLS``), then PyPI
(``pypi_url`` / ``JETFORGE_PYPI_URL``). Each is probed before the build (and by
``jetforge doctor``) with a HEAD of its index URL; one that does not answer is left out,
so pip never waits on it.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jetforge.cache.control import PROBE_SECONDS, ServerState, is_alive
from jetforge.core.urls import redact
from jetforge.host.settings import check_index_url

PYPI_URL = "https://pypi.org/simple/"


SourceKind = Literal["local", "mirror", "pypi"]


@dataclass(frozen=True, slots=True)
class Source:
    """One package index a build may use."""

    url: str
    kind: SourceKind

    @property
    def shown(self) -> str:
        """The URL without any user or password in it, for messages."""
        return redact(self.url)

    @property
    def described(self) -> str:
        """``local cache URL``, ``mirror URL`` or ``PyPI URL``."""
        name = {"local": "local cache", "mirror": "mirror", "pypi": "PyPI"}[self.kind]
        return f"{name} {self.shown}"


def index_url(url: str) -> str:
    """An index URL with exactly one trailing slash."""
    return url.rstrip("/") + "/"


def order_sources(local: str | None, mirrors: Sequence[str], pypi: str) -> tuple[Source, ...]:
    """Local cache, mirrors in the order given, then PyPI; each URL once."""
    found: dict[str, Source] = {}
    ordered: list[tuple[str | None, SourceKind]] = [(local, "local")]
    ordered += [(mirror, "mirror") for mirror in mirrors]
    ordered.append((pypi, "pypi"))
    for url, kind in ordered:
        if url and index_url(url) not in found:
            found[index_url(url)] = Source(index_url(url), kind)
    return tuple(found.values())


def mirrors_from(configured: Sequence[str], env: Mapping[str, str]) -> tuple[str, ...]:
    """``JETFORGE_CACHE_URLS`` (comma- or space-separated; set but empty: none) when set,
    else the config file's ``cache_urls``."""
    value = env.get("JETFORGE_CACHE_URLS")
    if value is None:
        return tuple(configured)  # checked as the config file was read
    found = tuple(item for item in re.split(r"[,\s]+", value) if item)
    for url in found:
        check_index_url(url, "JETFORGE_CACHE_URLS: entry")
    return found


def pypi_from(configured: str | None, env: Mapping[str, str]) -> str:
    """``JETFORGE_PYPI_URL``, else the config file's ``pypi_url``, else PyPI; an empty value
    or ``off`` leaves PyPI out."""
    given = env.get("JETFORGE_PYPI_URL")
    value = given if given is not None else configured if configured is not None else PYPI_URL
    if value.strip().lower() in ("", "off"):
        return ""
    if given is not None:
        check_index_url(given.strip(), "JETFORGE_PYPI_URL", "or '' or 'off' to leave PyPI out")
    return value.strip()


@dataclass(frozen=True, slots=True)
class Probe:
    """Whether a source answered before the build, and why not."""

    source: Source
    up: bool
    problem: str = ""


def probe_sources(
    sources: Sequence[Source], env: Mapping[str, str], timeout: float = PROBE_SECONDS
) -> tuple[Probe, ...]:
    """Ask every source at once (HEAD of its index URL) with ``timeout`` seconds each.

    Any HTTP answer below 500 counts as up (a mirror may refuse HEAD or listing); no
    connection, a time-out or a server error counts as down. Proxies and the CA bundle
    come from ``env`` as they do for pip; loopback addresses are reached directly.
    """
    if not sources:
        return ()
    from concurrent.futures import ThreadPoolExecutor  # with sources only: start-up time

    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        return tuple(pool.map(lambda source: _probe(source, env, timeout), sources))


def is_cache_off(env: Mapping[str, str]) -> bool:
    """Whether ``JETFORGE_CACHE=off`` keeps builds away from every package cache."""
    return env.get("JETFORGE_CACHE", "").lower() == "off"


def probe_build_sources(
    state: ServerState | None,
    mirrors: Sequence[str],
    pypi: str,
    platform: str,
    env: Mapping[str, str],
) -> tuple[Probe, ...]:
    """A build's sources in order (local cache, mirrors, PyPI), each probed.

    A local cache that was started but no longer runs is down ("not running") without
    asking its port, where something else may listen now.
    """
    local = state.index_url(platform) if state is not None else None
    sources = order_sources(local, mirrors, pypi)
    if state is not None and not is_alive(state.pid):
        return (Probe(sources[0], False, "not running"), *probe_sources(sources[1:], env))
    return probe_sources(sources, env)


def _probe(source: Source, env: Mapping[str, str], timeout: float) -> Probe:
    import ssl  # here, not at the top: start-up time
    import urllib.error
    import urllib.request

    parts = urllib.parse.urlsplit(source.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Probe(source, False, "not an http(s) URL")
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler(_proxies(parts.hostname, env))
    ]
    bundle = next(
        (env[v] for v in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE") if env.get(v)), None
    )
    if parts.scheme == "https":
        context = ssl.create_default_context(
            cafile=bundle if bundle and Path(bundle).is_file() else None
        )
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    # urllib takes no user:password in a URL: send them as Basic credentials instead.
    url, headers = source.url, {}
    if parts.username is not None:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        url = urllib.parse.urlunsplit(
            parts._replace(netloc=host + (f":{parts.port}" if parts.port else ""))
        )
        user = urllib.parse.unquote(parts.username)
        secret = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(url, method="HEAD", headers=headers)  # noqa: S310
    try:
        with opener.open(request, timeout=timeout):
            return Probe(source, True)
    except urllib.error.HTTPError as error:
        error.close()
        return Probe(source, error.code < 500, f"HTTP {error.code}")
    except urllib.error.URLError as error:
        return Probe(source, False, _reason(error.reason, timeout))
    except OSError as error:
        return Probe(source, False, _reason(error, timeout))


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return f"no answer within {timeout:g} s"
    return str(reason)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _proxies(host: str, env: Mapping[str, str]) -> dict[str, str]:
    if is_loopback(host):
        return {}
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
    for entry in (item.strip().lstrip(".").lower() for item in no_proxy.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return {}
    found = {}
    for scheme in ("http", "https"):
        value = env.get(f"{scheme}_proxy") or env.get(f"{scheme.upper()}_PROXY")
        if value:
            found[scheme] = value
    return found
