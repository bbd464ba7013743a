"""Host probes remembered between runs.

Off Jetson, a host without ``/usr/local/cuda/version.json`` learns its CUDA version from
``nvcc --version`` or ``nvidia-smi``, which take tens to hundreds of milliseconds each,
and every command asks. :class:`RememberingRunner` starts a probe only when its program
is on ``PATH``, and runs it again only when that program (the file ``PATH`` finds, links
followed) or the loaded NVIDIA driver changed since its answer was kept. The answers
are a stash file (:mod:`jetforge.host.stash`); a program that had not settled when it ran is
not remembered (it may change again unseen).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jetforge.host.commands import Completed, OutputSink, Runner
from jetforge.host.runner import run_process
from jetforge.host.stash import file_stamp, is_settled, read_stash, write_stash

DRIVER_FILE = Path("/proc/driver/nvidia/version")  # the kernel module's version


class RememberingRunner:
    """A :class:`~jetforge.host.process.Runner` for probes whose answers are kept in
    ``memo`` (a stash file; None: none kept, but a missing program is still not started)."""

    def __init__(
        self, memo: Path | None, runner: Runner = run_process, driver_file: Path = DRIVER_FILE
    ) -> None:
        self.memo = memo
        self.runner = runner
        self.driver_file = driver_file
        self._kept: dict[str, Any] | None = None

    def __call__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        input_text: str | None = None,
        timeout: float | None = None,
        on_output: OutputSink | None = None,
    ) -> Completed:
        search = (env if env is not None else os.environ).get("PATH", os.defpath)
        program = which(argv[0], search)
        if program is None:
            return Completed(tuple(argv), 127, "", f"{argv[0]}: not found on PATH")
        if cwd is not None or input_text is not None or on_output is not None:
            return self.runner(
                argv, env=env, cwd=cwd, input_text=input_text, timeout=timeout, on_output=on_output
            )
        key = "\0".join(argv)
        started = time.time_ns()
        stamp = file_stamp(program)
        inputs: list[object] = [program, None if stamp is None else list(stamp), self._driver()]
        kept = self._memo().get(key)
        if (
            isinstance(kept, dict)
            and kept.get("inputs") == inputs
            and isinstance(kept.get("returncode"), int)
            and isinstance(kept.get("stdout"), str)
        ):
            return Completed(tuple(argv), kept["returncode"], kept["stdout"], "")
        done = self.runner(argv, env=env, timeout=timeout)
        settled = stamp is not None and is_settled(stamp, started)
        if settled and done.returncode != 124:  # a timeout says nothing about the next run
            self._remember(key, inputs, done)
        return done

    def _driver(self) -> str:
        try:
            return self.driver_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def _memo(self) -> dict[str, Any]:
        if self._kept is None:
            found = read_stash(self.memo)  # None: nothing kept yet, or damaged: probe
            self._kept = found if isinstance(found, dict) else {}
        return self._kept

    def _remember(self, key: str, inputs: list[object], done: Completed) -> None:
        """Keep the answer (a failure keeps none)."""
        if self.memo is None:
            return
        answer = {"inputs": inputs, "returncode": done.returncode, "stdout": done.stdout}
        self._kept = {**self._memo(), key: answer}
        write_stash(self.memo, self._kept)


def which(name: str, search: str) -> str | None:
    """The file ``name`` runs as on the ``PATH`` ``search``: :func:`shutil.which`'s answer
    (the first existing, executable entry that is not a directory), without importing
    shutil (every command asks for nvcc's)."""
    if os.path.dirname(name):  # noqa: PTH120 - shutil.which's own test
        return name if _runs(name) else None
    if not search:
        return None
    seen = set()
    for directory in search.split(os.pathsep):
        normal = os.path.normcase(directory)
        if normal not in seen:
            seen.add(normal)
            candidate = os.path.join(directory, name)  # noqa: PTH118
            if _runs(candidate):
                return candidate
    return None


def _runs(path: str) -> bool:
    # no Path objects: this runs for every directory of PATH
    exists = os.path.exists(path)  # noqa: PTH110
    return exists and os.access(path, os.F_OK | os.X_OK) and not os.path.isdir(path)  # noqa: PTH112
