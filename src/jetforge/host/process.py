"""The only module that starts subprocesses.

Everything else receives a ``Runner`` and hands it argv lists, so tests can inject a
recording runner and the real one stays in one place.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from jetforge.errors import TerminatedError
from jetforge.host.commands import Completed, OutputSink, Runner

__all__ = ["Completed", "OutputSink", "Runner", "run_process"]

_LIVE: set[subprocess.Popen[str]] = set()  # the streaming commands running now
_LIVE_LOCK = threading.Lock()


def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input_text: str | None = None,
    timeout: float | None = None,
    on_output: OutputSink | None = None,
) -> Completed:
    """Run ``argv``; a missing program gives return code 127 instead of an exception.

    ``env``, when given, is the child's whole environment. The child runs in a session
    of its own: when this process is interrupted (Ctrl-C, SIGTERM) or the ``timeout``
    runs out, the child and everything it started are stopped together
    (:func:`_end_group`), so nothing it started (``mmdebstrap``'s ``apt-get``, ``gpgv``)
    runs on without it.
    """
    full_env = None if env is None else dict(env)
    if on_output is None:
        return _captured(argv, full_env, cwd, input_text, timeout)
    return _stream(argv, full_env, cwd, input_text, on_output)


def _captured(
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    cwd: Path | None,
    input_text: str | None,
    timeout: float | None,
) -> Completed:
    try:
        process = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError as error:
        return Completed(tuple(argv), 127, "", str(error))
    with process:
        try:
            stdout, stderr = process.communicate(input_text, timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_group(process, grace=0.0)
            return Completed(tuple(argv), 124, "", f"timed out after {timeout} s")
        except BaseException:
            _end_group(process)
            raise
    return Completed(tuple(argv), process.returncode, stdout, stderr)


def _stream(
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    cwd: Path | None,
    input_text: str | None,
    on_output: OutputSink,
) -> Completed:
    # A new session lets Ctrl-C reach only us; we then stop the child and what it started
    # ourselves, so the engine gets a chance to clean up (docker run --rm, build containers).
    try:
        process = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except FileNotFoundError as error:
        return Completed(tuple(argv), 127, "", str(error))
    lines: list[str] = []
    with _LIVE_LOCK:
        _LIVE.add(process)
    with process:
        try:
            if input_text is not None and process.stdin is not None:
                process.stdin.write(input_text)
                process.stdin.close()
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                on_output(line.rstrip("\n"))
            process.wait()
        except BaseException:
            _end_group(process)
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(process)
    return Completed(tuple(argv), process.returncode, "".join(lines), "")


def stop_streaming(grace: float = 10.0) -> None:
    """Stop every streaming command of this process (in any thread) as Ctrl-C stops one:
    SIGINT to its process group, then SIGKILL to what is left of the group once it has
    ended or after ``grace`` seconds. Their threads see them end (and reap them)."""
    with _LIVE_LOCK:
        running = [process for process in _LIVE if process.returncode is None]
    for process in running:
        _signal_group(process.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    for process in running:
        _wait_unreaped(process.pid, max(0.0, deadline - time.monotonic()))
        _signal_group(process.pid, signal.SIGKILL)


def _end_group(process: subprocess.Popen[str], grace: float = 10.0) -> None:
    """Stop ``process`` (started in a session of its own) and every process of its group,
    what it started: SIGINT to the group, as Ctrl-C at a terminal would send, then, once
    the child has ended or ``grace`` seconds have passed, SIGKILL to whatever of the group
    is left. The child is reaped last: until then its id, the group's, cannot be taken by
    another process, so the signals reach no stranger."""
    if process.returncode is None:  # not reaped: the group id is still ours
        if grace > 0:
            _signal_group(process.pid, signal.SIGINT)
            _wait_unreaped(process.pid, grace)
        _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _signal_group(group: int, number: int) -> None:
    with contextlib.suppress(OSError):  # already gone
        os.killpg(group, number)


def run_attached(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
    """Run ``argv`` on this process's own stdin, stdout and stderr; its exit code.

    For commands the user talks to directly (``jetforge run``): nothing is captured, and
    the child stays in our process group so a Ctrl-C reaches it first; we then give it
    time to stop (and the engine to remove a ``--rm`` container) before giving up on it.
    A SIGTERM or SIGHUP that reached only us is passed on to it. A missing program gives
    127.
    """
    try:
        process = subprocess.Popen(list(argv), env=None if env is None else dict(env))
    except FileNotFoundError:
        return 127
    with process:
        try:
            return process.wait()
        except BaseException as error:
            if isinstance(error, TerminatedError):
                process.send_signal(error.number)  # perhaps only we got it: pass it on
            try:
                process.wait(timeout=10)
            except BaseException:  # it did not stop in time, or a second Ctrl-C
                process.kill()
                process.wait()
            raise


def start_detached(argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None) -> int:
    """Start ``argv`` in a session of its own, stdin from /dev/null and output appended to
    ``log``, without waiting for it; its process id, or -1 when the program is missing.

    For servers that outlive the command that starts them (``jetforge cache serve
    --background``). No ``Popen`` object is kept, so nothing warns about a child still
    running when this process moves on.
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    try:
        return os.posix_spawnp(
            argv[0],
            list(argv),
            dict(os.environ if env is None else env),
            file_actions=actions,
            setsid=True,
        )
    except FileNotFoundError:
        return -1


class WorkerGoneError(Exception):
    """A worker process died, or did not answer in time (it has been killed)."""


class LineWorker:
    """A long-lived child process that answers one line of text per line it is sent.

    The child reads requests on its stdin and writes each answer as one line on its
    stdout; its stderr is discarded. :meth:`ask` waits at most ``timeout`` seconds for
    an answer; a child that dies or overruns is killed and :class:`WorkerGoneError` raised,
    after which the next :meth:`send` (or :meth:`ask`) starts a fresh child.
    """

    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.argv = tuple(argv)
        self.env = None if env is None else dict(env)
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            self._process = subprocess.Popen(
                list(self.argv),
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._buffer = b""
        return self._process

    def ask(self, line: str, timeout: float) -> str:
        """Send ``line``; the child's answer (one line, without its newline)."""
        self.send(line)
        return self.receive(timeout)

    def send(self, line: str) -> None:
        """Send one request without waiting; answers come back in order (:meth:`receive`).

        Keep the requests in flight few and short: a child that is not read from stops
        reading once its pipes are full."""
        process = self._start()
        assert process.stdin is not None
        try:
            process.stdin.write(line.encode() + b"\n")
            process.stdin.flush()
        except OSError:
            self.close()
            raise WorkerGoneError("the worker process exited") from None

    def receive(self, timeout: float) -> str:
        """The next answer (one line, without its newline), waited for ``timeout`` s."""
        process = self._process
        if process is None:
            raise WorkerGoneError("no worker process runs")
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        descriptor = process.stdout.fileno()
        # The pieces of a long answer are joined once it is whole: appending each to the
        # last would copy it over and over (a 20 MB answer took seconds).
        pieces = [self._buffer]
        end = self._buffer.find(b"\n")
        while end < 0:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([descriptor], [], [], max(left, 0))
            if not ready:
                self.close()
                raise WorkerGoneError(f"no answer within {timeout:g} s")
            chunk = os.read(descriptor, 1024 * 1024)
            if not chunk:
                self.close()
                raise WorkerGoneError("the worker process exited")
            pieces.append(chunk)
            end = chunk.find(b"\n")
        whole = b"".join(pieces)
        answer, _, self._buffer = whole.partition(b"\n")
        return answer.decode()

    def has_answer(self) -> bool:
        """Whether :meth:`receive` would return (or find the child gone) without waiting
        for the child to work: an answer has begun to arrive, or the child has exited."""
        process = self._process
        if process is None or b"\n" in self._buffer:
            return process is not None
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout.fileno()], [], [], 0)
        return bool(ready)

    def close(self, grace: float = 0.0) -> None:
        """Stop the child (if one runs) and every process of its process group (what it
        started, unless that left the group), and forget it. With ``grace``, the child
        first sees its requests end and gets that many seconds to end by itself (and end
        what it started)."""
        process, self._process = self._process, None
        if process is None:
            return
        with process:
            if grace > 0 and process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
                _wait_unreaped(process.pid, grace)
            # The child leads its own group (a session of its own); until it is reaped,
            # its id (the group's) cannot be taken by another process.
            if process.returncode is None:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.kill()
            process.wait()


def _wait_unreaped(pid: int, seconds: float) -> None:
    """Wait at most ``seconds`` for child ``pid`` to end, without reaping it (where the
    system cannot tell without reaping, not at all)."""
    if not hasattr(os, "waitid"):
        return
    if hasattr(os, "pidfd_open"):  # Linux: woken the moment it ends, not at a poll
        try:
            handle = os.pidfd_open(pid)
        except OSError:
            pass
        else:
            try:
                select.select([handle], [], [], seconds)
            finally:
                os.close(handle)
            return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if ended is not None:
            return
        time.sleep(0.01)
