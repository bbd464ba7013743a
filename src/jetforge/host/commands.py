"""What running a command gives (:class:`Completed`) and what runs one (:class:`Runner`),
apart from :mod:`jetforge.host.process`, which runs them: a module that only hands a
runner around (host probes, platform detection) does not import ``subprocess`` with it
(:mod:`jetforge.host.runner` loads it when a command first runs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

OutputSink = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Completed:
    """What a finished command left behind."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """Runs one command; ``on_output`` receives merged output line by line when given."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        input_text: str | None = None,
        timeout: float | None = None,
        on_output: OutputSink | None = None,
    ) -> Completed: ...
