"""What a build request asks for, planned without building (docs/builds.md): the request
checked before any engine is asked (packages, lockfile, workers), its chains resolved and
planned, and for ``build --simulate`` (and ``bake``) the :class:`Simulation`: exactly what
a build would run. :mod:`jetforge.ops.chains` builds what is planned here.

A simulated build imports neither the executor, the registry client nor the progress
display.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.plan import Plan, PlanOptions, Stage, as_built, parent_placeholder, plan_build
from jetforge.core.resolve import Resolution, expand_requests, resolve
from jetforge.engine.command import Command, build_command
from jetforge.errors import EngineUnavailableError, UsageError
from jetforge.host.context import read_context
from jetforge.host.digests import Digests
from jetforge.host.trust import trust_context

if TYPE_CHECKING:
    from jetforge.cache.builds import BuildCache
    from jetforge.engine.base import Engine
    from jetforge.ops.lockstep import Pinned
    from jetforge.ops.workspace import Workspace


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """What to build and how: ``jetforge build``'s options once parsed."""

    packages: tuple[str, ...]
    name: str | None = None
    base: str | None = None
    multiple: bool = False
    skip_errors: bool = False
    skip_tests: tuple[str, ...] = ()
    test_only: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    build_flags: str = ""
    push: str | None = None
    no_github_api: bool = False
    logs: Path | None = None  # one directory for this build's logs (--logs)
    use_proxy: bool = False
    ca_bundle: str | None = None
    engine: str | None = None
    workers: tuple[str, ...] = ()  # --workers: names of jetforge.toml's workers
    rebuild: bool = False
    resume: str = ""  # the command that resumes a failed build
    lock_file: Path | None = None  # --lock: a copy of the lockfile goes there
    lock_option: str = "--lock"  # how the user named lock_file, for messages
    locked: Path | None = None  # --locked: the lockfile the build must match
    # jetforge lock: ``locked``'s pins apply, except to ``upgrade``'s names, and nothing
    # else may move; the chain may differ from the lockfile's
    refresh: bool = False
    upgrade: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Simulation:
    """The plans a build would run, with the engine program and the flags it would add."""

    plans: list[Plan]
    program: str
    extra: tuple[str, ...] = ()
    base_id: str | None = None  # the keys' base: its id, or (None) its name
    # per plan, the Dockerfile text its build writes and builds for a stage (by index)
    # when it is not the package's own (the plan's edits, a lock's pins, RUN mounts)
    dockerfiles: tuple[dict[int, str], ...] = ()

    def command(self, plan: Plan, stage: Stage) -> Command:
        """The engine command a build runs for ``stage`` of ``plan``, its build's own
        values (the logs directory, the parent's image id) shown as placeholders."""
        return build_command(as_built(stage), plan.build_mode, self.program, self.extra)


def simulated_plans(request: BuildRequest, workspace: Workspace) -> Simulation:
    """The plans of ``request`` without building, refused where a build refuses them
    (:func:`check_request`, and a locked build's chain, platform and base): with an engine
    that answers, exactly what a build would run (its build mode, the base image's id, the
    cache's flags, the Dockerfiles it writes); without one, the plan from the base image's
    reference and the configured engine's usual mode (the base image's id unchecked)."""
    checked = check_request(request, workspace)
    planning = checked.planning
    kind = workspace.engine_kind(request.engine)
    try:
        engine = kind.connect(workspace.env, memo=workspace.cache_dir / "engines.json")
    except EngineUnavailableError:  # anything else a build refuses, --simulate refuses
        plans = checked.plans(workspace, replace(planning, build_mode=kind.default_build_mode))
        return Simulation(plans, kind.name, dockerfiles=_dockerfiles(plans, (), None))
    base = base_reference(request, workspace)
    if checked.locked is not None:
        from jetforge.ops.lockstep import pinned_base

        base = pinned_base(engine, base, checked.locked)
        planning = replace(planning, base_image=base)
    info = engine.inspect(base)
    if info is None:
        workspace.note(f"base image {base} is not here: keys use its name (a build pulls it)")
    base_id = info.id if info else None
    plans = checked.plans(
        workspace, replace(planning, build_mode=engine.build_mode, base_id=base_id)
    )
    cache = build_cache(workspace, engine)
    dockerfiles = _dockerfiles(plans, cache.run_mounts, base_id)
    return Simulation(plans, engine.program, cache.build_extra, base_id, dockerfiles)


def _dockerfiles(
    plans: list[Plan], run_mounts: tuple[str, ...], base_id: str | None
) -> tuple[dict[int, str], ...]:
    """For each plan, the Dockerfiles its build writes (by stage index) where they differ
    from the package's own by more than what every build adds (the stage key reset after
    each FROM, the stage's identity at the end): the plan's edits, a lock's pins, the
    package cache's mounts."""
    return tuple(
        {
            s.index: _built(s, parent_placeholder(plan, s, base_id), run_mounts)
            for s in plan.stages
            if s.edits or s.pins or run_mounts
        }
        for plan in plans
    )


def _built(stage: Stage, parent: str, run_mounts: tuple[str, ...]) -> str:
    from jetforge.cache.builds import built_dockerfile  # here, not at the top: start-up time

    return built_dockerfile(stage, parent, run_mounts)


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A request as a build checks it before the engine is asked anything: its chains,
    the lockfile it takes, and its plan options (the lockfile's pins in them)."""

    chains: list[Resolution]
    locked: Pinned | None
    planning: PlanOptions
    farm: bool

    def plans(self, workspace: Workspace, planning: PlanOptions) -> list[Plan]:
        """The plans with ``planning`` (these options, completed); a locked build's are
        refused unless they are its lockfile's chain, on its platform and base image (the
        base when ``planning`` has its id)."""
        plans = make_plans(workspace, self.chains, planning)
        locked = self.locked
        if locked is not None:
            from jetforge.core.lockfile import plan_mismatch  # a locked build's

            problem = plan_mismatch(
                locked.lock,
                plans[0],
                planning.base_id,
                chain=locked.strict,
                base="base" not in locked.upgrade,
            )
            if problem:
                raise UsageError(f"{locked.option} {locked.path}: {problem}")
        return plans


def check_request(request: BuildRequest, workspace: Workspace) -> CheckedRequest:
    """What a build refuses before the engine is asked anything, for ``build`` and
    ``build --simulate`` alike: the packages, ``--lock`` and ``--locked``, the lockfile and
    ``--upgrade``, the ``--workers`` and their registry, the registries reuse looks in."""
    chains = resolve_chains(request, workspace)
    locked = None
    if request.lock_file is not None or request.locked is not None:
        # here, not at the top: start-up time (a build without a lockfile needs none of it)
        from jetforge.ops.lockstep import check_lock_options, read_pinned

        check_lock_options(
            request.lock_file,
            request.locked,
            request.multiple,
            workspace.cwd,
            request.lock_option,
        )
        if request.locked is not None:
            locked = read_pinned(
                workspace.cwd / request.locked, request.upgrade, refresh=request.refresh
            )
    farm = request.workers not in ((), ("local",))
    if farm:
        from jetforge.ops.farm.connect import check_farm

        check_farm(request.workers, workspace)
    package_sources(workspace)
    from jetforge.host.registry import registry_locations  # here: start-up time

    registry_locations(workspace.settings.registries, workspace.env)
    planning = plan_options(request, workspace)
    if locked is not None:
        planning = replace(planning, locked=locked.lock, upgrade=locked.upgrade)
    return CheckedRequest(chains, locked, planning, farm)


def package_sources(workspace: Workspace) -> tuple[tuple[str, ...], str]:
    """The mirrors and the PyPI URL a build gives pip (the config file's, or their
    variables', each checked)."""
    from jetforge.cache.sources import mirrors_from, pypi_from

    settings, env = workspace.settings, workspace.env
    return mirrors_from(settings.cache_urls, env), pypi_from(settings.pypi_url, env)


def resolve_chains(request: BuildRequest, workspace: Workspace) -> list[Resolution]:
    """Resolve every chain the request asks for (one, or one per package with
    ``multiple``); bad requests fail here, before the engine is asked anything."""
    if not request.packages:
        raise UsageError("build: name at least one PACKAGE ('jetforge list' shows them)")
    catalog = workspace.catalog
    workspace.report_problems(each=False)
    requests = expand_requests(catalog, list(request.packages))
    groups = [[one] for one in requests] if request.multiple else [requests]
    return [resolve(catalog, group, workspace.env) for group in groups]


def base_reference(request: BuildRequest, workspace: Workspace) -> str:
    """The first stage's base: ``--base``, the config file's image for the distro, or the
    platform's default (docs/builds.md, "Base images without a registry")."""
    platform = workspace.platform
    return (
        request.base
        or workspace.settings.base_image_for(str(platform.distro))
        or platform.base_image
    )


def plan_options(request: BuildRequest, workspace: Workspace) -> PlanOptions:
    """The plan options of the request; the build mode and base id come later."""
    return PlanOptions(
        name=request.name,
        base_image=base_reference(request, workspace),
        build_args=(*_proxy_args(request, workspace.env), *request.build_args),
        build_flags=request.build_flags,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        trust_context=trust_context(request.ca_bundle, workspace.env, workspace.cache_dir),
        no_github_api=request.no_github_api,
        outputs=(logs_root(request, workspace), workspace.cache_dir),
    )


def make_plans(workspace: Workspace, chains: list[Resolution], planning: PlanOptions) -> list[Plan]:
    """The plan of each chain; context files are hashed once until they change."""
    digests = Digests(workspace.cache_dir / "digests.json")
    read = functools.partial(read_context, digest=digests.digest)
    plans = [plan_build(chain, workspace.platform, planning, read) for chain in chains]
    digests.save()
    return plans


def build_cache(workspace: Workspace, engine: Engine) -> BuildCache:
    """The package cache for one build: sources probed, secrets written, and every note
    and warning (one line each) passed on."""
    from jetforge.cache.builds import prepare_build_cache
    from jetforge.cache.control import CachePaths

    mirrors, pypi = package_sources(workspace)
    setup = prepare_build_cache(
        CachePaths.under(workspace.cache_dir),
        mirrors=mirrors,
        pypi=pypi,
        build_mode=engine.build_mode,
        secrets=engine.supports_secrets,
        platform=workspace.platform.tag_postfix,
        env=workspace.env,
    )
    for line in setup.warnings:
        workspace.warn(line)
    for line in setup.notes:
        workspace.note(line)
    return setup


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")


def _proxy_args(request: BuildRequest, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The host's proxy variables as build args (``use_proxy``); engines keep these
    predefined arguments out of the image history."""
    if not request.use_proxy:
        return ()
    return tuple(
        (variable, env[variable])
        for name in _PROXY_VARIABLES
        for variable in (name, name.lower())
        if env.get(variable)
    )


def logs_root(request: BuildRequest, workspace: Workspace) -> Path:
    """``--logs``, else the directory the dated log directories go to."""
    if request.logs is not None:
        return workspace.cwd / request.logs
    return workspace.settings.logs_dir or workspace.cwd / "logs"
