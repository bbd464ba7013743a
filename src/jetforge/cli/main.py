"""``jetforge`` entry point: parse arguments, run one subcommand, render every error here.

Start-up time counts (``jetforge --help`` is a few hundredths of a second): this module
imports only argparse and what renders errors, and the parser only the running command's
module (no ``typing``, ``dataclasses``, ``threading`` or ``shutil`` here).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from jetforge import __version__
from jetforge.cli.commands import COMMANDS, load, summary
from jetforge.cli.streams import (
    diagnostics,
    escape_controls,
    reserve_standard_descriptors,
    results,
    silence,
)
from jetforge.errors import (
    JetforgeError,
    OutputError,
    StageFailedError,
    TerminatedError,
    UsageError,
)

TYPE_CHECKING = False  # typing's own, without importing typing (mypy reads it as such)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import TextIO

    from jetforge.cli.session import Session


class _Formatter(argparse.HelpFormatter):
    """argparse's help layout, its width found as ``shutil.get_terminal_size`` finds it
    (``COLUMNS``, else the terminal of standard output, else 80) without importing
    shutil, which argparse does for every parser it makes."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    """The parsers of jetforge and its commands (``add_parser`` makes its own class):
    laid out by :class:`_Formatter`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


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
    parser = _Parser(
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


def keeps_files(args: argparse.Namespace) -> bool:
    """Whether the command keeps what it makes in the cache directory (builds, locks,
    bootstrap, autotag that may build, the package cache's server): it fails when it
    cannot write there, where a command that only reads goes on with a temporary one."""
    if args.command == "build":
        return not (args.simulate or args.list_packages or args.show_packages)
    if args.command in ("lock", "bootstrap"):
        return True
    if args.command == "cache":
        return bool(args.cache_action == "serve")
    if args.command == "autotag":
        return not args.no_build
    return False


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Run jetforge with ``argv``; returns the exit code (docs/cli.md).

    Everything the command prints goes through :mod:`jetforge.cli.streams`: a standard
    output that is closed, full or broken is one error line here, at the first write or
    at the final flush."""
    out = results(sys.stdout if stdout is None else stdout)
    err = diagnostics(sys.stderr if stderr is None else stderr)
    given = list(sys.argv[1:] if argv is None else argv)
    wanted = chosen_command(given)
    if wanted is not None and wanted not in COMMANDS:
        print(f"jetforge: error: {escape_controls(unknown_command(wanted))}", file=err)
        return 2
    running = _Running()

    def command() -> int:
        parser = make_parser(given)
        # argparse writes --help, --version and usage errors to sys.stdout / sys.stderr.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                args = parser.parse_args(given)
            except SystemExit as exit_:
                return int(exit_.code or 0)
        from jetforge.cli.session import CommonOptions, Session, parsed_choices

        session = Session(
            args=args,
            stdout=out,
            stderr=err,
            argv=given,
            options=CommonOptions.parsed(args),
            choices=parsed_choices(args),
            keeps=keeps_files(args),
        )
        running.verbose, running.session = args.verbose, session
        if env is not None:
            session.env = env
        handler: Callable[[Session], int] = args.handler
        with session.resources:
            return handler(session)

    return _run(command, out, err, running)


class _Running:
    """What rendering an error needs of the command that raised it."""

    def __init__(self) -> None:
        self.verbose = False
        self.session: Session | None = None


def _stopped(how: str, running: _Running) -> str:
    """The line of a command stopped by a signal: nothing built is lost, and (for a
    build) the command that resumes it."""
    resume = running.session.resume if running.session is not None else ""
    return f"jetforge: {how}; nothing that was built is lost" + (
        f"; resume with: {resume}" if resume else ""
    )


def _run(command: Callable[[], int], out: TextIO, err: TextIO, running: _Running) -> int:
    """Run the command and flush its results; every error it raises becomes its line and
    exit code."""
    try:
        with _terminate_like_interrupt():
            code = command()
            out.flush()
            return code
    except BrokenPipeError:
        # The reader went away (`jetforge list | head`): nothing more to say, to anyone.
        silence(out)
        return 1
    except TerminatedError as stopped:
        _say_last(err, _stopped(stopped.reason, running))
        return stopped.exit_code
    except KeyboardInterrupt:
        _say_last(err, _stopped("interrupted", running))
        return 130
    except StageFailedError as failure:
        from jetforge.cli.session import failure_lines  # imported already by the command

        if running.verbose:
            _print_traceback(err)
        print(escape_controls("\n".join(failure_lines(failure))), file=err)
        return failure.exit_code
    except JetforgeError as error:
        lost = isinstance(error, OutputError)  # a traceback would add nothing to it
        if lost:
            silence(out)
        if running.verbose:
            _print_traceback(err)
        print(f"jetforge: error: {escape_controls(str(error))}", file=err)
        if not isinstance(error, UsageError) and not running.verbose and not lost:
            print("jetforge: re-run with -v for details", file=err)
        return error.exit_code
    except Exception as error:
        if running.verbose:
            _print_traceback(err)
        print(
            f"jetforge: internal error: {type(error).__name__}: {escape_controls(str(error))}",
            file=err,
        )
        print("jetforge: re-run with -v for details", file=err)
        return 1
    finally:
        err.flush()


# Signals that end a command as Ctrl-C does: SIGTERM, and SIGHUP (the terminal closed,
# the ssh connection dropped), which would otherwise end jetforge without any cleanup.
_TERMINATING = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP raise :class:`TerminatedError`, so the
    cleanup that Ctrl-C gets (running build or test stopped, containers removed, config
    script workers ended) happens for them too. A signal ignored when jetforge started
    (``nohup jetforge build …``) stays ignored."""
    threading = sys.modules.get("threading")  # not imported: only the main thread runs
    if threading is not None and threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(number: int, _frame: object) -> None:
        raise TerminatedError(number)

    previous = {
        number: signal.signal(number, raise_terminated)
        for number in _TERMINATING
        if signal.getsignal(number) != signal.SIG_IGN
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _say_last(err: TextIO, line: str) -> None:
    """Print the last line of an interrupted command; a terminal that hung up takes
    nothing (and must not fail the exit)."""
    try:
        print(line, file=err, flush=True)
    except (OSError, ValueError):
        silence(err)


def entry() -> None:
    """The ``jetforge`` program (and ``python -m jetforge``): run the command of
    ``sys.argv`` and exit with its code."""
    reserve_standard_descriptors()
    sys.exit(main())


def _print_traceback(err: TextIO) -> None:
    import traceback  # here, not at the top: start-up time

    traceback.print_exc(file=err)
