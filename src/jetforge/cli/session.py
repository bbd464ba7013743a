"""What every subcommand shares: the :class:`Session` (the command's workspace, with its
arguments and output streams; it prints the workspace's notes and warnings), the options
several commands take, and how a failed stage is reported.

Built once per command from the parsed arguments, then passed explicitly.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TextIO

from jetforge.cli.streams import escape_controls
from jetforge.core.formats import ROOT_FORMATS
from jetforge.errors import StageFailedError, UsageError
from jetforge.ops.workspace import (
    NO_INDEX_VARIABLE,
    Choices,
    Workspace,
    engine_names,
    preset_names,
)

EMPTY_PATH = "an empty value names no file or directory"


def path_value(text: str) -> str:
    """The ``type`` of every option that names a file or directory: an empty (or blank)
    value, as ``--locked "$LOCK"`` gives with LOCK unset, is a usage error as the command
    line is parsed, never the working directory or no file at all."""
    if not text.strip():
        raise argparse.ArgumentTypeError(EMPTY_PATH)
    return text


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    """``--engine``, for the commands that drive one (their choices are the engine table's,
    asked here: a read-only command never registers it)."""
    parser.add_argument("--engine", choices=engine_names(), help="container engine")


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """``--name`` and ``--base``, for the commands that plan a chain's images."""
    parser.add_argument("--name", help="image name; 'ns/' is a namespace, 'name:tag' is exact")
    parser.add_argument("--base", metavar="IMAGE", help="base image of the first stage")


def add_stage_options(parser: argparse.ArgumentParser, *, flags_help: str) -> None:
    """Options that shape every stage (and so its key), for ``build`` and ``bake``."""
    parser.add_argument(
        "--build-args",
        action="append",
        default=[],
        metavar="K=V,...",
        help="build arguments for every stage (K:V also accepted)",
    )
    parser.add_argument("--build-flags", default="", metavar="STR", help=flags_help)
    parser.add_argument(
        "--no-github-api",
        action="store_true",
        help="comment out 'ADD https://api.github.com/...' lines of Dockerfiles (jc packages "
        "use them to follow upstream commits); package config scripts never use the network",
    )
    parser.add_argument(
        "--ca-bundle", type=path_value, metavar="FILE", help="extra CA bundle to trust"
    )


def add_package_options(parser: argparse.ArgumentParser, *, many_targets: bool = False) -> None:
    """Options of every command that reads packages; with ``many_targets`` ``--target`` is
    repeatable and fills ``targets`` (the command plans for each), not the workspace's."""
    group = parser.add_argument_group("packages and platform")
    group.add_argument(
        "--package-dirs",
        type=path_value,
        action="append",
        default=[],
        metavar="DIRS",
        help="more package directories (repeatable, or comma-separated)",
    )
    group.add_argument(
        "--skip-packages",
        action="append",
        default=[],
        metavar="PATTERNS",
        help="leave out variants matching these shell patterns (comma-separated)",
    )
    group.add_argument(
        "--package-format",
        choices=ROOT_FORMATS,
        default="auto",
        help="format of the --package-dirs trees: jetforge's own, jetson-containers' (jc), "
        "or auto (per package directory; a jetson-containers checkout is read as jc)",
    )
    group.add_argument(
        "--no-index",
        action="store_true",
        help="read every package directory again, not from the discovery index "
        f"({NO_INDEX_VARIABLE}=1)",
    )
    if many_targets:
        group.add_argument(
            "--target",
            dest="targets",
            action="append",
            default=[],
            metavar="NAME",
            help=target_help("plan for (repeatable)"),
        )
    else:
        group.add_argument("--target", metavar="NAME", help=target_help("plan for"))
    group.add_argument("--distro", metavar="DISTRO", help="distro release, e.g. ubuntu:22.04")


def target_help(verb: str) -> str:
    """The help of ``--target``: what it does and the presets of the platform table."""
    return f"{verb} a platform preset: {', '.join(preset_names())}"


def split_list(values: list[str]) -> list[str]:
    """Flatten repeatable, comma-separated option values."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


RESERVED_BUILD_ARGS = {"BASE_IMAGE": "the previous stage's image; choose the first one with --base"}
SECRET_WORDS = ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY", "CREDENTIAL")


def parse_build_args(values: list[str]) -> tuple[tuple[str, str], ...]:
    """``K=V,K2:V2`` (repeatable) into pairs; a pair without a separator is an error, and
    so is an argument jetforge sets itself (it would build stages that their keys do not
    describe)."""
    pairs = []
    for item in split_list(values):
        separator = "=" if "=" in item else ":"
        name, found, value = item.partition(separator)
        if not found or not name:
            raise UsageError(f"--build-args: '{item}' is not K=V (or K:V)")
        if name.strip() in RESERVED_BUILD_ARGS:
            raise UsageError(
                f"--build-args: {name.strip()} is set by jetforge "
                f"({RESERVED_BUILD_ARGS[name.strip()]})"
            )
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def warn_about_secrets(session: Session, pairs: tuple[tuple[str, str], ...]) -> None:
    """One warning per build argument whose name says it is a secret."""
    for name, _ in pairs:
        if any(word in name.upper() for word in SECRET_WORDS):
            session.warn(
                f"--build-args {name} looks like a secret: build arguments stay in the "
                "image's history and in the logs; pass it as a build secret instead "
                "(--build-flags '--secret id=NAME,env=NAME' with BuildKit)"
            )


def failure_lines(failure: StageFailedError) -> list[str]:
    """The lines that report a failed stage: the stage, its command, the end of its log,
    the log path and how to resume."""
    lines = [
        f"jetforge: error: {failure.stage} failed in {failure.step}",
        f"jetforge: command: {failure.command}",
    ]
    if failure.tail:
        lines.append(f"jetforge: last {len(failure.tail)} lines of the log:")
        lines += [f"  {line}" for line in failure.tail]
    if failure.log_path:
        lines.append(f"jetforge: log: {failure.log_path}")
    if failure.resume:
        lines.append(f"jetforge: resume with: {failure.resume}")
    return lines


@dataclass(frozen=True, slots=True)
class CommonOptions:
    """The output options every command shares, typed right after parsing."""

    verbose: bool = False
    quiet: bool = False
    color: bool = True

    @classmethod
    def parsed(cls, args: argparse.Namespace) -> CommonOptions:
        """The shared output options of a parsed command line."""
        return cls(verbose=args.verbose, quiet=args.quiet, color=not args.no_color)


def parsed_choices(args: argparse.Namespace) -> Choices:
    """The package and platform options of a parsed command line (a command without them
    has their defaults)."""
    return Choices(
        package_dirs=tuple(split_list(getattr(args, "package_dirs", []))),
        skip_packages=tuple(split_list(getattr(args, "skip_packages", []))),
        package_format=getattr(args, "package_format", "auto"),
        no_index=getattr(args, "no_index", False),
        target=getattr(args, "target", None),
        distro=getattr(args, "distro", None),
    )


@dataclass(kw_only=True)
class Session(Workspace):
    """One command: its workspace, arguments and output streams."""

    args: argparse.Namespace
    stdout: TextIO
    stderr: TextIO
    argv: list[str] = field(default_factory=list)
    options: CommonOptions = field(default_factory=CommonOptions)
    # The command that resumes what this command builds, once it has begun building: an
    # interrupted build says it (``main`` renders the interruption).
    resume: str = ""

    def note(self, message: str) -> None:
        """One informational line on stderr (silenced by -q)."""
        if not self.options.quiet:
            print(f"jetforge: {escape_controls(message)}", file=self.stderr)

    def render_failure(self, failure: StageFailedError) -> None:
        """The failing stage, its command, the end of its log, the log path, how to resume."""
        print(escape_controls("\n".join(failure_lines(failure))), file=self.stderr)

    def warn(self, message: str) -> None:
        """One warning line on stderr."""
        if not self.options.quiet:
            print(f"jetforge: warning: {escape_controls(message)}", file=self.stderr)
