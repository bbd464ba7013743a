"""The ``jetforge`` program: a read-only command goes to the command server when one runs
(:mod:`jetforge.server_client`), anything else runs here. Imports nothing heavy before it knows."""

from __future__ import annotations

import os
import sys

from jetforge.server_client import run_through_server

_STREAMS = (("stdin", "r"), ("stdout", "w"), ("stderr", "w"))


def open_standard_streams() -> None:
    """Give every standard descriptor that was closed (``2>&-``) /dev/null, and Python's
    stream for it one that reads or writes nothing.

    Otherwise the next file or pipe jetforge opens takes that number (a child would write
    its errors into it), and Python's ``sys.stderr`` is None, which ``print(file=...)``
    takes for stdout: warnings would land among the results."""
    for number, (name, mode) in enumerate(_STREAMS):
        try:
            os.fstat(number)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != number:
                os.dup2(null, number)
                os.close(null)
        if getattr(sys, name) is None:
            stream = open(number, mode, encoding="utf-8", closefd=False)  # noqa: SIM115
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)


def entry() -> None:
    """Console-script entry point (and ``python -m jetforge``). With a standard stream
    closed, the command server is not asked (it runs the command here)."""
    try:
        code = run_through_server(sys.argv[1:])
    except Exception:  # the server is a shortcut: never a reason to fail
        code = None
    if code is not None:
        sys.exit(code)
    open_standard_streams()
    from jetforge.cli.main import entry as run_here

    run_here()
