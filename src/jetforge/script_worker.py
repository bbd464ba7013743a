"""The worker process that runs package config scripts: ``python -m jetforge.script_worker``.

It answers one JSON line per JSON request line on the descriptor that was its stdout;
the scripts' own output goes to /dev/null and stdin is /dev/null for them. The network is
refused (lookups fail at once and the scripts' fallbacks apply) and ``time.sleep`` returns
at once (retry loops end). After each request the working directory is the scratch one
again. The first request carries the platform and, for jc trees, the compatibility
module's constants and the roots of ``packages.*`` imports; it gets no answer.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from jetforge.configure import read_configured, script_failure
from jetforge.errors import DefinitionError
from jetforge.jc.reader import OFFLINE_NOTE
from jetforge.jc.worker import COMPAT_DIR, PackagesFinder, ScriptRunner, compat, read
from jetforge.scripts import decode, encode


def _refuse(*_args: object, **_options: object) -> Any:
    compat().log_warning(OFFLINE_NOTE)
    raise OSError("jetforge reads packages offline: config scripts get no network")


def go_offline() -> None:
    """Refuse every connection and name lookup; make sleeps return at once."""
    socket.socket.connect = _refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = _refuse  # type: ignore[method-assign]
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
    time.sleep = lambda _seconds: None


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
        answers.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
