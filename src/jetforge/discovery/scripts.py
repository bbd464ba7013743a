"""Package config scripts run in worker processes, never in the jetforge process.

A config script is package code: it may loop, exit, print, change directory, kill its
process or reach for the network. :class:`ScriptHost` sends each directory that runs one
to a worker (:mod:`jetforge.discovery.script_worker`), which runs it apart from jetforge
and from the other scripts for at most ``JETFORGE_CONFIG_TIMEOUT`` seconds; whatever the
script does becomes an error of its own package, with what it read like any other
answer. Requests are sent ahead, so the workers run scripts while this process reads the
other directories; a worker that died, or did not answer within the time limit and a
grace, is replaced and gets the requests it had not answered.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from jetforge.discovery.reads import Reads, env_digest
from jetforge.discovery.time_limit import TIMEOUT_VARIABLE, script_timeout
from jetforge.errors import DefinitionError
from jetforge.host.process import LineWorker, WorkerGoneError

if TYPE_CHECKING:
    from jetforge.core.platform import Platform

GRACE = 5.0  # what a worker gets beyond the time limit to answer for a script it ended
CLOSE_GRACE = 2.0  # what a worker gets to end the scripts' processes when jetforge is done
IN_FLIGHT = 16  # requests sent ahead to each worker
# Worker processes that run config scripts at once: one per two cores (on two cores a
# second worker only competes with this process and the first).
LANES = max(1, min(4, (os.cpu_count() or 2) // 2))

# A request: the kind of package (jetforge's format or jc's), its directory, its files.
Item = tuple[str, Path, frozenset[str]]


class ScriptLostError(DefinitionError):
    """A worker died, or did not answer in time, while on a config script: nothing about
    what the script read is known, so the discovery index keeps nothing of it."""


def encode(value: object) -> str:
    """A value this process sends the worker inside JSON (the platform). Nothing comes
    back this way: the worker's answers are plain data (:mod:`jetforge.discovery.answers`)."""
    import base64  # here, not at the top: a run whose index answers exchanges nothing
    import pickle

    return base64.b64encode(pickle.dumps(value)).decode()


def decode(text: str) -> Any:
    """The value :func:`encode` made (in the worker: what jetforge sent it)."""
    import base64
    import pickle

    return pickle.loads(base64.b64decode(text))  # noqa: S301 - from jetforge, to its worker


# The worker's pipe is open to the scripts it runs: a line of any other shape is theirs.
MALFORMED = (
    "config script's answer is not one jetforge's worker sends (did it write into its pipe?)"
)


class _Lane:
    """One worker process and the directories sent to it; answers come in order."""

    def __init__(self, start: Callable[[], LineWorker], timeout: float) -> None:
        self.start = start
        self.timeout = timeout
        self.worker: LineWorker | None = None
        self.queued: deque[Item] = deque()
        self.sent: deque[Item] = deque()
        self.ready: dict[Item, dict[str, Any]] = {}  # answers taken before they were asked

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close(grace=CLOSE_GRACE)
            self.worker = None

    def send_ahead(self) -> None:
        """Keep up to :data:`IN_FLIGHT` requests with the worker (starting it if needed)."""
        while self.queued and len(self.sent) < IN_FLIGHT:
            kind, directory, files = self.queued[0]
            if self.worker is None:
                self.worker = self.start()
            request = {"kind": kind, "directory": str(directory), "files": sorted(files)}
            try:
                self.worker.send(json.dumps(request))
            except WorkerGoneError:
                self._lost(answering=False)
                return
            self.sent.append(self.queued.popleft())

    def collect(self) -> None:
        """Take the answers the worker has written, and send it more: it keeps working
        while this process reads other directories."""
        while self.sent and self.worker is not None and self.worker.has_answer():
            self._take()
        self.send_ahead()

    def answer(self, item: Item) -> dict[str, Any]:
        """The worker's answer for ``item`` (sent first if it was not announced); a
        ``lost`` answer when the worker died or overran while on it."""
        if item in self.ready:
            answer = self.ready.pop(item)
            self.send_ahead()
            return answer
        if item not in self.sent and item not in self.queued:
            self.queued.appendleft(item)
        while self.sent and self.sent[0] != item:  # announced and not asked for yet
            if not self._take():
                break
        self.send_ahead()
        if not self.sent or self.sent[0] != item:
            return self.ready.pop(item, {"lost": "the worker process exited"})
        self._take()
        self.send_ahead()
        return self.ready.pop(item)

    def _take(self) -> bool:
        """Wait for the answer to the head of ``sent`` and keep it in ``ready`` (a
        ``lost`` answer when the worker died or overran on it); False then."""
        item = self.sent[0]
        try:
            self.ready[item] = self._receive()
        except WorkerGoneError as gone:
            self.ready[item] = {"lost": str(gone)}
            return False
        return True

    def _receive(self) -> dict[str, Any]:
        """The answer to the head of ``sent``, which then leaves it. When the worker is
        gone instead, the head takes the blame (:meth:`_lost`) and the error goes on."""
        assert self.worker is not None
        try:
            answer: dict[str, Any] = json.loads(self.worker.receive(self.timeout))
        except WorkerGoneError:
            self._lost(answering=True)
            raise
        self.sent.popleft()
        return answer

    def _lost(self, *, answering: bool) -> None:
        """The worker is gone. The directory it was answering (with ``answering``) takes
        the blame; the others it held go to the next worker."""
        if self.worker is not None:
            self.worker.close()
        self.worker = None
        if answering and self.sent:
            self.sent.popleft()
        self.queued.extendleft(reversed(self.sent))
        self.sent.clear()


class ScriptHost:
    """The worker processes of one scan; a context manager that stops them (and removes
    their scratch directory) on exit.

    Each directory goes to a worker by its place in the announced order (:meth:`expect`),
    so results do not depend on timing. ``setup`` is what every new worker gets first:
    the platform, the time limit and, for jc scripts, its constants and import roots.
    ``lanes``: how many workers (default :data:`LANES`).
    """

    def __init__(
        self,
        platform: Platform,
        env: Mapping[str, str],
        setup: Mapping[str, object],
        *,
        lanes: int | None = None,
    ) -> None:
        self.platform = platform
        self.env = dict(env)
        self.timeout = script_timeout(env)
        self.setup = {**setup, "platform": encode(platform), "timeout": self.timeout}
        self._scratch: Path | None = None
        lanes = max(1, lanes or LANES)
        self._lanes = [_Lane(self._start, self.timeout + GRACE) for _ in range(lanes)]
        self._lane_of: dict[Path, _Lane] = {}
        self._reads: dict[Path, Reads] = {}  # what each directory's scripts read

    def __enter__(self) -> ScriptHost:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers and remove their scratch directory."""
        for lane in self._lanes:
            lane.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def start(self) -> None:
        """Start the workers now (scripts are known to be coming): they load while this
        process walks the tree."""
        for lane in self._lanes:
            if lane.worker is None:
                lane.worker = self._start()

    def expect(self, items: Sequence[Item]) -> None:
        """Announce, in scan order, the directories :meth:`ask` will be asked for."""
        for number, item in enumerate(items):
            lane = self._lanes[number % len(self._lanes)]
            lane.queued.append(item)
            self._lane_of[item[1]] = lane
        for lane in self._lanes:
            lane.send_ahead()

    def collect(self) -> None:
        """Take the answers workers have ready and keep them busy (call it between
        directories that need no worker)."""
        for lane in self._lanes:
            lane.collect()

    def ask(self, kind: str, directory: Path, files: frozenset[str]) -> dict[str, Any]:
        """The worker's answer for a directory; its script's failure, overrun or exit is
        a :class:`DefinitionError` of that directory's package."""
        lane = self._lane_of.get(directory, self._lanes[0])
        answer = lane.answer((kind, directory, files))
        try:
            return self._taken(directory, answer)
        except (AttributeError, KeyError, TypeError, ValueError):
            self._reads.pop(directory.absolute(), None)
            raise ScriptLostError(directory / "config.py", MALFORMED) from None

    def _taken(self, directory: Path, answer: dict[str, Any]) -> dict[str, Any]:
        """:meth:`ask`'s answer, what its scripts read kept (any other shape raises)."""
        names = sorted(str(name) for name in answer.get("env", ()))
        self._reads[directory.absolute()] = Reads(
            tuple((name, self.env.get(name)) for name in names),
            env_digest(self.env) if answer.get("whole_env") else None,
            tuple(
                (str(path), None if stamp is None else tuple(stamp))
                for path, stamp in answer.get("files", ())
            ),
        )
        if "lost" in answer:
            problem = (
                f"config script did not finish within {self.timeout:g} s (set {TIMEOUT_VARIABLE})"
                if "no answer" in str(answer["lost"])
                else "config script ended the process that ran it"
            )
            raise ScriptLostError(directory / "config.py", problem)
        if "error" in answer:
            path, line, problem = answer["error"]
            raise DefinitionError(Path(path), str(problem), None if line is None else int(line))
        return answer

    def reads(self, directory: Path) -> Reads:
        """What the scripts of ``directory`` read when :meth:`ask` last answered for it."""
        return self._reads.get(directory.absolute(), Reads())

    def _start(self) -> LineWorker:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="jetforge-scripts-"))
        env = dict(self.env)
        here = str(Path(__file__).parents[2])
        env["PYTHONPATH"] = here + (f":{env['PYTHONPATH']}" if env.get("PYTHONPATH") else "")
        argv = [sys.executable, "-m", "jetforge.discovery.script_worker", str(os.getpid())]
        worker = LineWorker(argv, env=env, cwd=self._scratch)
        worker.send(json.dumps(self.setup))  # answered by nothing: the worker just takes it
        return worker
