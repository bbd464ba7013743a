"""``jetforge`` entry point: parse arguments, run one subcommand, render every error here."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

from jetforge import __version__
from jetforge.cli.commands import COMMANDS, load, summary
from jetforge.errors import JetforgeError, StageFailedError, TerminatedError, UsageError
from jetforge.server_client import NOT_SERVED, READ_ONLY

if TYPE_CHECKING:
    from jetforge.cli.session import Session


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs: its first word that is not an option (jetforge's own
    options take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def unknown_command(word: str) -> str:
    """What to say of a command that does not exist: the likely one, and where the list is."""
    import difflib  # here, not at the top: only a typo needs it

    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown command '{word}'{hint}; 'jetforge --help' lists the commands"


def make_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser. Only the subcommand that ``argv`` runs registers its options
    (importing its module); the others are listed with their summary. Without ``argv``
    every subcommand registers (for documentation and tests)."""
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
    wanted = None if argv is None else chosen_command(argv)
    for name in COMMANDS:
        if argv is None or name == wanted:
            load(name).register(commands)
        else:
            commands.add_parser(name, help=summary(name))
    return parser


def served(args: argparse.Namespace) -> bool:
    """Whether the command server may run these arguments: a command that only reads."""
    if args.command == "build":
        return bool(args.simulate or args.list_packages or args.show_packages)
    return args.command in READ_ONLY


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    env: dict[str, str] | None = None,
    only: Callable[[argparse.Namespace], bool] | None = None,
) -> int:
    """Run jetforge with ``argv``; returns the exit code (SPEC section 5). With ``only``,
    arguments it refuses run nothing and return :data:`jetforge.server.NOT_SERVED`."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    given = list(sys.argv[1:] if argv is None else argv)
    wanted = chosen_command(given)
    if wanted is not None and wanted not in COMMANDS:
        print(f"jetforge: error: {unknown_command(wanted)}", file=err)
        return 2
    parser = make_parser(given)
    # argparse writes --help, --version and usage errors to sys.stdout / sys.stderr.
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = parser.parse_args(given)
        except SystemExit as exit_:
            return int(exit_.code or 0)
    if only is not None and not only(args):
        return NOT_SERVED
    from jetforge.cli.session import CommonOptions, Session

    session = Session(args, out, err, given, options=CommonOptions.parsed(args))
    if env is not None:
        session.env = env
    return _run(session, out, err)


def _run(session: Session, out: TextIO, err: TextIO) -> int:
    """Run the session's command; every error it raises becomes its line and exit code."""
    handler: Callable[[Session], int] = session.args.handler
    verbose = session.options.verbose
    try:
        with _terminate_like_interrupt():
            return handler(session)
    except BrokenPipeError:
        # The reader went away (`jetforge list | head`): nothing more to say, to anyone.
        _silence(out)
        return 1
    except TerminatedError:
        print(_stopped("terminated", session), file=err)
        return 143
    except KeyboardInterrupt:
        print(_stopped("interrupted", session), file=err)
        return 130
    except StageFailedError as failure:
        if verbose:
            _print_traceback(err)
        session.render_failure(failure)
        return failure.exit_code
    except JetforgeError as error:
        if verbose:
            _print_traceback(err)
        print(f"jetforge: error: {error}", file=err)
        if not isinstance(error, UsageError) and not verbose:
            print("jetforge: re-run with -v for details", file=err)
        return error.exit_code
    except Exception as error:
        if verbose:
            _print_traceback(err)
        print(f"jetforge: internal error: {type(error).__name__}: {error}", file=err)
        print("jetforge: re-run with -v for details", file=err)
        return 1


def _stopped(how: str, session: Session) -> str:
    """The line of a command stopped by a signal: nothing built is lost, and (for a
    build) the command that resumes it."""
    resume = f"; resume with: {session.resume}" if session.resume else ""
    return f"jetforge: {how}; nothing that was built is lost{resume}"


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`TerminatedError`, so the cleanup that
    Ctrl-C gets (running build or test stopped, containers removed) happens for it too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(_signal: int, _frame: object) -> None:
        raise TerminatedError

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _silence(stream: TextIO) -> None:
    """Point a closed pipe's descriptor at /dev/null, so the flush at exit stays quiet."""
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)


def entry() -> None:
    """Run the command of ``sys.argv`` in this process and exit with its code (see
    :func:`jetforge.cli.entry.entry`, which asks the command server first)."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence(sys.stdout)
        code = code or 1
    sys.exit(code)


def _print_traceback(err: TextIO) -> None:
    import traceback  # here, not at the top: start-up time

    traceback.print_exc(file=err)
