"""``jetforge run``: run a container with the right GPU, device and data options
(docs/cli.md, "run").

Everything before IMAGE that starts with ``-`` is an engine option and is passed through,
except jetforge's own options below; everything after IMAGE is the command. The container
runs on jetforge's own stdin, stdout and stderr, and its exit code is jetforge's.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any, TextIO

from jetforge.cli.commands import summary
from jetforge.cli.session import EMPTY_PATH, Session, split_list
from jetforge.cli.talk import TerminalConversation, build_command_line, reporter_for
from jetforge.core.formats import ROOT_FORMATS
from jetforge.errors import UsageError
from jetforge.ops.finding import FindRequest, find_or_build
from jetforge.ops.launch import prepare_launch, split_run_words
from jetforge.ops.workspace import engine_names

# jetforge's own options (name → takes a value); none of them is a `docker run` option.
OWN_OPTIONS = {
    "--dry-run": False,
    "--engine": True,
    "--package-dirs": True,
    "--package-format": True,
    "--host-root": True,
    "--help": False,
}
# Those of them that name a file or directory: an empty value is refused.
PATH_OPTIONS = ("--package-dirs", "--host-root")
USAGE = "jetforge run [options] IMAGE|PACKAGE [CMD ...]"
DESCRIPTION = (
    "Run IMAGE (or a compatible image of PACKAGE, found with 'jetforge autotag') with --rm, "
    "--network host, GPU access probed from the engine, the data dir at /data, "
    "/etc/localtime, X11 when DISPLAY is set, and the host's cameras, I2C, sound, USB and "
    "serial devices and jtop socket when present. Every other option before IMAGE "
    "(e.g. -v, -e, --name, --network, --runtime, --gpus) goes to the engine's 'run' "
    "and wins over jetforge's choice. -it is added when attached to a terminal."
)


def register(commands: Any) -> None:
    """Add the subcommand; its words are split by :func:`split_run_words`, not argparse."""
    parser = commands.add_parser(
        "run",
        help=summary("run"),
        description=DESCRIPTION,
        usage=USAGE,
        add_help=False,
        # No prefix characters: every word, options included, lands in `words`.
        prefix_chars="\0",
    )
    parser.add_argument("words", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=run)


def help_text() -> str:
    """``jetforge run --help``."""
    # No -h: before IMAGE it is the engine's --hostname.
    parser = argparse.ArgumentParser(
        prog="jetforge run", usage=USAGE, description=DESCRIPTION, add_help=False
    )
    parser.add_argument("--help", action="store_true", help="show this help message and exit")
    parser.add_argument("image", metavar="IMAGE|PACKAGE", help="an image, or a package name")
    parser.add_argument("command", metavar="CMD", nargs="*", help="the command to run in it")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the engine command instead of running it"
    )
    parser.add_argument("--engine", choices=engine_names(), help="container engine")
    parser.add_argument(
        "--package-dirs", metavar="DIRS", help="more package directories (for PACKAGE names)"
    )
    parser.add_argument(
        "--package-format", choices=ROOT_FORMATS, help="format of the --package-dirs trees"
    )
    return parser.format_help()


def run(session: Session) -> int:
    """Plan the engine command; print it (``--dry-run``) or run it and return its code."""
    words = split_run_words(session.args.words, OWN_OPTIONS)
    if words.has_own("--help") or (not words.image and words.options == ("-h",)):
        print(help_text(), end="", file=session.stdout)
        return 0
    if not words.image:
        raise UsageError(f"run: name an IMAGE or PACKAGE (usage: {USAGE})")
    if words.image.startswith("-"):  # after `--`: the engine would read it as an option
        raise UsageError(
            f"run: '{words.image}' looks like an option, not an IMAGE or PACKAGE (usage: {USAGE})"
        )
    for name, value in words.own:
        if OWN_OPTIONS[name] and value is None:
            raise UsageError(f"run: {name} needs a value")
        if name in PATH_OPTIONS and value is not None and not value.strip():
            raise UsageError(f"run: {name}: {EMPTY_PATH}")
    package_format = words.own_value("--package-format") or "auto"
    if package_format not in ROOT_FORMATS:
        raise UsageError(
            f"run: --package-format: '{package_format}' is not one of " + ", ".join(ROOT_FORMATS)
        )
    # run's own words carry its package options (everything else goes to the engine)
    choices = replace(
        session.choices,
        package_dirs=tuple(split_list(words.own_values("--package-dirs"))),
        package_format=package_format,
        skip_packages=(),
    )
    session = replace(session, choices=choices)
    dry_run = words.has_own("--dry-run")
    engine = words.own_value("--engine")
    launch = prepare_launch(
        session,
        words,
        engine_flag=engine,
        host_root=words.own_value("--host-root"),
        terminal=_is_terminal(sys.stdin) and _is_terminal(session.stdout),
        find=lambda name: autotag_image(session, name, engine, dry_run=dry_run),
    )
    if dry_run:
        print(launch.shell(), file=session.stdout)
        return 0
    session.make_data_dir()
    session.stdout.flush()
    session.stderr.flush()
    return launch.attach()


def autotag_image(session: Session, name: str, engine: str | None, *, dry_run: bool) -> str:
    """The image ``jetforge autotag NAME`` chooses (pulling or building it unless this is
    a dry run; docs/cli.md, "autotag")."""
    request = FindRequest(
        name,
        pull=not dry_run,
        build=not dry_run,
        engine=engine,
        resume=build_command_line(session, name, engine),
    )
    conversation = TerminalConversation(session, yes=False)
    found = find_or_build(request, session, conversation, lambda: reporter_for(session))
    session.note(f"{found.reference}: {found.reason}")
    return found.reference


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):
        return False
