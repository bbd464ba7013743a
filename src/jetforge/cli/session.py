"""What every subcommand shares: environment, settings, platform and the package catalog.

Built once per command from the parsed arguments, then passed explicitly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TextIO

import jetforge
from jetforge.core.catalog import Catalog
from jetforge.core.platform import Platform
from jetforge.core.spec import ROOT_FORMATS, root_format
from jetforge.discovery.discover import discover
from jetforge.discovery.index import VARIABLE
from jetforge.discovery.walk import PackageRoot
from jetforge.errors import FailureError, StageFailedError, UsageError
from jetforge.host.files import is_disk_full, writing_problem
from jetforge.host.platform import detect_platform
from jetforge.host.platform_data import target_names
from jetforge.host.probes import RememberingRunner
from jetforge.host.settings import Settings, load_settings


def shipped_packages() -> Path:
    """The packages tree shipped with jetforge (inside the wheel, or the source checkout)."""
    inside = Path(jetforge.__file__).parent / "packages"
    return inside if inside.is_dir() else Path(jetforge.__file__).parents[2] / "packages"


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    """``--engine``, for the commands that drive one (their choices are the engine table's,
    imported here: a read-only command never registers it)."""
    from jetforge.engine.table import ENGINES

    parser.add_argument("--engine", choices=tuple(ENGINES), help="container engine")


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
    parser.add_argument("--ca-bundle", metavar="FILE", help="extra CA bundle to trust")


def add_package_options(parser: argparse.ArgumentParser) -> None:
    """Options of every command that reads packages."""
    group = parser.add_argument_group("packages and platform")
    group.add_argument(
        "--package-dirs",
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
        help=f"read every package directory again, not from the discovery index ({VARIABLE}=1)",
    )
    group.add_argument("--target", metavar="NAME", help=target_help("plan for"))
    group.add_argument("--distro", metavar="DISTRO", help="distro release, e.g. ubuntu:22.04")


def target_help(verb: str) -> str:
    """The help of ``--target``: what it does and the presets of the platform table."""
    return f"{verb} a platform preset: {', '.join(target_names())}"


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


def working_directory() -> Path:
    """The working directory; one that was deleted (or cannot be read) is a usage error,
    since relative paths and the config file are taken from it."""
    try:
        return Path.cwd()
    except OSError as error:
        gone = isinstance(error, FileNotFoundError)
        problem = "it was deleted" if gone else error.strerror or str(error)
        raise UsageError(
            f"cannot use the working directory ({problem}); cd to an existing directory "
            "and run the command again"
        ) from None


@dataclass(frozen=True, slots=True)
class CommonOptions:
    """The options every command shares (output, packages, platform), typed right after
    parsing; a command without package options has their defaults."""

    verbose: bool = False
    quiet: bool = False
    color: bool = True
    package_dirs: tuple[str, ...] = ()
    skip_packages: tuple[str, ...] = ()
    package_format: str = "auto"
    no_index: bool = False
    target: str | None = None
    distro: str | None = None

    @classmethod
    def parsed(cls, args: argparse.Namespace) -> CommonOptions:
        """The shared options of a parsed command line."""
        return cls(
            verbose=args.verbose,
            quiet=args.quiet,
            color=not args.no_color,
            package_dirs=tuple(split_list(getattr(args, "package_dirs", []))),
            skip_packages=tuple(split_list(getattr(args, "skip_packages", []))),
            package_format=getattr(args, "package_format", "auto"),
            no_index=getattr(args, "no_index", False),
            target=getattr(args, "target", None),
            distro=getattr(args, "distro", None),
        )


@dataclass
class Session:
    """The per-command context: arguments, environment and lazily loaded state."""

    args: argparse.Namespace
    stdout: TextIO
    stderr: TextIO
    argv: list[str] = field(default_factory=list)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path = field(default_factory=working_directory)
    options: CommonOptions = field(default_factory=CommonOptions)
    keeps: bool = True  # the command keeps what it makes in the cache directory
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    # The command that resumes what this command builds, once it has begun building: an
    # interrupted build says it (``main`` renders the interruption).
    resume: str = ""

    @cached_property
    def settings(self) -> Settings:
        """The config file's defaults."""
        return load_settings(self.cwd, self.env)

    @cached_property
    def platform(self) -> Platform:
        """The platform this command plans for."""
        memo = None if self.index_dir is None else self.cache_dir / "probes.json"
        detected = detect_platform(
            self.env,
            runner=RememberingRunner(memo),
            target=self.options.target,
            distro=self.options.distro,
        )
        for warning in detected.warnings:
            self.warn(warning)
        return detected

    @cached_property
    def package_roots(self) -> tuple[PackageRoot, ...]:
        """Search directories in order: shipped, ``--package-dirs``, config file.

        ``JETFORGE_SHIPPED_PACKAGES`` replaces the shipped tree (empty: no shipped tree),
        for a vendored tree or for tests. A jetson-containers tree among the others is a
        whole library of its own (with its own cuda, python, pytorch …), so the shipped
        tree is left out then. Relative paths become absolute: engines get them as mounts.
        """
        kind = root_format(self.options.package_format)
        given = [PackageRoot(self.cwd / item, kind) for item in self.options.package_dirs]
        for root in given:
            if not root.path.is_dir():
                raise UsageError(f"--package-dirs: '{root.path}' is not a directory")
        configured = []
        settings = self.settings
        for directory, form in zip(settings.package_dirs, settings.package_formats, strict=True):
            if directory.is_dir():
                configured.append(PackageRoot(directory.absolute(), form))
            else:
                self.warn(
                    f"{settings.path}: package_dirs: '{directory}' is not a directory; "
                    "searched without it"
                )
        shipped = self.env.get("JETFORGE_SHIPPED_PACKAGES")
        others = (*given, *configured)
        if shipped is None:
            first = (
                []
                if any(r.effective_format() == "jc" for r in others)
                else [PackageRoot(shipped_packages())]
            )
        else:
            first = [PackageRoot(self.cwd / shipped)] if shipped else []
        return (*first, *others)

    @cached_property
    def catalog(self) -> Catalog:
        """Every package of the search directories, for this platform."""
        return discover(
            self.package_roots,
            self.platform,
            skip=self.options.skip_packages,
            env=self.env,
            index=self.index_dir,
        )

    @cached_property
    def index_dir(self) -> Path | None:
        """The discovery index's folder, or None with ``--no-index`` / ``JETFORGE_NO_INDEX``."""
        if self.options.no_index or self.env.get(VARIABLE, "") not in ("", "0"):
            return None
        if self.cache_dir != self.cache_home:
            return None  # a temporary cache directory: an index would be written for nothing
        return self.cache_dir / "index"

    @cached_property
    def cache_home(self) -> Path:
        """``$XDG_CACHE_HOME/jetforge`` (``~/.cache/jetforge``): where jetforge keeps what it
        remembers and the package cache's state; read what is there from here."""
        base = self.env.get("XDG_CACHE_HOME") or str(Path(self.env.get("HOME", "/root")) / ".cache")
        return Path(base) / "jetforge"

    @cached_property
    def cache_dir(self) -> Path:
        """Where this command writes generated contexts and what it remembers: the cache
        home, checked once. When nothing can be written there (read-only, not ours, full),
        a command that keeps things there fails with one line; any other command warns once
        and writes into a temporary directory removed when it ends (and keeps no index)."""
        home = self.cache_home
        problem = writing_problem(home)
        if problem is None:
            return home
        why = problem.strerror or str(problem)
        if self.keeps:
            remedy = "free some space or set" if is_disk_full(problem) else "set"
            message = (
                f"cannot write the cache directory {home} ({why}); "
                f"{remedy} XDG_CACHE_HOME to a writable directory"
            )
            raise FailureError(message) if is_disk_full(problem) else UsageError(message)
        try:
            place = self.env.get("TMPDIR") or None
            scratch = Path(tempfile.mkdtemp(prefix="jetforge-cache-", dir=place))
        except OSError as error:
            raise UsageError(
                f"cannot write the cache directory {home} ({why}), nor a temporary one "
                f"({error.strerror or error}); set XDG_CACHE_HOME to a writable directory"
            ) from None
        self.resources.callback(shutil.rmtree, scratch, ignore_errors=True)
        self.warn(f"cannot write the cache directory {home} ({why}); nothing is kept for later")
        return scratch

    @cached_property
    def data_dir(self) -> Path:
        """The data directory mounted at ``/data`` in tests and ``run``: the user's data,
        which every such container may write. It must not be a system directory, nor hold
        jetforge's own directories (the cache, the state)."""
        if self.settings.data_dir is not None:
            found, source = self.settings.data_dir, f"{self.settings.path}: 'data_dir'"
        else:
            base = self.env.get("XDG_DATA_HOME") or str(
                Path(self.env.get("HOME", "/root")) / ".local" / "share"
            )
            found, source = Path(base) / "jetforge" / "data", "XDG_DATA_HOME: the data directory"
        for what, own in (("cache", self.cache_dir), ("state", self.state_dir)):
            if _holds(found, own):
                raise UsageError(
                    f"{source} ({found}) holds jetforge's {what} directory {own}, which every "
                    "test and run container could then change (valid: a directory of its own "
                    "outside it, such as '/srv/jetforge-data')"
                )
        return found

    @cached_property
    def state_dir(self) -> Path:
        """Where jetforge keeps its own records (what each image holds, the SBOMs): never
        mounted into a container."""
        base = self.env.get("XDG_STATE_HOME") or str(
            Path(self.env.get("HOME", "/root")) / ".local" / "state"
        )
        return Path(base) / "jetforge"

    def note(self, message: str) -> None:
        """One informational line on stderr (silenced by -q)."""
        if not self.options.quiet:
            print(f"jetforge: {message}", file=self.stderr)

    def render_failure(self, failure: StageFailedError) -> None:
        """The failing stage, its command, the end of its log, the log path, how to resume."""
        print("\n".join(failure_lines(failure)), file=self.stderr)

    def warn(self, message: str) -> None:
        """One warning line on stderr."""
        if not self.options.quiet:
            print(f"jetforge: warning: {message}", file=self.stderr)

    def report_problems(self, *, each: bool) -> None:
        """Report broken package definitions (and, with ``each``, the warnings reading
        packages left): each on a line, or one summary line."""
        problems = self.catalog.problems
        if each:
            for problem in (*map(str, problems), *self.catalog.warnings):
                self.warn(problem)
        elif problems:
            self.warn(
                f"{len(problems)} package definition(s) have errors; "
                "'jetforge list --strict' shows them"
            )


def _holds(directory: Path, inner: Path) -> bool:
    """Whether ``inner`` is ``directory`` or lies inside it, as written or where links
    lead."""
    outer = {os.path.normpath(directory), os.path.realpath(directory)}
    inside = {os.path.normpath(inner), os.path.realpath(inner)}
    return any(Path(one).is_relative_to(other) for one in inside for other in outer)
