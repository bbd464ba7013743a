"""``jetforge`` entry point: parse arguments, run one subcommand, render every error here."""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TextIO

from jetforge import __version__
from jetforge.cli import (
    autotag,
    bootstrap,
    build,
    cache,
    docs,
    doctor,
    explain,
    graph,
    listing,
    platform,
    run,
    show,
)
from jetforge.cli.session import Session
from jetforge.errors import JetforgeError, StageFailedError, UsageError

COMMANDS: tuple[ModuleType, ...] = (listing, show, build, graph, explain, platform, bootstrap)
COMMANDS += (autotag,)
COMMANDS += (run, doctor)
COMMANDS += (docs,)
COMMANDS += (cache,)


def make_parser() -> argparse.ArgumentParser:
    """The full argument parser (every subcommand registers itself)."""
    parser = argparse.ArgumentParser(
        prog="jetforge",
        description="Compose, build and test container images for GPU and edge-AI stacks.",
    )
    parser.add_argument("--version", action="version", version=f"jetforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and detail")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    parser.add_argument("--no-color", action="store_true", help="plain output, no colors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Run jetforge with ``argv``; returns the exit code (SPEC section 5)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = make_parser()
    # argparse writes --help, --version and usage errors to sys.stdout / sys.stderr.
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:
            return int(exit_.code or 0)
    given = list(sys.argv[1:] if argv is None else argv)
    session = Session(args, out, err, given)
    if env is not None:
        session.env = env
    handler: Callable[[Session], int] = args.handler
    try:
        return handler(session)
    except KeyboardInterrupt:
        print("jetforge: interrupted; nothing that was built is lost", file=err)
        return 130
    except StageFailedError as failure:
        if args.verbose:
            traceback.print_exc(file=err)
        session.render_failure(failure)
        return failure.exit_code
    except JetforgeError as error:
        if args.verbose:
            traceback.print_exc(file=err)
        print(f"jetforge: error: {error}", file=err)
        if not isinstance(error, UsageError) and not args.verbose:
            print("jetforge: re-run with -v for details", file=err)
        return error.exit_code
    except Exception as error:
        if args.verbose:
            traceback.print_exc(file=err)
        print(f"jetforge: internal error: {type(error).__name__}: {error}", file=err)
        print("jetforge: re-run with -v for details", file=err)
        return 1


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
