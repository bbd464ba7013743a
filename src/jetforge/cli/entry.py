"""The ``jetforge`` program: a read-only command goes to the command server when one runs
(:mod:`jetforge.server_client`), anything else runs here. Imports nothing heavy before it knows."""

from __future__ import annotations

import sys

from jetforge.server_client import run_through_server


def entry() -> None:
    """Console-script entry point (and ``python -m jetforge``). With a standard stream
    closed, the command server is not asked (it runs the command here)."""
    try:
        code = run_through_server(sys.argv[1:])
    except Exception:  # the server is a shortcut: never a reason to fail
        code = None
    if code is not None:
        sys.exit(code)
    from jetforge.cli.main import entry as run_here

    run_here()
