"""What the build, autotag and run commands share on the terminal: the progress display
of a build, the questions and explanations of finding an image, and the build command
that resumes one (not a command)."""

from __future__ import annotations

import shlex
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jetforge.cli.session import Session
    from jetforge.ops.autotag import Choice
    from jetforge.reporter import Reporter

EXPLAINED = 10  # compatible candidates named with -v; the rest are counted


def reporter_for(session: Session) -> AbstractContextManager[Reporter]:
    """A live display on a terminal (unless -v or -q), plain lines otherwise."""
    from jetforge.cli.progress import LiveReporter, PlainReporter

    options = session.options
    if session.stderr.isatty() and not options.verbose and not options.quiet:
        return LiveReporter(session.stderr, color=options.color)
    return nullcontext(PlainReporter(session.stderr, verbose=options.verbose, quiet=options.quiet))


class TerminalConversation:
    """Questions on the terminal (yes without one, or with ``--yes``), explanations and
    pull output with -v, all on stderr: stdout holds only the answer."""

    def __init__(self, session: Session, *, yes: bool) -> None:
        self.session = session
        self.yes = yes

    def confirm(self, question: str) -> bool:
        """Ask on the terminal; yes with ``--yes`` or when stdin is not a terminal."""
        if self.yes or not _stdin_is_terminal():
            return True
        print(f"jetforge: {question} [Y/n] ", end="", file=self.session.stderr, flush=True)
        try:
            answer = input()
        except EOFError:
            return False
        return answer.strip().lower() in ("", "y", "yes")

    def explain(self, choice: Choice) -> None:
        """With -v: the images skipped, and those passed over for the chosen one."""
        session = self.session
        if not session.options.verbose:
            return
        for rejection in choice.rejected:
            session.note(f"skipped {rejection.reference}: {rejection.reason}")
        for candidate in choice.compatible[1 : EXPLAINED + 1]:
            session.note(f"passed over {candidate.reference} ({candidate.platform})")
        if len(choice.compatible) > EXPLAINED + 1:
            more = len(choice.compatible) - EXPLAINED - 1
            session.note(f"passed over {more} more compatible images")

    def output(self, line: str) -> None:
        """With -v: one line of a pull."""
        if self.session.options.verbose:
            print(f"  {line}", file=self.session.stderr)


def build_command_line(session: Session, name: str, engine: str | None) -> str:
    """The ``jetforge build`` command that builds ``name`` as this command would (with
    its package options): to resume a build that failed."""
    options = session.choices
    argv = ["build"]
    for directory in options.package_dirs:
        argv += ["--package-dirs", directory]
    if options.package_format != "auto":
        argv += ["--package-format", options.package_format]
    for pattern in options.skip_packages:
        argv += ["--skip-packages", pattern]
    for option, value in (("target", options.target), ("distro", options.distro)):
        if value:
            argv += [f"--{option}", value]
    if engine:
        argv += ["--engine", engine]
    return "jetforge " + shlex.join([*argv, name])


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False
