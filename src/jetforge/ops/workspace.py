"""Where a command runs (the :class:`Workspace`): its environment and working directory,
the config file's settings, the platform it plans for, the package search directories and
their catalog, and jetforge's directories (cache, state, the user's data), each found
once, when first asked; and where its notes and warnings go (a subclass shows them: the
command line's session prints them). Every orchestrator takes one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import jetforge
from jetforge.core.formats import root_format
from jetforge.core.platform import Platform
from jetforge.discovery.discover import Discovery, discovery
from jetforge.discovery.index import VARIABLE
from jetforge.discovery.walk import PackageRoot
from jetforge.errors import FailureError, UsageError
from jetforge.host.files import is_disk_full, writing_problem
from jetforge.host.platform import detect_platform
from jetforge.host.platform_data import target_names
from jetforge.host.probes import RememberingRunner
from jetforge.host.settings import Settings, data_dir_problem, load_settings

if TYPE_CHECKING:
    from jetforge.core.catalog import Catalog
    from jetforge.core.listing import Listing
    from jetforge.core.resolve import Resolution
    from jetforge.engine.cli_engine import CliEngine


NO_INDEX_VARIABLE = VARIABLE  # set to 1, it does what --no-index does


@dataclass(frozen=True, slots=True)
class Choices:
    """What a command was told that shapes its workspace: where to search for packages
    (``--package-dirs``, ``--skip-packages``, ``--package-format``, ``--no-index``) and
    which platform to plan for (``--target``, ``--distro``)."""

    package_dirs: tuple[str, ...] = ()
    skip_packages: tuple[str, ...] = ()
    package_format: str = "auto"
    no_index: bool = False
    target: str | None = None
    distro: str | None = None


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


@dataclass(kw_only=True)
class Workspace:
    """Where a command runs (see the module's text). ``keeps``: the command keeps what it
    makes in the cache directory (it fails when it cannot write there, where a command
    that only reads goes on with a temporary one); ``resources`` closes with the command."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path = field(default_factory=working_directory)
    choices: Choices = field(default_factory=Choices)
    keeps: bool = True
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @cached_property
    def settings(self) -> Settings:
        """The config file's defaults."""
        return load_settings(self.cwd, self.env, engine_names)

    @cached_property
    def platform(self) -> Platform:
        """The platform this command plans for."""
        memo = None if self.index_dir is None else self.cache_dir / "probes.json"
        detected = detect_platform(
            self.env,
            runner=RememberingRunner(memo),
            target=self.choices.target,
            distro=self.choices.distro,
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
        kind = root_format(self.choices.package_format)
        given = [PackageRoot(self.cwd / item, kind) for item in self.choices.package_dirs]
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
    def discovery(self) -> Discovery:
        """What discovery found in the search directories, for this platform."""
        return discovery(
            self.package_roots,
            self.platform,
            skip=self.choices.skip_packages,
            env=self.env,
            index=self.index_dir,
        )

    @property
    def catalog(self) -> Catalog:
        """Every package of the search directories, for this platform."""
        return self.discovery.catalog

    @property
    def listing(self) -> Listing:
        """What ``list`` shows of the catalog (from the discovery index, it decodes no
        variant)."""
        return self.discovery.listing

    @cached_property
    def index_dir(self) -> Path | None:
        """The discovery index's folder, or None with ``--no-index`` / ``JETFORGE_NO_INDEX``."""
        if self.choices.no_index or self.env.get(NO_INDEX_VARIABLE, "") not in ("", "0"):
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
        import shutil  # here, not at the top: start-up time (this is rare)
        import tempfile

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
        which every such container may write. It must not be a system directory, nor
        hold jetforge's own directories (the cache, the state) or lie inside one (as
        written or where links lead), and an engine must be able to mount it."""
        found, source = self._data_dir_source
        if self.settings.data_dir is None:
            problem = data_dir_problem(str(found))
            if problem:
                raise UsageError(
                    f"{source} {str(found)!r} {problem} (valid: a path without ':', ',' "
                    "or control characters)"
                )
        if found.exists() and not found.is_dir():
            raise UsageError(
                f"{source} ({found}) is not a directory, and it is mounted at /data in every "
                "test and run container (valid: a directory of its own, such as "
                "'/srv/jetforge-data')"
            )
        for what, own in self._kept_from_containers():
            if _holds(found, own):
                raise UsageError(
                    f"{source} ({found}) holds {what} {own}, which every test and run "
                    "container could then change (valid: a directory of its own outside "
                    "it, such as '/srv/jetforge-data')"
                )
            if what not in _HELD_ONLY and _holds(own, found):
                raise UsageError(
                    f"{source} ({found}) is inside {what} {own}, whose files every test "
                    "and run container could then change (valid: a directory of its own "
                    "outside it, such as '/srv/jetforge-data')"
                )
        return found

    def _kept_from_containers(self) -> list[tuple[str, Path]]:
        """What the data directory must neither hold nor lie in: jetforge's own
        directories (its configuration says which code runs), the engines' storage and
        the user's credentials. A data directory may lie beside a config file (a project's
        ``data/``), not hold it."""
        home = Path(self.env.get("HOME", "/root"))
        config = self.env.get("XDG_CONFIG_HOME") or str(home / ".config")
        kept = [
            ("jetforge's cache directory", self.cache_home),
            ("jetforge's cache directory", self.cache_dir),
            ("jetforge's state directory", self.state_dir),
            ("jetforge's configuration directory", Path(config) / "jetforge"),
            ("the engines' storage", Path("/var/lib/docker")),
            ("the engines' storage", Path("/var/lib/containers")),
            ("the engines' storage", home / ".local" / "share" / "containers"),
            ("the credentials directory", home / ".ssh"),
            ("the credentials directory", home / ".docker"),
            ("the credentials directory", home / ".gnupg"),
        ]
        if self.settings.path is not None:
            kept.append(("the directory of the config file", self.settings.path.parent))
        return kept

    @cached_property
    def _data_dir_source(self) -> tuple[Path, str]:
        """The data directory as configured, and what configured it (for messages)."""
        if self.settings.data_dir is not None:
            return self.settings.data_dir, f"{self.settings.path}: 'data_dir'"
        base = self.env.get("XDG_DATA_HOME") or str(
            Path(self.env.get("HOME", "/root")) / ".local" / "share"
        )
        return Path(base) / "jetforge" / "data", "XDG_DATA_HOME: the data directory"

    def make_data_dir(self) -> Path:
        """The data directory, made when missing (a build's tests and ``run`` mount it);
        one that cannot be made is one line naming what configured it."""
        found, source = self._data_dir_source
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            message = (
                f"{source}: cannot make {found} ({error.strerror or error}); "
                "set data_dir in jetforge.toml or XDG_DATA_HOME to a writable directory"
            )
            raise FailureError(message) if is_disk_full(error) else UsageError(message) from None
        return found

    @cached_property
    def state_dir(self) -> Path:
        """Where jetforge keeps its own records (what each image holds, the SBOMs): never
        mounted into a container."""
        base = self.env.get("XDG_STATE_HOME") or str(
            Path(self.env.get("HOME", "/root")) / ".local" / "state"
        )
        return Path(base) / "jetforge"

    @cached_property
    def records_dir(self) -> Path:
        """The state directory for a command that keeps records there (a build, ``lock``,
        an ``autotag`` that builds), checked once before any work as the cache directory
        is: when nothing can be written there (read-only, not ours, full), one line
        naming it, instead of a build that fails at its end."""
        home = self.state_dir
        problem = writing_problem(home)
        if problem is None:
            return home
        why = problem.strerror or str(problem)
        remedy = "free some space or set" if is_disk_full(problem) else "set"
        message = (
            f"cannot write the state directory {home} ({why}); "
            f"{remedy} XDG_STATE_HOME to a writable directory"
        )
        raise FailureError(message) if is_disk_full(problem) else UsageError(message)

    def engine_kind(self, flag: str | None) -> type[CliEngine]:
        """The engine ``--engine`` (``flag``), ``JETFORGE_ENGINE`` or the config file name."""
        from jetforge.engine.table import choose_engine  # commands that only read: no engine

        return choose_engine(flag, self.env, self.settings.engine)

    def engine(self, flag: str | None) -> CliEngine:
        """That engine, connected (:meth:`CliEngine.connect`; what connecting learns of the
        engine's program is remembered in the cache directory)."""
        return self.engine_kind(flag).connect(self.env, memo=self.cache_dir / "engines.json")

    def resolve(self, packages: Sequence[str]) -> Resolution:
        """``packages`` (names, patterns, pins) resolved into one chain of this catalog;
        its broken package definitions are reported first, as one line."""
        from jetforge.core.resolve import expand_requests, resolve  # start-up time: not on list

        catalog = self.catalog
        self.report_problems(each=False)
        return resolve(catalog, expand_requests(catalog, list(packages)), self.env)

    def note(self, message: str) -> None:
        """One informational line (shown by a subclass; here it goes nowhere)."""

    def warn(self, message: str) -> None:
        """One warning line (shown by a subclass; here it goes nowhere)."""

    def report_problems(self, *, each: bool) -> None:
        """Report broken package definitions (and, with ``each``, the warnings reading
        packages left): each on a line, or one summary line. Each broken definition says
        that its package is left out, whatever broke it (a script that raised, ran out of
        time or ended its process alike): a command that names it fails with that line."""
        listing = self.listing
        problems = listing.problems
        if each:
            for problem in problems:
                self.warn(f"{problem}; package left out (a definition error)")
            for warning in listing.warnings:
                self.warn(warning)
        elif problems:
            self.warn(
                f"{len(problems)} package definition(s) have errors; "
                "'jetforge list --strict' shows them"
            )


def preset_names() -> tuple[str, ...]:
    """The platform presets ``--target`` may name, in the platform table's order."""
    return target_names()


def engine_names() -> tuple[str, ...]:
    """The engines ``--engine`` and the config file may name (the engine table imported
    only when asked: a command that only reads needs none)."""
    from jetforge.engine import table

    return table.engine_names()


def shipped_packages() -> Path:
    """The packages tree shipped with jetforge (inside the wheel, or the source checkout)."""
    inside = Path(jetforge.__file__).parent / "packages"
    return inside if inside.is_dir() else Path(jetforge.__file__).parents[2] / "packages"


_HELD_ONLY = ("jetforge's configuration directory", "the directory of the config file")


def _holds(directory: Path, inner: Path) -> bool:
    """Whether ``inner`` is ``directory`` or lies inside it, as written or where links
    lead."""
    outer = {os.path.normpath(directory), os.path.realpath(directory)}
    inside = {os.path.normpath(inner), os.path.realpath(inner)}
    return any(Path(one).is_relative_to(other) for one in inside for other in outer)
