"""The ``jetforge`` program: a read-only command goes to the command server when one runs
(:mod:`jetforge.server`), anything else runs here. Imports nothing heavy before it knows."""

from __future__ import annotations

import sys

from jetforge.server import run_through_server


def entry() -> None:
    """Console-script entry point (and ``python -m jetforge``)."""
    code = run_through_server(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from jetforge.cli.main import entry as run_here

    run_here()
