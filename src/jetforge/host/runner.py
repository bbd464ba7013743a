"""The real runner for modules that hand one around (:func:`run_process`): it loads
:mod:`jetforge.host.process`, and ``subprocess`` with it, when a command first runs, so
that a run that starts nothing (a warm ``list``) does not pay for them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from jetforge.host.commands import Completed, OutputSink


def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input_text: str | None = None,
    timeout: float | None = None,
    on_output: OutputSink | None = None,
) -> Completed:
    """:func:`jetforge.host.process.run_process`, imported when a command first runs."""
    from jetforge.host import process  # here, not at the top: most runs start nothing

    return process.run_process(
        argv, env=env, cwd=cwd, input_text=input_text, timeout=timeout, on_output=on_output
    )
