"""The worker process that runs package config scripts
(``python -m jetforge.discovery.script_worker``).

It answers one JSON line per JSON request line on the descriptor that was its stdout;
the scripts' own output goes to /dev/null and stdin is /dev/null for them. The network is
refused (lookups fail at once and the scripts' fallbacks apply) and ``time.sleep`` returns
at once (retry loops end). After each request the working directory is the scratch one
again. The first request carries the platform and, for jc trees, the compatibility
module's constants and the roots of ``packages.*`` imports; it gets no answer.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import socket
import sys
import time
import types
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from jetforge.discovery.configure import read_configured, script_failure
from jetforge.discovery.scripts import decode, encode
from jetforge.errors import DefinitionError
from jetforge.jc.reader import OFFLINE_NOTE
from jetforge.jc.worker import COMPAT_DIR, PackagesFinder, ScriptRunner, compat, read


def _refuse(*_args: object, **_options: object) -> Any:
    compat().log_warning(OFFLINE_NOTE)
    raise OSError("jetforge reads packages offline: config scripts get no network")


class NoProxies:
    """Offline, proxies are moot: once a script imports ``urllib.request`` (whose proxy
    lookup reads every environment variable), its lookup answers none. A meta path
    finder by protocol, so that nothing is imported before a script asks."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,  # noqa: ARG002 - the finder protocol's
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "urllib.request":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            run(module)
            vars(module).update(getproxies=dict, getproxies_environment=dict)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def go_offline() -> None:
    """Refuse every connection and name lookup; make sleeps return at once."""
    socket.socket.connect = _refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = _refuse  # type: ignore[method-assign]
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
    time.sleep = lambda _seconds: None
    sys.meta_path.insert(0, NoProxies())


class WatchedEnviron(MutableMapping[str, str]):
    """``os.environ`` as scripts see it, noting each variable they look up (or that they
    looked at all of them): the discovery index keeps their results only while those
    variables are what they were."""

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self.real = real
        self.names: set[str] = set()
        self.whole = False

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        return self.real[name]

    def __contains__(self, name: object) -> bool:
        self.names.add(str(name))
        return name in self.real

    def __setitem__(self, name: str, value: str) -> None:
        self.real[name] = value

    def __delitem__(self, name: str) -> None:
        del self.real[name]

    def __iter__(self) -> Iterator[str]:
        self.whole = True
        return iter(self.real)

    def __len__(self) -> int:
        self.whole = True
        return len(self.real)

    def copy(self) -> dict[str, str]:
        """All variables, as ``os.environ.copy()`` gives them."""
        self.whole = True
        return dict(self.real)

    def take(self) -> dict[str, object]:
        """What was looked at since the last call, for an answer."""
        seen: dict[str, object] = {"env": sorted(self.names), "whole_env": self.whole}
        self.names, self.whole = set(), False
        return seen


def read_jetforge(request: dict[str, Any], platform: object) -> dict[str, object]:
    """Answer a jetforge-format directory: its variants after ``configure()``."""
    directory = Path(request["directory"])
    try:
        specs = list(read_configured(directory, frozenset(request["files"]), platform))  # type: ignore[arg-type]
    except DefinitionError as error:
        return {"error": [str(error.path), error.line, error.problem]}
    except (Exception, SystemExit) as error:
        return script_failure(error, directory)
    return {"specs": encode(specs)}


def main() -> None:
    """Serve requests until stdin closes."""
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    sys.stdin = Path(os.devnull).open(encoding="utf-8")  # noqa: SIM115
    sys.stdout = sys.stderr = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(COMPAT_DIR))
    go_offline()
    watched = WatchedEnviron(os.environ)
    os.environ = watched  # type: ignore[assignment]  # noqa: B003 - reads go through it
    scratch = Path.cwd()
    run_script = ScriptRunner()
    platform: object = None
    for line in requests:
        request = json.loads(line)
        if "platform" in request:  # the first request: set up, answer nothing
            platform = decode(request["platform"])
            if "jc" in request:
                compat().configure(request["jc"])
            roots = [Path(root) for root in request.get("roots", [])]
            sys.meta_path.insert(0, PackagesFinder(roots))
            continue
        if request["kind"] == "jc":
            answer = read(request, run_script)
        else:
            answer = read_jetforge(request, platform)
        os.chdir(scratch)
        answers.write(json.dumps({**answer, **watched.take()}) + "\n")


if __name__ == "__main__":
    main()
