"""The worker process that runs package config scripts
(``python -m jetforge.discovery.script_worker PARENT``, started by jetforge, process
PARENT).

It answers one JSON line per JSON request line on the descriptor that was its stdout. The
first request carries the platform, the time limit and, for jc trees, the compatibility
module's constants and the roots of ``packages.*`` imports; it gets no answer.

The scripts run in a runner process forked from the serving one, which never runs package
code itself (:class:`Server`): a runner answers directory after directory until a script
changes what the next would find (``sys.modules`` cleared, ``os`` replaced, a compat
constant rewritten, the environment changed), starts a process, exits or runs past the
time limit; then it is replaced and everything it started is killed, and a script that
failed after others in the same runner is run again alone. So each script is judged on
its own. A runner reports what its scripts read as they read it (environment variables,
files and directories: :mod:`jetforge.discovery.audit`), so a failure, a timeout
included, is an answer with its inputs like any other.

The worker has no network (:mod:`jetforge.discovery.sandbox`: a network namespace where the
host allows one; in any case an audit hook refuses every connection and name lookup of
Python code, and lookups fail at once so the scripts' fallbacks apply), ``time.sleep``
returns at once (retry loops end), and the scripts' output goes to /dev/null.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import importlib
import importlib.machinery
import json
import os
import select
import signal
import sys
import time
import types
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from jetforge.core.yaml_text import preload
from jetforge.discovery import audit, sandbox
from jetforge.discovery.answers import specs_answer
from jetforge.discovery.configure import read_configured, script_failure
from jetforge.discovery.jc.worker import COMPAT_DIR, PackagesFinder, ScriptRunner, compat, read
from jetforge.discovery.scripts import decode
from jetforge.discovery.time_limit import TIMEOUT_VARIABLE
from jetforge.errors import DefinitionError
from jetforge.host.files import MIB
from jetforge.host.platform_data import load_tables

ANSWER_MIB = 16  # the largest answer a directory's scripts may give (its variants)
ANSWER_LIMIT = ANSWER_MIB * MIB
_READ = 1024 * 1024


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


def read_jetforge(request: dict[str, Any], platform: object) -> dict[str, object]:
    """Answer a jetforge-format directory: its variants after ``configure()``."""
    directory = Path(request["directory"])
    try:
        specs = list(read_configured(directory, frozenset(request["files"]), platform))  # type: ignore[arg-type]
    except DefinitionError as error:
        return {"error": [str(error.path), error.line, error.problem]}
    except (Exception, SystemExit) as error:
        return script_failure(error, directory)
    return {"specs": specs_answer(specs)}


class Runner:
    """The serving worker's handle on a runner process: where requests go, where its
    reports come from, how many it answered."""

    def __init__(self, pid: int, requests: int, reports: int) -> None:
        self.pid = pid
        self.requests = requests
        self.reports = reports
        self.answered = 0


class Server:
    """The serving worker: reads requests and has a runner process answer them.

    It never runs package code itself, so it stays as it was set up. A runner is forked
    from it and answers one request after another, until a script leaves its process
    other than it found it (:class:`~jetforge.discovery.audit.Baseline`), starts another
    process, exits or runs past the time limit: then it is replaced, and everything it
    started is killed. A script that fails in a runner that ran others before is run
    again in a new one, and only that run counts: each script is judged on its own.
    """

    def __init__(self, requests: IO[str], answers: IO[str], *, first_of_namespace: bool) -> None:
        self.requests = requests
        self.answers = answers
        self.first_of_namespace = first_of_namespace
        self.platform: object = None
        self.timeout = 20.0
        self.run_script = ScriptRunner()
        self.scratch = Path.cwd()
        self.baseline: audit.Baseline | None = None
        self.runner: Runner | None = None

    def serve(self) -> None:
        """Serve requests until jetforge closes their pipe."""
        try:
            for line in self.requests:
                request = json.loads(line)
                if "platform" in request:  # the first request: set up, answer nothing
                    self.set_up(request)
                    continue
                self.answers.write(json.dumps(self.answer(request)) + "\n")
        finally:
            self.retire()

    def set_up(self, request: dict[str, Any]) -> None:
        """Take the platform, the time limit and the jc setup, and import what reading
        imports (before any runner: each starts with it)."""
        self.platform = decode(request["platform"])
        self.timeout = float(request.get("timeout", self.timeout))
        preload()
        load_tables()  # jetforge's own data, which scripts may look up: not their input
        codecs.lookup("utf-8-sig")
        importlib.import_module("urllib.request")  # (patched by NoProxies) scripts that
        if "jc" in request:  # ask the network import it; so do jc's pypi_utils users
            compat().configure(request["jc"])
            importlib.import_module("jetson_containers.pypi_utils")
        roots = [Path(root) for root in request.get("roots", [])]
        sys.meta_path.insert(0, PackagesFinder(roots))
        gc.freeze()  # a collection in a runner leaves these pages shared
        self.baseline = audit.Baseline(self.scratch)

    def answer(self, request: dict[str, Any]) -> dict[str, object]:
        """One directory's answer, with what its scripts read; a failure, a timeout or an
        ended process is an error of that directory, with what they had read until then."""
        seen = audit.Seen()
        while True:
            if self.runner is None:
                self.runner = self._start_runner()
            fresh = self.runner.answered == 0
            answer, ends = self._ask(self.runner, request, seen)
            self.runner.answered += 1
            if answer is None or ends:
                self.retire()
            judged = seen.timed_out or seen.too_large  # would be so again, alone
            if fresh or judged or (answer is not None and "error" not in answer):
                break
            self.retire()  # a failure after other scripts: judged again, alone
        if answer is None:
            script = str(Path(request["directory"]) / "config.py")
            if seen.timed_out:
                problem = f"config script did not finish within {self.timeout:g} s"
                answer = {"error": [script, None, f"{problem} (set {TIMEOUT_VARIABLE})"]}
            elif seen.too_large:
                problem = f"config script's answer (its variants) is larger than {ANSWER_MIB} MiB"
                answer = {"error": [script, None, problem]}
            else:
                answer = {"error": [script, None, "config script ended the process that ran it"]}
        return {**answer, **seen.inputs()}

    def retire(self) -> None:
        """End the runner (if one runs) and every process it or its scripts left."""
        runner, self.runner = self.runner, None
        if runner is not None:
            os.close(runner.requests)
            os.close(runner.reports)
            with contextlib.suppress(OSError):
                os.kill(runner.pid, signal.SIGKILL)
        sandbox.end_children(first_of_namespace=self.first_of_namespace)

    def _start_runner(self) -> Runner:
        requests, for_runner = os.pipe()
        from_runner, reports = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the runner process (measured by its answers)
            os.close(for_runner)
            os.close(from_runner)
            self._run(requests, reports, parent)
        os.close(requests)
        os.close(reports)
        return Runner(pid, for_runner, from_runner)

    def _run(self, requests: int, reports: int, parent: int) -> None:
        """The runner: answer requests until one changes the process (never returns)."""
        try:
            sandbox.die_with_parent(parent)
            for pipe in (self.requests, self.answers):  # jetforge's pipes: not the scripts'
                os.close(pipe.fileno())
            assert self.baseline is not None
            for line in os.fdopen(requests, "r", encoding="utf-8"):
                request = json.loads(line)
                audit.RECORDER.start(reports, Path(request["directory"]))
                if request["kind"] == "jc":
                    answer = read(request, self.run_script)
                else:
                    answer = read_jetforge(request, self.platform)
                ends = audit.RECORDER.changed_process or not self.baseline.holds()
                audit.RECORDER.send(["answer", answer, ends])
                if ends or audit.RECORDER.sink is None:
                    break
        finally:
            os._exit(0)

    def _ask(
        self, runner: Runner, request: dict[str, Any], seen: audit.Seen
    ) -> tuple[dict[str, Any] | None, bool]:
        """Send ``request`` to ``runner`` and read what it reports until its answer, and
        whether the runner ends after it. None: it ended without one, or ran past the
        time limit (``seen.timed_out``). When jetforge goes away meanwhile, end now."""
        try:
            os.write(runner.requests, json.dumps(request).encode() + b"\n")
        except OSError:
            return None, True
        poller = select.poll()
        poller.register(runner.reports, select.POLLIN)
        poller.register(self.requests.fileno(), 0)  # only its hang-up is reported
        deadline = time.monotonic() + self.timeout
        pending: list[bytes] = []  # the line begun: its pieces, joined once it is whole
        size = 0
        while True:
            left = deadline - time.monotonic()
            events = dict(poller.poll(max(0, int(left * 1000)) + 1)) if left > 0 else {}
            if self.requests.fileno() in events:
                self.retire()
                os._exit(0)
            if runner.reports not in events:
                if time.monotonic() >= deadline:
                    seen.timed_out = True
                    return None, True
                continue
            chunk = os.read(runner.reports, _READ)
            if not chunk:
                return None, True
            *ends, rest = chunk.split(b"\n")
            for end in ends:
                taken = seen.take(b"".join([*pending, end]))
                pending, size = [], 0
                if taken is not None:
                    return taken
            pending.append(rest)
            size += len(rest)
            if size > ANSWER_LIMIT:  # an answer (or a script's writing) too large to take
                seen.too_large = True
                return None, True


def _streams() -> tuple[IO[str], IO[str]]:
    """The request and answer pipes; descriptors 0, 1 and 2 (and Python's streams) become
    /dev/null for the scripts."""
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    null = os.open(os.devnull, os.O_RDWR)
    for number in (0, 1, 2):
        os.dup2(null, number)
    os.close(null)
    sys.stdin = Path(os.devnull).open(encoding="utf-8")  # noqa: SIM115
    sys.stdout = sys.stderr = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115
    return requests, answers


def _first_of_namespace() -> None:
    """In a new PID namespace: fork its first process, which serves; this one waits for
    it and ends as it ends (the kernel kills it when this one is killed, and with it
    every process of the namespace)."""
    child = os.fork()
    if child == 0:
        sandbox.die_with_parent(0)  # the parent is outside the namespace: id 0 here
        return
    null = os.open(os.devnull, os.O_RDWR)
    for number in (0, 1):  # the pipes are the first process's alone
        os.dup2(null, number)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def main() -> None:
    """Isolate this process, then serve requests until stdin closes."""
    parent = int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid()
    sandbox.die_with_parent(parent)
    isolation = sandbox.isolate()
    if isolation.processes:
        _first_of_namespace()
    else:
        sandbox.become_reaper()
    requests, answers = _streams()
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(COMPAT_DIR))
    time.sleep = lambda _seconds: None
    sys.meta_path.insert(0, NoProxies())
    audit.watch(exclude=(str(Path(__file__).parents[1]), str(Path.cwd())))
    with contextlib.suppress(BrokenPipeError):
        Server(requests, answers, first_of_namespace=isolation.processes).serve()


if __name__ == "__main__":
    main()
