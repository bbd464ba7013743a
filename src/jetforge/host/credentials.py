"""Registry credentials, found the way the engines find them.

Docker's ``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``) and podman's ``auth.json``
(``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers``, ``~/.config/containers``), in that
order: per host a credential helper (``credHelpers``), the default store (``credsStore``),
then the ``auths`` entries. Helpers run through the injected process runner.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jetforge.host.files import MIB, UnreadableFileError, read_regular_text
from jetforge.host.process import Runner, run_process

DOCKER_HUB = "docker.io"
HUB_API = "registry-1.docker.io"
HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", HUB_API})
_HUB_SERVER_URL = "https://index.docker.io/v1/"  # the key docker stores Hub credentials under


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password, or an identity (refresh) token from ``docker login``."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)


def canonical_host(key: str) -> str:
    """The host a config key stands for (``https://index.docker.io/v1/`` → ``docker.io``)."""
    host = re.sub(r"^https?://", "", key.strip()).split("/", 1)[0].lower()
    return DOCKER_HUB if host in HUB_ALIASES else host


AUTH_FILE_LIMIT = 16 * MIB
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # docker-credential-NAME, on PATH


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``data[key]`` when it is a mapping (a hand-edited file may hold anything)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def auth_files(env: Mapping[str, str]) -> tuple[Path, ...]:
    """The engines' credential files, in the order they are read."""
    home = env.get("HOME", "")
    files: list[Path] = []
    if env.get("DOCKER_CONFIG"):
        files.append(Path(env["DOCKER_CONFIG"]) / "config.json")
    elif home:
        files.append(Path(home) / ".docker" / "config.json")
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    if home:
        files.append(Path(home) / ".config" / "containers" / "auth.json")
    return tuple(files)


def credentials_from_entry(entry: Mapping[str, Any]) -> Credentials | None:
    """Credentials of one ``auths`` entry: base64 ``auth``, ``username``/``password`` or
    ``identitytoken``; None when it holds none."""
    token = str(entry.get("identitytoken") or "")
    username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    encoded = str(entry.get("auth") or "")
    if encoded:
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
    if token or username:
        return Credentials(username, password, token)
    return None


def parse_helper_output(text: str) -> Credentials | None:
    """The answer of ``docker-credential-<name> get``; user ``<token>`` marks an identity token."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not data.get("Secret"):
        return None
    if data.get("Username") == "<token>":
        return Credentials(identity_token=str(data["Secret"]))
    return Credentials(str(data.get("Username") or ""), str(data["Secret"]))


class CredentialStore:
    """Looks up registry credentials the way the engines do, once per host."""

    def __init__(self, env: Mapping[str, str], runner: Runner = run_process) -> None:
        self.env = env
        self.runner = runner
        self._found: dict[str, Credentials | None] = {}

    def lookup(self, host: str) -> Credentials | None:
        """Credentials for ``host``: its credential helper, the default store, then ``auths``."""
        host = canonical_host(host)
        if host not in self._found:
            self._found[host] = self._search(host)
        return self._found[host]

    def _search(self, host: str) -> Credentials | None:
        for path in auth_files(self.env):
            try:  # a FIFO, a device or a huge file is no credentials file: skipped
                data = json.loads(read_regular_text(path, "credentials file", AUTH_FILE_LIMIT))
            except (UnreadableFileError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            helpers = {
                canonical_host(key): name for key, name in _mapping(data, "credHelpers").items()
            }
            helper = helpers.get(host) or data.get("credsStore")
            if isinstance(helper, str) and _HELPER_NAME.fullmatch(helper):
                found = self._ask_helper(helper, host)
                if found is not None:
                    return found
            for key, entry in _mapping(data, "auths").items():
                if canonical_host(key) == host and isinstance(entry, dict):
                    found = credentials_from_entry(entry)
                    if found is not None:
                        return found
        return None

    def _ask_helper(self, helper: str, host: str) -> Credentials | None:
        server = _HUB_SERVER_URL if host == DOCKER_HUB else host
        done = self.runner(
            [f"docker-credential-{helper}", "get"], env=self.env, input_text=server, timeout=30
        )
        return parse_helper_output(done.stdout) if done.returncode == 0 else None
