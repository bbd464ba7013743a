"""A client for the OCI distribution API: tag lists, manifests and image configs.

Every request is bounded (:func:`jetforge.host.fetch.fetch`): an overall deadline, the
client's ``timeout``, for connecting, headers, redirects and body together, and a size limit
per kind of answer (:data:`LIMITS`); past either, the registry's :class:`RegistryError` says
which. Authentication follows what registries ask
for in their ``WWW-Authenticate`` answer: none, HTTP basic, or the bearer-token flow of
Docker Hub and NGC, with credentials from the engines' own config files
(:mod:`jetforge.host.credentials`). Loopback registries are spoken to over ``http://``, all others
over ``https://``. ``requests`` is imported where a request is made, not with the module:
it is a tenth of a second that commands which never reach a registry (``list``, ``show``,
``build --simulate``) do not pay.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from jetforge.core.tags import ImageRef, reference_problem
from jetforge.core.urls import port_problem
from jetforge.errors import RegistryError, UsageError
from jetforge.host.credentials import DOCKER_HUB, HUB_ALIASES, HUB_API, Credentials, CredentialStore
from jetforge.host.fetch import Answer, FetchError, fetch
from jetforge.host.files import MIB

if TYPE_CHECKING:
    import requests

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)

_OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
_MAX_PAGES = 50
REGISTRIES_VARIABLE = "JETFORGE_REGISTRIES"
# The most jetforge reads of each kind of answer (all JSON). Manifests: what the
# distribution spec asks registries to accept; the others hold a few KiB in practice.
TAG_LIST, MANIFEST, IMAGE_CONFIG, TOKEN = "tag list", "manifest", "image config", "token"
LIMITS = {TAG_LIST: 8 * MIB, MANIFEST: 4 * MIB, IMAGE_CONFIG: 8 * MIB, TOKEN: 1 * MIB}
DEADLINE = 10.0  # seconds a request may take in all, unless the client is given another


def registry_scheme(host: str) -> str:
    """``http`` for loopback registries (``localhost``, 127.0.0.0/8, ``::1``), else ``https``."""
    name = re.sub(r":\d+$", "", host).strip("[]").lower()
    if name == "localhost":
        return "http"
    try:
        return "http" if ipaddress.ip_address(name).is_loopback else "https"
    except ValueError:
        return "https"


def oci_architecture(arch: str) -> str:
    """The OCI name of an architecture (``x86_64`` → ``amd64``, ``aarch64`` → ``arm64``)."""
    return _OCI_ARCH.get(arch, arch)


@dataclass(frozen=True, slots=True)
class RegistryLocation:
    """A registry and a namespace in it, e.g. ``127.0.0.1:5000/team`` or ``nvcr.io/nvidia``."""

    host: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"{self.host}/{self.namespace}" if self.namespace else self.host

    def repository(self, name: str) -> ImageRef:
        """The repository of image ``name`` in this location (``library/`` on Docker Hub)."""
        path = f"{self.namespace}/{name}" if self.namespace else name
        if self.host == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        return ImageRef(f"{self.host}/{path}")


def parse_registry_location(text: str) -> RegistryLocation:
    """``127.0.0.1:5000/team``, ``nvcr.io/nvidia``, ``localhost:5000`` or ``dustynv`` (Docker
    Hub); a leading ``http://``/``https://`` is ignored."""
    value = re.sub(r"^https?://", "", text.strip()).strip("/")
    if not value:
        raise UsageError(f"registry '{text}' is empty (e.g. '127.0.0.1:5000/team')")
    first, _, rest = value.partition("/")
    if "." in first or ":" in first or first == "localhost":
        host = DOCKER_HUB if first in HUB_ALIASES else first
        location = RegistryLocation(host, rest)
    else:
        location = RegistryLocation(DOCKER_HUB, value)
    if value.startswith("-") or reference_problem(location.repository("x")):
        raise UsageError(
            f"registry '{text}' is not a registry and namespace (e.g. '127.0.0.1:5000/team')"
        )
    if problem := port_problem(location.host):
        raise UsageError(f"registry '{text}': {problem}")
    return location


def registry_locations(
    configured: Sequence[str], env: Mapping[str, str]
) -> tuple[RegistryLocation, ...]:
    """The registries to search: ``JETFORGE_REGISTRIES`` (comma-separated) when set, else the
    config file's ``registries``; one that is not a registry is a usage error naming
    which of the two gave it."""
    given = env.get(REGISTRIES_VARIABLE, "").strip()
    texts = [item for item in given.split(",") if item.strip()] if given else list(configured)
    try:
        return tuple(dict.fromkeys(parse_registry_location(text) for text in texts))
    except UsageError as error:
        source = REGISTRIES_VARIABLE if given else "'registries' of the config file"
        raise UsageError(f"{source}: {error}") from None


def _split_reference(reference: ImageRef) -> tuple[str, str]:
    """``(host, path)`` of a repository; no registry means Docker Hub."""
    host = reference.registry or DOCKER_HUB
    host = DOCKER_HUB if host in HUB_ALIASES else host
    path = reference.path
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return host, path


# --- the distribution API -----------------------------------------------------------------


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…",scope="…"`` → ``("bearer", {realm, service, scope})``."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        match[1].lower(): match[2] if match[2] is not None else match[3]
        for match in re.finditer(r'([A-Za-z][\w-]*)\s*=\s*(?:"([^"]*)"|([^\s,]*))', rest)
    }
    return scheme.lower(), params


@dataclass(frozen=True, slots=True)
class RemoteImage:
    """What a registry tells about one image: its manifest digest and its config."""

    reference: ImageRef
    digest: str
    architecture: str
    labels: Mapping[str, str]
    created: str


class RegistryClient:
    """Reads tag lists, manifests and configs from OCI distribution registries; each
    request within ``timeout`` seconds (default :data:`DEADLINE`), all told
    (:mod:`jetforge.host.fetch`)."""

    def __init__(
        self,
        credentials: CredentialStore,
        *,
        timeout: float | None = None,
        session: requests.Session | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        import requests  # here, not at the top: see the module docstring

        self.credentials = credentials
        self.timeout = DEADLINE if timeout is None else timeout
        self.session = session or requests.Session()
        if ca_bundle:
            self.session.verify = ca_bundle
        self._tokens: dict[tuple[str, str], str] = {}

    def list_tags(self, repository: ImageRef) -> list[str]:
        """Every tag of ``repository``; empty when the repository does not exist."""
        host, path = _split_reference(repository)
        url: str | None = f"{self._base(host)}/v2/{path}/tags/list"
        tags: list[str] = []
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            answer = self._get(host, path, url, TAG_LIST)
            if answer.status == 404:
                return tags
            listed = self._json(host, answer).get("tags")
            if isinstance(listed, list):
                tags += [tag for tag in listed if isinstance(tag, str)]
            following = _mapping(answer.links.get("next")).get("url")
            url = urljoin(url, following) if isinstance(following, str) and following else None
        return tags

    def inspect(self, reference: ImageRef, arch: str) -> RemoteImage | None:
        """The config of ``reference`` for architecture ``arch`` (``aarch64`` or ``arm64``);
        None when the tag, or an entry of its index for ``arch``, does not exist."""
        host, path = _split_reference(reference)
        wanted = oci_architecture(arch)
        found = self._manifest(host, path, reference.digest or reference.tag or "latest")
        if found is None:
            return None
        media_type, manifest, digest = found
        if media_type in INDEX_TYPES or "manifests" in manifest:
            listed = manifest.get("manifests")
            entries = [
                entry
                for entry in (listed if isinstance(listed, list) else ())
                if isinstance(entry, dict)
                and isinstance(entry.get("digest"), str)
                and _mapping(entry.get("platform")).get("architecture") == wanted
                and _mapping(entry.get("platform")).get("os", "linux") == "linux"
            ]
            if not entries:
                return None
            digest = str(entries[0]["digest"])
            found = self._manifest(host, path, digest)
            if found is None:
                return None
            media_type, manifest, _ = found
        config_digest = _mapping(manifest.get("config")).get("digest")
        if not config_digest or not isinstance(config_digest, str):
            raise RegistryError(host, f"{path}: unsupported manifest type {media_type or '?'}")
        url = f"{self._base(host)}/v2/{path}/blobs/{config_digest}"
        answer = self._get(host, path, url, IMAGE_CONFIG)
        if answer.status == 404:
            return None
        config = self._json(host, answer)
        labels = _mapping(_mapping(config.get("config")).get("Labels"))
        return RemoteImage(
            reference=reference,
            digest=digest,
            architecture=str(config.get("architecture") or ""),
            labels={str(key): str(value) for key, value in labels.items()},
            created=str(config.get("created") or ""),
        )

    def _manifest(
        self, host: str, path: str, reference: str
    ) -> tuple[str, dict[str, Any], str] | None:
        url = f"{self._base(host)}/v2/{path}/manifests/{reference}"
        answer = self._get(host, path, url, MANIFEST, accept=", ".join(MANIFEST_TYPES))
        if answer.status == 404:
            return None
        manifest = self._json(host, answer)
        media_type = answer.headers.get("Content-Type", "").split(";")[0].strip()
        media_type = str(manifest.get("mediaType") or media_type)
        digest = answer.headers.get("Docker-Content-Digest") or (
            "sha256:" + hashlib.sha256(answer.body).hexdigest()
        )
        return media_type, manifest, digest

    @staticmethod
    def _base(host: str) -> str:
        return f"{registry_scheme(host)}://{HUB_API if host == DOCKER_HUB else host}"

    def _get(self, host: str, path: str, url: str, kind: str, accept: str = "") -> Answer:
        """GET (an answer of ``kind``) with the token or credentials the registry asks for;
        404 is returned, other failures raise :class:`RegistryError`."""
        scope = f"repository:{path}:pull"
        headers = {"Accept": accept} if accept else {}
        authorization = self._tokens.get((host, scope))
        what = f"the {kind} of {path}"
        answer = self._send(host, url, headers, authorization, kind, what)
        if answer.status == 401:
            challenge = answer.headers.get("WWW-Authenticate", "")
            authorization = self._authorize(host, scope, challenge)
            if authorization is not None:
                self._tokens[(host, scope)] = authorization
                answer = self._send(host, url, headers, authorization, kind, what)
        if answer.status == 401:
            login = "" if host == DOCKER_HUB else f" {host}"
            raise RegistryError(
                host, f"not authorized for {path} (log in with 'docker login{login}')"
            )
        if answer.status != 404 and not 200 <= answer.status < 300:
            raise RegistryError(host, f"HTTP {answer.status} for {path}")
        return answer

    def _send(
        self,
        host: str,
        url: str,
        headers: Mapping[str, str],
        authorization: str | None,
        kind: str,
        what: str,
    ) -> Answer:
        sent = dict(headers)
        if authorization:
            sent["Authorization"] = authorization
        try:
            return fetch(
                self.session,
                url,
                deadline=self.timeout,
                limit=LIMITS[kind],
                what=what,
                headers=sent,
            )
        except FetchError as error:
            raise RegistryError(host, error.problem) from None

    def _authorize(self, host: str, scope: str, challenge: str) -> str | None:
        """The ``Authorization`` value that answers ``challenge``, or None."""
        scheme, params = parse_challenge(challenge)
        credentials = self.credentials.lookup(host)
        if scheme == "basic":
            if credentials is None or not credentials.username:
                return None
            pair = f"{credentials.username}:{credentials.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        if scheme != "bearer" or not params.get("realm"):
            return None
        token = self._token(host, params, params.get("scope") or scope, credentials)
        return f"Bearer {token}"

    def _token(
        self, host: str, params: Mapping[str, str], scope: str, credentials: Credentials | None
    ) -> str:
        realm = params["realm"]
        if urlsplit(realm).scheme not in ("http", "https"):
            shown = realm if len(realm) <= 100 else realm[:99] + "…"
            raise RegistryError(host, f"refused a token service with a non-HTTP URL ({shown})")
        query = {"scope": scope, **({"service": params["service"]} if "service" in params else {})}
        bounds: dict[str, Any] = {"deadline": self.timeout, "limit": LIMITS[TOKEN]}
        try:
            if credentials is not None and credentials.identity_token:
                form = {
                    **query,
                    "grant_type": "refresh_token",
                    "refresh_token": credentials.identity_token,
                    "client_id": "jetforge",
                }
                answer = fetch(
                    self.session, realm, method="POST", data=form, what="the token", **bounds
                )
            else:
                auth = (
                    (credentials.username, credentials.password)
                    if credentials is not None and credentials.username
                    else None
                )
                answer = fetch(
                    self.session, realm, params=query, auth=auth, what="the token", **bounds
                )
        except FetchError as error:
            raise RegistryError(host, f"token service: {error.problem}") from None
        if answer.status in (401, 403):
            raise RegistryError(host, f"token service refused the credentials for {scope}")
        if not 200 <= answer.status < 300:
            raise RegistryError(host, f"token service: HTTP {answer.status}")
        data = self._json(host, answer)
        token = data.get("token") or data.get("access_token")
        if not token:
            raise RegistryError(host, "token service answered without a token")
        return str(token)

    @staticmethod
    def _json(host: str, answer: Answer) -> dict[str, Any]:
        try:
            data = json.loads(answer.body)
        except (ValueError, RecursionError):  # RecursionError: nested beyond the parser
            raise RegistryError(host, f"invalid JSON from {answer.url}") from None
        if not isinstance(data, dict):
            raise RegistryError(host, f"unexpected answer from {answer.url}")
        return data


def _mapping(value: object) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one (a registry may send anything)."""
    return value if isinstance(value, dict) else {}


# --- is it up -----------------------------------------------------------------------------


def version_url(location: RegistryLocation) -> str:
    """The ``/v2/`` endpoint of a registry (the distribution API's version check)."""
    host = HUB_API if location.host == DOCKER_HUB else location.host
    return f"{registry_scheme(host)}://{host}/v2/"


@dataclass(frozen=True, slots=True)
class RegistryProbe:
    """Whether a registry is up: ``problem`` is empty when it answers like one; else a
    short reason, and ``tls`` tells whether it was the TLS handshake (something answers,
    but this host's trust or the scheme disagrees: the engines have their own trust)."""

    problem: str = ""
    tls: bool = False


def probe_registry(url: str, deadline: float) -> RegistryProbe:
    """Ask the ``/v2/`` endpoint ``url``, within ``deadline`` seconds: up when it answers
    other than 404 or 5xx (an authentication request counts as up)."""
    import requests  # here, not at the top: see the module docstring

    with requests.Session() as session:
        try:
            answer = fetch(session, url, deadline=deadline, limit=0, body=False)
        except FetchError as error:
            return RegistryProbe(error.problem, error.tls)
    if answer.status >= 500 or answer.status == 404:
        return RegistryProbe(f"answered HTTP {answer.status}")
    return RegistryProbe()
